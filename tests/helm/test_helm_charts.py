"""The Helm charts in deploy/helm: lint, render with several value sets, validate the manifests
against the Kubernetes schemas, check what renders, and check that bad values fail by name.

Needs the helm binary (``$HELM``, on PATH, or built by deploy/helm/install-helm.sh into
``${CROSSGEN_CACHE:-~/.cache/crossgen}/bin/helm``) and the ``kubernetes-validate`` package. The
tests fail, not skip, when helm is missing: the bootstrap installs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from crossgen_shared import topics
from crossgen_shared.asyncapi import PUBLISHES, placeholder_service

REPO = Path(__file__).resolve().parents[2]
HELM_DIR = REPO / "deploy" / "helm"
CI_VALUES = HELM_DIR / "ci-values"
KUBE_VERSION = "1.30"
# Dependencies first: `helm dependency build` packs a chart together with its own charts/.
CHARTS = ("crossgen-matching", "crossgen-sessions", "crossgen-notifications", "crossgen")
# The topics each service's consumers read, from the code (its KEDA lag triggers must name them).
CONSUMES = {
    name: sorted(consumer.topic for consumer in placeholder_service(name).consumers)
    for name in PUBLISHES  # every service, by the name its chart carries
}
CRD_GROUPS = ("keda.sh/", "monitoring.coreos.com/")
SECRET_ENV_SUFFIXES = (
    "_DATABASE_URL",
    "_PASSWORD",
    "_JWT_PUBLIC_KEY",
    "_SASL_USERNAME",
    "_SSL_CA",
    "_SMTP_USERNAME",
)
# The least a standalone service chart needs (the umbrella's equivalent is ci-values/minimal.yaml).
SERVICE_MINIMAL: dict[str, Any] = {
    "database": {"url": {"existingSecret": "db"}},
    "kafka": {"bootstrapServers": "kafka:9092"},
    "jwt": {"issuer": "https://login.example.com/", "jwksUrl": "https://login.example.com/jwks"},
}
SMTP = {
    "publicUrl": "https://crossgen.example.com/notifications",
    "smtp": {"host": "smtp.example.com", "sender": "no-reply@example.com"},
}

Manifest = dict[str, Any]


# -- helm ------------------------------------------------------------------------------------


def helm_binary() -> str:
    cache = Path(os.environ.get("CROSSGEN_CACHE") or Path.home() / ".cache" / "crossgen")
    for candidate in (os.environ.get("HELM"), shutil.which("helm"), cache / "bin" / "helm"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(
        "helm not found: set HELM, put helm on PATH, or run deploy/helm/install-helm.sh",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def helm() -> str:
    return helm_binary()


def run(helm: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="session")
def charts(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/helm/charts with dependencies vendored (nothing is written to the clone)."""
    root = tmp_path_factory.mktemp("helm") / "charts"
    shutil.copytree(
        HELM_DIR / "charts", root, ignore=shutil.ignore_patterns("charts", "__pycache__")
    )
    for chart in CHARTS:
        result = run(helm, "dependency", "build", root / chart)
        assert result.returncode == 0, f"helm dependency build {chart}:\n{result.stderr}"
    return root


class Renderer:
    def __init__(self, helm: str, charts: Path, scratch: Path) -> None:
        self.helm, self.charts, self.scratch = helm, charts, scratch
        self.count = 0

    def _args(self, chart: str, files: tuple[Path, ...], overrides: dict[str, Any] | None) -> list:
        args: list[str | Path] = [self.charts / chart, "--kube-version", KUBE_VERSION]
        for file in files:
            args += ["-f", file]
        if overrides:
            self.count += 1
            path = self.scratch / f"overrides-{self.count}.yaml"
            path.write_text(yaml.safe_dump(overrides))
            args += ["-f", path]
        return args

    def render(
        self,
        chart: str,
        *files: Path,
        overrides: dict[str, Any] | None = None,
        release: str = "crossgen",
    ) -> list[Manifest]:
        result = run(self.helm, "template", release, *self._args(chart, files, overrides))
        assert result.returncode == 0, f"helm template {chart} failed:\n{result.stderr}"
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def error(self, chart: str, *files: Path, overrides: dict[str, Any] | None = None) -> str:
        result = run(self.helm, "template", "crossgen", *self._args(chart, files, overrides))
        assert result.returncode != 0, f"helm template {chart} should have failed"
        return result.stderr

    def lint(self, chart: str, *files: Path, overrides: dict[str, Any] | None = None) -> None:
        result = run(self.helm, "lint", "--strict", *self._args(chart, files, overrides))
        assert result.returncode == 0, f"helm lint {chart}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def helm_render(helm: str, charts: Path, tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    return Renderer(helm, charts, tmp_path_factory.mktemp("values"))


