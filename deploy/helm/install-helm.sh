#!/usr/bin/env bash
# Build the helm CLI once into the Crossgen cache (never into the clone).
#
#   deploy/helm/install-helm.sh            # -> ${CROSSGEN_CACHE:-~/.cache/crossgen}/bin/helm
#
# Uses `go install` with GOPATH, GOMODCACHE and GOCACHE under the cache dir so
# nothing is written to the repository or to the user's Go workspace.
# Skips the build when the binary is already there and reports the pinned
# version. Override the version with HELM_VERSION (default below).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${CROSSGEN_CACHE:-${HOME}/.cache/crossgen}"
BIN_DIR="${CACHE}/bin"
HELM_BIN="${BIN_DIR}/helm"

# The module version recorded in the binary says which release it was built from (a plain
# `go install` leaves `helm version` at "v3.22"; we set it with -ldflags below).
built_version() {
    go version -m "${HELM_BIN}" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" {print $3}'
}

if [[ -x "${HELM_BIN}" ]]; then
    if ! command -v go >/dev/null 2>&1 || [[ "$(built_version)" == "${HELM_VERSION}" ]]; then
        echo "helm ${HELM_VERSION} already at ${HELM_BIN}"
        exit 0
    fi
fi

if ! command -v go >/dev/null 2>&1; then
    echo "install-helm.sh: 'go' is not on PATH; install Go or set HELM to an existing helm binary" >&2
    exit 1
fi

mkdir -p "${BIN_DIR}" "${CACHE}/go" "${CACHE}/go-build"
echo "building helm ${HELM_VERSION} into ${BIN_DIR} (first time takes a few minutes)"
(
    # Run outside the clone so no go.mod/go.work of the repository is picked up.
    cd "${CACHE}"
    env GOBIN="${BIN_DIR}" \
        GOPATH="${CACHE}/go" \
        GOMODCACHE="${CACHE}/go/pkg/mod" \
        GOCACHE="${CACHE}/go-build" \
        GOFLAGS="-modcacherw" \
        GO111MODULE=on \
        GOWORK=off \
        go install -ldflags "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
        "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
)
echo "helm $(built_version) installed at ${HELM_BIN}"
