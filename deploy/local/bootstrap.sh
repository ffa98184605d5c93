#!/usr/bin/env bash
# Installs Crossgen for local use: a virtualenv in .venv with every package editable, at the
# versions constraints.txt pins, so a fresh clone installs what CI last passed with.
# Downloads are cached outside the clone (pip's cache; Kafka's jars under ~/.cache/crossgen).
#
#   deploy/local/bootstrap.sh          # install (again only when a manifest changed)
#   deploy/local/bootstrap.sh --lock   # rewrite constraints.txt: the newest versions allowed
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"
python=${PYTHON:-python3}
constraints="$root/constraints.txt"

need() { command -v "$1" >/dev/null || { echo "bootstrap: '$1' is missing: $2" >&2; exit 1; }; }
need "$python" "install Python 3.11 or newer"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bootstrap: Python 3.11 or newer is needed ($("$python" --version))" >&2; exit 1; }
need go "install Go (it builds helm once, for the chart tests)"
if [ -z "${CROSSGEN_KAFKA_BOOTSTRAP:-}" ]; then
  need java "install a Java 17+ runtime (Kafka runs on it), or set CROSSGEN_KAFKA_BOOTSTRAP"
  need mvn "install Maven (it fetches Kafka's jars once), or set CROSSGEN_KAFKA_BOOTSTRAP"
fi

packages=(shared services/matching services/sessions services/notifications deploy/local)
editable=()
for p in "${packages[@]}"; do editable+=(-e "$root/$p"); done

if [ "${1:-}" = "--lock" ]; then
  # Resolved in a scratch virtualenv with no pins, so every version is the newest allowed.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  echo "bootstrap: resolving the newest versions the manifests allow…" >&2
  "$python" -m venv "$scratch/venv"
  "$scratch/venv/bin/python" -m pip install -q --upgrade pip
  "$scratch/venv/bin/python" -m pip install -q "${editable[@]}" -r "$root/requirements-dev.txt"
  {
    echo "# Every third-party package at the version CI passes with (Python $("$python" -c \
      'import sys; print(*sys.version_info[:2], sep=".")')). Installs use it with pip -c."
    echo "# Rewritten by \`make lock\`; review the diff and run \`make test\` before committing it."
    "$scratch/venv/bin/python" -m pip freeze --exclude-editable
  } > "$constraints"
  echo "bootstrap: wrote $constraints; next: make bootstrap && make test" >&2
  exit 0
fi

manifests=("$root/requirements-dev.txt" "$constraints")
for p in "${packages[@]}"; do manifests+=("$root/$p/pyproject.toml"); done
stamp=$(cat "${manifests[@]}" | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.crossgen-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "bootstrap: installing into $venv (first run takes a minute or two)…" >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c "$constraints" "${editable[@]}" \
    -r "$root/requirements-dev.txt"
  echo "$stamp" > "$venv/.crossgen-stamp"
fi

bash "$root/deploy/helm/install-helm.sh" >/dev/null
# Chromium drives the dashboard test; installing it needs root (apt-get).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash "$root/deploy/local/install-chromium.sh" >/dev/null
  else
    echo "bootstrap: no /usr/bin/chromium; the dashboard browser test will be skipped" \
      "(as root: deploy/local/install-chromium.sh)" >&2
  fi
fi