@pytest.fixture(scope="session")
def minimal(helm_render: Renderer) -> list[Manifest]:
    return helm_render.render("crossgen", CI_VALUES / "minimal.yaml")


@pytest.fixture(scope="session")
def production(helm_render: Renderer) -> list[Manifest]:
    return helm_render.render("crossgen", CI_VALUES / "production.yaml")


@pytest.fixture(scope="session")
def matching_alone(helm_render: Renderer) -> list[Manifest]:
    return helm_render.render(
        "crossgen-matching", CI_VALUES / "matching-alone.yaml", release="crossgen-matching"
    )


@pytest.fixture(scope="session")
def value_sets(
    minimal: list[Manifest], production: list[Manifest], matching_alone: list[Manifest]
) -> dict[str, list[Manifest]]:
    return {"minimal": minimal, "production": production, "matching-alone": matching_alone}


# -- manifest helpers ------------------------------------------------------------------------


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for m in manifests:
        if m["kind"] in ("Deployment", "Job"):
            yield f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def container(manifest: Manifest) -> dict[str, Any]:
    containers = manifest["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def load_module(path: Path, name: str) -> ModuleType:
    sys.dont_write_bytecode = True  # no __pycache__ inside the chart
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.dont_write_bytecode = False


# -- the generated files and lint ------------------------------------------------------------


def test_install_helm_script_parses() -> None:
    result = subprocess.run(
        ["bash", "-n", HELM_DIR / "install-helm.sh"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_generated_values_and_schemas_are_current() -> None:
    result = subprocess.run(
        [sys.executable, HELM_DIR / "generate.py", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("crossgen-common", None),
        ("crossgen-matching", SERVICE_MINIMAL),
        ("crossgen-sessions", SERVICE_MINIMAL),
        ("crossgen-notifications", SERVICE_MINIMAL | SMTP),
    ],
    ids=["library", "matching", "sessions", "notifications"],
)
def test_service_and_library_charts_lint(
    helm_render: Renderer, chart: str, values: dict[str, Any] | None
) -> None:
    helm_render.lint(chart, overrides=values)


@pytest.mark.parametrize("values", ["minimal.yaml", "production.yaml"])
def test_umbrella_chart_lints(helm_render: Renderer, values: str) -> None:
    helm_render.lint("crossgen", CI_VALUES / values)


def test_matching_alone_lints(helm_render: Renderer) -> None:
    helm_render.lint("crossgen-matching", CI_VALUES / "matching-alone.yaml")


# -- every value set: valid Kubernetes, hardened, no secrets, labelled ----------------------


@pytest.mark.parametrize("value_set", ["minimal", "production", "matching-alone"])
def test_manifests_validate_against_kubernetes_schemas(
    value_sets: dict[str, list[Manifest]], value_set: str
) -> None:
    errors = []
    for m in value_sets[value_set]:
        if m["apiVersion"].startswith(CRD_GROUPS):
            continue  # custom resources: their fields are asserted below
        try:
            kubernetes_validate.validate(m, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{m['kind']}/{m['metadata']['name']}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{m['kind']}/{m['metadata']['name']}: {error.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("value_set", ["minimal", "production", "matching-alone"])
def test_every_pod_is_hardened(value_sets: dict[str, list[Manifest]], value_set: str) -> None:
    specs = dict(pod_specs(value_sets[value_set]))
    assert specs
    for where, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] == 10001, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp and "emptyDir" in tmp[0], where
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], where
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], where


@pytest.mark.parametrize("value_set", ["minimal", "production", "matching-alone"])
def test_no_secret_value_is_inlined(value_sets: dict[str, list[Manifest]], value_set: str) -> None:
    manifests = value_sets[value_set]
    assert not find(manifests, "Secret"), "the charts never create Secrets"
    checked = 0
    for where, spec in pod_specs(manifests):
        for c in spec["containers"]:
            for name, var in env_of(c).items():
                if name.endswith(SECRET_ENV_SUFFIXES):
                    checked += 1
                    assert "value" not in var, f"{where}: {name} has an inline value"
                    ref = var["valueFrom"]["secretKeyRef"]
                    assert ref["name"] and ref["key"], f"{where}: {name}"
            assert not c.get("envFrom"), where
    assert checked, "expected secret references in the env"


@pytest.mark.parametrize("value_set", ["minimal", "production", "matching-alone"])
def test_objects_carry_the_recommended_labels(
    value_sets: dict[str, list[Manifest]], value_set: str
) -> None:
    for m in value_sets[value_set]:
        labels = m["metadata"]["labels"]
        where = f"{m['kind']}/{m['metadata']['name']}"
        for key in ("name", "instance", "version", "component", "part-of", "managed-by"):
            assert labels.get(f"app.kubernetes.io/{key}"), f"{where}: app.kubernetes.io/{key}"
        assert labels["app.kubernetes.io/part-of"] == "crossgen"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    for deployment in find(value_sets[value_set], "Deployment"):
        name = deployment["metadata"]["name"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        service = one(value_sets[value_set], "Service", name)
        assert service["spec"]["selector"] == selector
        for kind in ("PodDisruptionBudget", "NetworkPolicy"):
            obj = one(value_sets[value_set], kind, name)
            matched = obj["spec"].get("selector") or obj["spec"]["podSelector"]
            assert matched["matchLabels"] == selector, f"{kind}/{name}"


# -- minimal: the services, probes, hooks, topics -------------------------------------------


def test_minimal_renders_each_service(minimal: list[Manifest]) -> None:
    for service in CONSUMES:
        name = f"crossgen-{service}"
        deployment = one(minimal, "Deployment", name)
        assert deployment["spec"]["replicas"] == 2
        c = container(deployment)
        assert c["image"] == f"crossgen/{service}:0.1.0"
        assert c["args"] == ["serve"]
        assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
        assert c["startupProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        env = env_of(c)
        prefix = service.upper()
        assert env[f"{prefix}_HTTP_PORT"]["value"] == "8000"
        assert env[f"{prefix}_KAFKA_BOOTSTRAP_SERVERS"]["value"] == "kafka.kafka.svc:9092"
        assert env[f"{prefix}_CREATE_TOPICS"]["value"] == "false"  # the chart creates them
        assert env[f"{prefix}_JWT_ISSUER"]["value"] == "https://login.example.com/"
        assert env[f"{prefix}_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": f"crossgen-{service}-db",
            "key": "url",
        }
        shutdown = float(env[f"{prefix}_SHUTDOWN_TIMEOUT"]["value"])
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > shutdown + 5  # the preStop pause comes first
        assert one(minimal, "Service", name)["spec"]["ports"][0]["targetPort"] == "http"
        assert one(minimal, "ServiceAccount", name)
        assert one(minimal, "PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1
        assert not find(minimal, "HorizontalPodAutoscaler")


def test_notifications_gets_its_smtp_settings(minimal: list[Manifest]) -> None:
    env = env_of(container(one(minimal, "Deployment", "crossgen-notifications")))
    assert env["NOTIFICATIONS_PUBLIC_URL"]["value"] == "https://crossgen.example.com/notifications"
    assert env["NOTIFICATIONS_SMTP_HOST"]["value"] == "smtp.example.com"
    assert env["NOTIFICATIONS_SMTP_SENDER"]["value"] == "Crossgen <no-reply@example.com>"
    assert "NOTIFICATIONS_SMTP_PASSWORD" not in env  # an open relay: no credentials given
    assert not any(
        "SMTP" in n for n in env_of(container(one(minimal, "Deployment", "crossgen-matching")))
    )


def test_migrations_run_as_pre_install_and_pre_upgrade_hooks(minimal: list[Manifest]) -> None:
    for service in CONSUMES:
        job = one(minimal, "Job", f"crossgen-{service}-migrations")
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(annotations["helm.sh/hook-weight"]) > int(
            one(minimal, "Job", "crossgen-topics")["metadata"]["annotations"]["helm.sh/hook-weight"]
        )
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        c = container(job)
        assert c["args"] == ["migrate"]
        assert "command" not in c  # the image's entrypoint: python -m crossgen_<service>
        assert c["image"] == f"crossgen/{service}:0.1.0"
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert env_of(c)[f"{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrations"


def test_topics_are_created_by_a_hook_job(minimal: list[Manifest]) -> None:
    config = one(minimal, "ConfigMap", "crossgen-topics")
    job = one(minimal, "Job", "crossgen-topics")
    for obj in (config, job):
        assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(config["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    spec = {t["name"]: t for t in json.loads(config["data"]["topics.json"])}
    # Every topic the code names: the chart creates what the services read and write.
    assert set(spec) == {*topics.ALL, *(topics.dead_letter(s) for s in CONSUMES)}
    assert spec["crossgen.pairings.v1"] == {
        "name": "crossgen.pairings.v1",
        "partitions": 6,
        "replicationFactor": 1,
        "config": {"min.insync.replicas": "1", "retention.ms": "2592000000"},
    }
    assert spec["crossgen.hris.v1"]["config"]["retention.ms"] == "1209600000"
    assert spec["crossgen.matching.deadletter.v1"]["partitions"] == 1
    assert "create_topics.py" in config["data"]
    c = container(job)
    assert c["command"][-2:] == [
        "/etc/crossgen-topics/create_topics.py",
        "/etc/crossgen-topics/topics.json",
    ]
    assert env_of(c)["TOPICS_KAFKA_BOOTSTRAP_SERVERS"]["value"] == "kafka.kafka.svc:9092"


def test_network_policy_admits_only_the_http_port(minimal: list[Manifest]) -> None:
    policy = one(minimal, "NetworkPolicy", "crossgen-sessions")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


# -- production: KEDA, ServiceMonitor, Kafka SASL/TLS by reference --------------------------


def test_production_scales_each_service_on_consumer_lag(production: list[Manifest]) -> None:
    assert not find(production, "HorizontalPodAutoscaler"), "KEDA owns the HPA"
    for service, consumed in CONSUMES.items():
        name = f"crossgen-{service}"
        assert "replicas" not in one(production, "Deployment", name)["spec"]
        scaled = one(production, "ScaledObject", name)
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        spec = scaled["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert spec["minReplicaCount"] >= 1
        assert spec["maxReplicaCount"] >= spec["minReplicaCount"]
        kafka = [t for t in spec["triggers"] if t["type"] == "kafka"]
        assert sorted(t["metadata"]["topic"] for t in kafka) == consumed
        for trigger in kafka:
            meta = trigger["metadata"]
            assert meta["consumerGroup"] == topics.consumer_group(service)  # the services join
            assert meta["bootstrapServers"].startswith("b-1.kafka.example.com:9096")
            assert meta["sasl"] == "scram_sha512"
            assert meta["tls"] == "enable"
            assert meta["offsetResetPolicy"] == "earliest"
            assert meta["allowIdleConsumers"] == "false"
            assert int(meta["lagThreshold"]) >= 1
            assert trigger["authenticationRef"] == {"name": f"{name}-kafka"}
        assert {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}} in spec[
            "triggers"
        ]
        auth = one(production, "TriggerAuthentication", f"{name}-kafka")
        refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
        assert refs == {
            "username": (f"kafka-{name}", "username"),
            "password": (f"kafka-{name}", "password"),
            "ca": ("kafka-ca", "ca.crt"),
        }
    lag = one(production, "ScaledObject", "crossgen-matching")["spec"]["triggers"][0]
    assert lag["metadata"]["lagThreshold"] == "100"


def test_production_service_monitors_scrape_metrics(production: list[Manifest]) -> None:
    for service in CONSUMES:
        name = f"crossgen-{service}"
        monitor = one(production, "ServiceMonitor", name)
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        service_labels = one(production, "Service", name)["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
        assert monitor["spec"]["endpoints"] == [
            {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
        ]


def test_production_kafka_and_jwt_come_from_secrets(production: list[Manifest]) -> None:
    c = container(one(production, "Deployment", "crossgen-sessions"))
    assert c["image"] == "registry.example.com/crossgen/sessions:0.1.0"
    env = env_of(c)
    assert env["SESSIONS_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    assert env["SESSIONS_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
    refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items() if "valueFrom" in e}
    assert refs["SESSIONS_KAFKA_SASL_USERNAME"] == {
        "name": "kafka-crossgen-sessions",
        "key": "username",
    }
    assert refs["SESSIONS_KAFKA_SASL_PASSWORD"] == {
        "name": "kafka-crossgen-sessions",
        "key": "password",
    }
    assert refs["SESSIONS_KAFKA_SSL_CA"] == {"name": "kafka-ca", "key": "ca.crt"}
    assert refs["SESSIONS_JWT_PUBLIC_KEY"] == {"name": "crossgen-jwt", "key": "public-key.pem"}
    assert "SESSIONS_JWT_JWKS_URL" not in env
    topics_env = env_of(container(one(production, "Job", "crossgen-topics")))
    assert topics_env["TOPICS_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kafka-crossgen-admin",
        "key": "password",
    }
    smtp = env_of(container(one(production, "Deployment", "crossgen-notifications")))
    assert (
        smtp["NOTIFICATIONS_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "crossgen-smtp"
    )
    pull = one(production, "Deployment", "crossgen-matching")["spec"]["template"]["spec"]
    assert pull["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_production_restricts_egress(production: list[Manifest]) -> None:
    spec = one(production, "NetworkPolicy", "crossgen-matching")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["egress"][0]["ports"] == [
        {"port": 53, "protocol": "UDP"},
        {"port": 53, "protocol": "TCP"},
    ]
    assert len(spec["ingress"][0]["from"]) == 2
    # sessions keeps the defaults: ingress limited to the port, egress open
    assert one(production, "NetworkPolicy", "crossgen-sessions")["spec"]["policyTypes"] == [
        "Ingress"
    ]


def test_production_topics_follow_the_declaration(production: list[Manifest]) -> None:
    spec = {
        t["name"]: t
        for t in json.loads(one(production, "ConfigMap", "crossgen-topics")["data"]["topics.json"])
    }
    assert spec["crossgen.participants.v1"]["partitions"] == 24
    assert spec["crossgen.pairings.v1"]["partitions"] == 12
    assert spec["crossgen.pairings.v1"]["replicationFactor"] == 3
    assert spec["crossgen.sessions.v1"]["config"]["min.insync.replicas"] == "2"


# -- one service on its own ------------------------------------------------------------------


def test_a_service_chart_installs_and_scales_alone(matching_alone: list[Manifest]) -> None:
    names = {m["metadata"]["name"] for m in matching_alone}
    assert names == {"crossgen-matching", "crossgen-matching-migrations"}
    assert not find(matching_alone, "ConfigMap"), "no topics Job outside the crossgen chart"
    deployment = one(matching_alone, "Deployment", "crossgen-matching")
    assert "replicas" not in deployment["spec"]
    hpa = one(matching_alone, "HorizontalPodAutoscaler", "crossgen-matching")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "crossgen-matching",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 12)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60},
            },
        }
    ]
    env = env_of(container(deployment))
    assert env["MATCHING_CREATE_TOPICS"]["value"] == "false"


def test_keda_can_scale_on_lag_alone(helm_render: Renderer) -> None:
    """Without a CPU target only the lag decides: a consumer's CPU rises faster than its load."""
    autoscaling = {
        "enabled": True,
        "targetCPUUtilizationPercentage": None,
        "keda": {"enabled": True},
    }
    manifests = helm_render.render(
        "crossgen-matching", overrides=SERVICE_MINIMAL | {"autoscaling": autoscaling}
    )
    triggers = one(manifests, "ScaledObject", "crossgen-matching")["spec"]["triggers"]
    assert sorted((t["type"], t["metadata"]["topic"]) for t in triggers) == [
        ("kafka", topic) for topic in CONSUMES["matching"]
    ]


def test_one_service_scales_without_touching_the_others(helm_render: Renderer) -> None:
    manifests = helm_render.render(
        "crossgen", CI_VALUES / "minimal.yaml", overrides={"sessions": {"replicaCount": 5}}
    )
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in find(manifests, "Deployment")}
    assert replicas == {"crossgen-matching": 2, "crossgen-sessions": 5, "crossgen-notifications": 2}


def test_a_release_can_hold_only_the_topics(helm_render: Renderer) -> None:
    manifests = helm_render.render(
        "crossgen",
        CI_VALUES / "minimal.yaml",
        overrides={s: {"enabled": False} for s in CONSUMES},
    )
    assert sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests) == [
        "ConfigMap/crossgen-topics",
        "Job/crossgen-topics",
    ]


def test_services_create_topics_only_when_the_chart_does_not(helm_render: Renderer) -> None:
    kafka = {"bootstrapServers": "kafka:9092", "createTopics": True, "topicReplicationFactor": 1}
    standalone = helm_render.render(
        "crossgen-sessions", overrides=SERVICE_MINIMAL | {"kafka": kafka}
    )
    env = env_of(container(one(standalone, "Deployment", "crossgen-sessions")))
    assert env["SESSIONS_CREATE_TOPICS"]["value"] == "true"
    assert env["SESSIONS_TOPIC_REPLICATION_FACTOR"]["value"] == "1"
    managed = helm_render.render(
        "crossgen",
        CI_VALUES / "minimal.yaml",
        overrides={"sessions": {"kafka": {"createTopics": True}}},
    )
    env = env_of(container(one(managed, "Deployment", "crossgen-sessions")))
    assert env["SESSIONS_CREATE_TOPICS"]["value"] == "false"
    assert "SESSIONS_TOPIC_PARTITIONS" not in env


def test_a_service_may_use_its_own_kafka_principal(helm_render: Renderer) -> None:
    manifests = helm_render.render(
        "crossgen",
        CI_VALUES / "minimal.yaml",
        overrides={
            "global": {
                "kafka": {
                    "securityProtocol": "SASL_PLAINTEXT",
                    "sasl": {
                        "mechanism": "PLAIN",
                        "username": {"existingSecret": "kafka-shared"},
                        "password": {"existingSecret": "kafka-shared"},
                    },
                }
            },
            "notifications": {"kafka": {"sasl": {"password": {"existingSecret": "kafka-own"}}}},
        },
    )
    env = env_of(container(one(manifests, "Deployment", "crossgen-notifications")))
    assert (
        env["NOTIFICATIONS_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-own"
    )
    assert (
        env["NOTIFICATIONS_KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"]["name"]
        == "kafka-shared"
    )
    assert "NOTIFICATIONS_KAFKA_SSL_CA" not in env  # SASL_PLAINTEXT: no TLS
    other = env_of(container(one(manifests, "Deployment", "crossgen-matching")))
    assert (
        other["MATCHING_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-shared"
    )


def test_service_specific_settings_get_the_prefix(helm_render: Renderer) -> None:
    manifests = helm_render.render(
        "crossgen",
        CI_VALUES / "minimal.yaml",
        overrides={
            "sessions": {"settings": {"extra": {"STALLED_AFTER_DAYS": 14}}},
            "notifications": {
                "extraEnv": [
                    {
                        "name": "NOTIFICATIONS_WEBHOOK_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "hooks", "key": "token"}},
                    }
                ]
            },
        },
    )
    sessions = env_of(container(one(manifests, "Deployment", "crossgen-sessions")))
    assert sessions["SESSIONS_STALLED_AFTER_DAYS"] == {
        "name": "SESSIONS_STALLED_AFTER_DAYS",
        "value": "14",
    }
    migrations = env_of(container(one(manifests, "Job", "crossgen-sessions-migrations")))
    assert migrations["SESSIONS_STALLED_AFTER_DAYS"]["value"] == "14"  # same settings
    notifications = env_of(container(one(manifests, "Deployment", "crossgen-notifications")))
    token = notifications["NOTIFICATIONS_WEBHOOK_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hooks", "key": "token"}


def test_retention_settings_reach_each_service(helm_render: Renderer) -> None:
    forever = {"retentionMs": -1}
    manifests = helm_render.render(
        "crossgen",
        CI_VALUES / "minimal.yaml",
        overrides={
            "global": {"topics": {"items": {"crossgen.pairings.v1": forever}}},
            "matching": {"settings": {"outboxRetentionHours": 6}},
            "sessions": {"settings": {"inboxRetentionDays": 0}},  # pairings kept forever
            "notifications": {"settings": {"inboxRetentionDays": 0}},
        },
    )
    matching = env_of(container(one(manifests, "Deployment", "crossgen-matching")))
    assert matching["MATCHING_OUTBOX_RETENTION_HOURS"]["value"] == "6"
    assert matching["MATCHING_INBOX_RETENTION_DAYS"]["value"] == "45"
    sessions = env_of(container(one(manifests, "Deployment", "crossgen-sessions")))
    assert sessions["SESSIONS_INBOX_RETENTION_DAYS"]["value"] == "0"


def test_notes_render(charts: Path, helm_render: Renderer, tmp_path: Path) -> None:
    # `helm template` skips NOTES.txt; render it as a template of a scratch copy.
    copy = tmp_path / "crossgen"
    shutil.copytree(charts / "crossgen", copy)
    notes = (copy / "templates" / "NOTES.txt").read_text()
    body = "".join(f"  {line}\n" for line in notes.splitlines())
    (copy / "templates" / "notes-check.yaml").write_text(f"notes: |\n{body}")
    result = run(
        helm_render.helm,
        "template",
        "crossgen",
        copy,
        "--kube-version",
        KUBE_VERSION,
        "-f",
        CI_VALUES / "minimal.yaml",
        "--show-only",
        "templates/notes-check.yaml",
    )
    assert result.returncode == 0, result.stderr
    text = yaml.safe_load(result.stdout)["notes"]
    assert "http://crossgen-notifications.default.svc:8000/docs" in text
    assert "Topics are managed by this release" in text


# -- bad values fail, naming the value -------------------------------------------------------

ALONE = CI_VALUES / "matching-alone.yaml"
MINIMAL = CI_VALUES / "minimal.yaml"


@pytest.mark.parametrize(
    ("chart", "values", "overrides", "expected"),
    [
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"replicaCount": "three"},
            ["/replicaCount", "want integer"],
            id="wrong-type",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"replicaCount": 0},
            ["/replicaCount", "minimum"],
            id="replicas-below-one",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"notifications": {"replicaCount": 0}},
            ["notifications", "/replicaCount", "minimum"],
            id="umbrella-replicas-below-one",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"database": {"url": {"existingSecret": ""}}},
            ["/database/url/existingSecret"],
            id="missing-database-secret",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"sessions": {"database": None}},
            ["sessions", "database"],
            id="umbrella-missing-database",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "SCRAM-SHA-512"}}},
            ["kafka.sasl.username.existingSecret"],
            id="sasl-without-credentials",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"kafka": {"securityProtocol": "TLS"}},
            ["/kafka/securityProtocol"],
            id="unknown-security-protocol",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"extraEnv": [{"name": "MATCHING_SMTP_PASSWORD", "value": "hunter2"}]},
            ["/extraEnv/0", "valueFrom"],
            id="inline-secret-in-extra-env",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"replicas": 3},
            ["additional properties 'replicas'"],
            id="misspelt-key",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"settings": {"extra": {"SMTP_PASSWORD": "hunter2"}}},
            ["/settings/extra", "SMTP_PASSWORD"],
            id="secret-in-extra-settings",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"settings": {"extra": {"CREATE_TOPICS": True}}},
            ["/settings/extra", "CREATE_TOPICS"],
            id="chart-managed-setting-in-extra",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"global": {"jwt": {"issuer": ""}}},
            ["jwt.issuer"],
            id="missing-jwt-issuer",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"global": {"jwt": {"jwksUrl": ""}}},
            ["jwt.jwksUrl or jwt.publicKey.existingSecret"],
            id="no-jwt-key-source",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"global": {"kafka": {"bootstrapServers": ""}}},
            ["kafka.bootstrapServers"],
            id="missing-kafka",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"notifications": {"smtp": {"host": ""}}},
            ["smtp.host"],
            id="missing-smtp-host",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"notifications": {"publicUrl": ""}},
            ["publicUrl is required", "unsubscribe link"],
            id="missing-public-url",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"notifications": {"publicUrl": "crossgen.example.com"}},
            ["publicUrl", "does not match"],
            id="public-url-without-scheme",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"global": {"topics": {"items": {"crossgen.sessions.v1": {"partitions": 0}}}}},
            ["/global/topics/items/crossgen.sessions.v1/partitions"],
            id="zero-partitions",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"topicsJob": {"kafka": {"securityProtocol": "SASL_SSL"}}},
            ["topicsJob.kafka.sasl.mechanism"],
            id="topics-job-sasl-incomplete",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"sessions": {"autoscaling": {"keda": {"enabled": True}}}},
            ["autoscaling.keda.enabled needs autoscaling.enabled"],
            id="keda-without-autoscaling",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}},
            ["autoscaling.maxReplicas"],
            id="max-below-min",
        ),
        pytest.param(
            "crossgen-matching",
            ALONE,
            {"settings": {"shutdownTimeout": 60}, "terminationGracePeriodSeconds": 30},
            ["terminationGracePeriodSeconds", "settings.shutdownTimeout"],
            id="grace-too-short",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"sessions": {"settings": {"inboxRetentionDays": 20}}},
            ["settings.inboxRetentionDays (20)", "crossgen.pairings.v1", "handled twice"],
            id="inbox-forgets-before-the-topic",
        ),
        pytest.param(
            "crossgen",
            MINIMAL,
            {"global": {"topics": {"items": {"crossgen.participants.v1": {"retentionMs": -1}}}}},
            ["crossgen.participants.v1", "set 0 to keep the ids forever"],
            id="topic-kept-forever-inbox-not",
        ),
    ],
)
def test_bad_values_fail_naming_the_value(
    helm_render: Renderer,
    chart: str,
    values: Path,
    overrides: dict[str, Any],
    expected: list[str],
) -> None:
    error = helm_render.error(chart, values, overrides=overrides)
    for text in expected:
        assert text in error, f"{text!r} not in:\n{error}"


# -- the topics Job's planning (the Kafka part runs against a broker in the Job) -------------


@pytest.fixture(scope="module")
def create_topics() -> ModuleType:
    return load_module(
        HELM_DIR / "charts" / "crossgen" / "files" / "create_topics.py", "crossgen_create_topics"
    )


def test_topics_plan_creates_grows_and_configures(create_topics: ModuleType) -> None:
    topic = create_topics.Topic
    declared = [
        topic("a", 6, 3, {"retention.ms": "1000"}),
        topic("b", 12, 3, {"retention.ms": "1000"}),
        topic("c", 6, 3, {"retention.ms": "1000"}),
    ]
    found = {
        "b": topic("b", 6, 3, {"retention.ms": "1000"}),
        "c": topic("c", 6, 1, {"cleanup.policy": "compact", "retention.ms": "5"}),
    }
    plan = create_topics.plan(declared, found)
    assert [t.name for t in plan.create] == ["a"]
    assert plan.add_partitions == {"b": 12}
    # other per-topic overrides are kept: AlterConfigs replaces the whole set
    assert plan.set_config == {"c": {"cleanup.policy": "compact", "retention.ms": "1000"}}
    assert len(plan.warnings) == 1 and "replication factor" in plan.warnings[0]
    assert not plan.errors


def test_topics_plan_refuses_to_shrink(create_topics: ModuleType) -> None:
    topic = create_topics.Topic
    plan = create_topics.plan([topic("a", 3, 3)], {"a": topic("a", 6, 3)})
    assert plan.errors and "partitions: 6" in plan.errors[0]
    assert not plan.changes


def test_topics_plan_is_idle_when_all_is_as_declared(create_topics: ModuleType) -> None:
    topic = create_topics.Topic
    declared = [topic("a", 6, 3, {"retention.ms": "1"})]
    assert not create_topics.plan(declared, {"a": declared[0]}).changes


def test_topics_job_reads_the_service_style_kafka_settings(create_topics: ModuleType) -> None:
    settings = create_topics.connection_settings(
        {
            "TOPICS_KAFKA_BOOTSTRAP_SERVERS": "k:9092",
            "TOPICS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "TOPICS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TOPICS_KAFKA_SASL_USERNAME": "admin",
            "TOPICS_KAFKA_SASL_PASSWORD": "pw",
        }
    )
    assert settings == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "admin",
        "sasl_plain_password": "pw",
    }
