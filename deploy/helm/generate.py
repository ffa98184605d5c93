#!/usr/bin/env python3
"""Writes the files the Crossgen charts share, from one source each, so nothing is kept thrice.

- ``charts/crossgen-<service>/values.yaml`` from ``src/service-values.yaml`` (plus
  ``src/<service>-values.yaml`` where a service has settings of its own);
- ``charts/crossgen-<service>/values.schema.json`` and ``charts/crossgen/values.schema.json`` from
  the schema below. Helm checks the values against them before rendering, so a wrong type, a
  missing secret reference or ``replicaCount: 0`` fails ``helm install`` with the value's path.

Run ``python3 deploy/helm/generate.py`` after editing a source; ``--check`` (run by the tests)
fails when a generated file is out of date. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from string import Template
from typing import Any

HERE = Path(__file__).resolve().parent
CHARTS = HERE / "charts"
SERVICES = ("matching", "sessions", "notifications")
DRAFT = "http://json-schema.org/draft-07/schema#"

Schema = dict[str, Any]


# -- building blocks -------------------------------------------------------------------------


def obj(properties: Schema, *, required: tuple[str, ...] = (), description: str = "") -> Schema:
    """A closed object: a misspelt key is an error, not a silently ignored setting."""
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def string(description: str = "", **extra: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def integer(
    minimum: int | None = None, maximum: int | None = None, *, null: bool = False
) -> Schema:
    schema: Schema = {"type": ["integer", "null"] if null else "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


BOOLEAN: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
ANY_ARRAY: Schema = {"type": "array"}
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
DURATION: Schema = string("Prometheus duration", pattern="^[0-9]+(ms|s|m|h)$")
PORT = integer(1, 65535)


def secret_ref(description: str, *, required: bool = False) -> Schema:
    """{existingSecret, key}: a key of a Secret the operator created. Never the secret itself."""
    name = string("name of an existing Secret in the release namespace")
    if required:
        name["minLength"] = 1
    return obj(
        {"existingSecret": name, "key": string("key inside that Secret", minLength=1)},
        required=("existingSecret", "key") if required else (),
        description=description,
    )


def image(repository_required: bool) -> Schema:
    return obj(
        {
            "registry": string("registry host, e.g. registry.example.com"),
            "repository": string(minLength=1) if repository_required else string(),
            "tag": string(),
            "digest": string(pattern="^$|^sha256:[a-f0-9]{64}$"),
            "pullPolicy": {"enum": ["", "Always", "IfNotPresent", "Never"]},
        },
        required=("repository",) if repository_required else (),
    )


PULL_SECRETS: Schema = {
    "type": "array",
    "items": {
        "anyOf": [
            {"type": "string", "minLength": 1},
            obj({"name": string(minLength=1)}, required=("name",)),
        ]
    },
}


def kafka(*, service: bool) -> Schema:
    properties: Schema = {
        "bootstrapServers": string("host:port[,host:port]"),
        "securityProtocol": {"enum": ["", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]},
        "sasl": obj(
            {
                "mechanism": {"enum": ["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]},
                "username": secret_ref("SASL username"),
                "password": secret_ref("SASL password"),
            }
        ),
        "tls": obj({"ca": secret_ref("PEM CA bundle that signed the brokers' certificates")}),
    }
    if service:
        properties |= {
            "createTopics": BOOLEAN,
            "topicPartitions": integer(1),
            "topicReplicationFactor": integer(1),
        }
    return obj(properties)


JWT = obj(
    {
        "issuer": string(),
        "audience": string(),
        "jwksUrl": string(pattern="^$|^https?://"),
        "publicKey": secret_ref("PEM public key that verifies tokens"),
    }
)

TOPIC_SETTINGS: Schema = {
    "partitions": integer(1),
    "replicationFactor": integer(1),
    "retentionMs": integer(-1, null=True),
    "config": {**STRING_MAP, "description": "topic configs, e.g. cleanup.policy (string values)"},
}

TOPICS = obj(
    {
        "enabled": {
            **BOOLEAN,
            "description": "the crossgen chart manages the topics (services: CREATE_TOPICS=false)",
        },
        "defaults": obj(TOPIC_SETTINGS),
        "items": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-zA-Z0-9._-]{1,249}$"},
            "additionalProperties": {"anyOf": [{"type": "null"}, obj(TOPIC_SETTINGS)]},
        },
    }
)

GLOBAL: Schema = {
    "type": "object",
    "description": "settings shared by every Crossgen chart of a release",
    "properties": {
        "image": obj(
            {
                "registry": string(),
                "tag": string(),
                "pullPolicy": {"enum": ["", "Always", "IfNotPresent", "Never"]},
            }
        ),
        "imagePullSecrets": PULL_SECRETS,
        "kafka": kafka(service=False),
        "jwt": JWT,
        "topics": TOPICS,
    },
}

# Hardening and scheduling, for the services and for the hook Jobs.
POD_SETTINGS: Schema = {
    "podSecurityContext": ANY_OBJECT,
    "securityContext": ANY_OBJECT,
    "tmpVolume": obj({"sizeLimit": {"type": ["string", "null"]}}),
    "nodeSelector": STRING_MAP,
    "tolerations": ANY_ARRAY,
    "affinity": ANY_OBJECT,
    "priorityClassName": string(),
}

SECRET_LIKE = "(^|_)(DATABASE_URL|PASSWORD|SECRET|TOKEN|KEY)$"
EXTRA_ENV: Schema = {
    "type": "array",
    "description": "more env vars; secret-like names must use valueFrom, never value",
    "items": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": string(minLength=1)},
        "if": {"properties": {"name": {"pattern": SECRET_LIKE}}},
        "then": {"not": {"required": ["value"]}, "required": ["valueFrom"]},
    },
}

# Settings the chart sets itself from the values above, by name without the prefix.
MANAGED_SETTINGS = [
    "HTTP_HOST",
    "HTTP_PORT",
    "CREATE_TOPICS",
    "TOPIC_PARTITIONS",
    "TOPIC_REPLICATION_FACTOR",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_JWKS_URL",
    "OUTBOX_POLL_INTERVAL",
    "OUTBOX_RETENTION_HOURS",
    "INBOX_RETENTION_DAYS",
    "SHUTDOWN_TIMEOUT",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_SENDER",
    "SMTP_STARTTLS",
    "SMTP_USERNAME",
]
EXTRA_SETTINGS: Schema = {
    "type": "object",
    "description": "more settings by name without the prefix; not secrets, not the chart's own",
    "propertyNames": {"pattern": "^[A-Z][A-Z0-9_]*$"},
    # `false`: such a name is refused, and the error names it.
    "properties": dict.fromkeys(MANAGED_SETTINGS, False),
    "patternProperties": {SECRET_LIKE: False, "^KAFKA_": False},
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}

PROBE = obj(
    {
        "initialDelaySeconds": integer(0),
        "periodSeconds": integer(1),
        "timeoutSeconds": integer(1),
        "failureThreshold": integer(1),
        "successThreshold": integer(1),
    }
)

INT_OR_PERCENT: Schema = {
    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+%$"}]
}


def job(extra: Schema) -> Schema:
    return {
        "backoffLimit": integer(0),
        "activeDeadlineSeconds": integer(1),
        "serviceAccountName": string(),
        "podAnnotations": STRING_MAP,
        "resources": ANY_OBJECT,
        **extra,
    }


def service_schema(service: str) -> Schema:
    properties: Schema = {
        "enabled": BOOLEAN,
        "nameOverride": string(),
        "fullnameOverride": string(),
        "commonLabels": STRING_MAP,
        "global": GLOBAL,
        "crossgen-common": {**ANY_OBJECT, "description": "the library chart's (empty) values"},
        "image": image(repository_required=True),
        "imagePullSecrets": PULL_SECRETS,
        "replicaCount": {**integer(1), "description": "pods when autoscaling is off"},
        "database": obj(
            {"url": secret_ref("PostgreSQL URL of the service's database", required=True)},
            required=("url",),
        ),
        "kafka": kafka(service=True),
        "jwt": JWT,
        "settings": obj(
            {
                "outboxPollInterval": {"type": "number", "exclusiveMinimum": 0},
                "shutdownTimeout": {"type": "number", "minimum": 1},
                "outboxRetentionHours": {"type": "number", "exclusiveMinimum": 0},
                "inboxRetentionDays": {"type": "number", "minimum": 0},
                "extra": EXTRA_SETTINGS,
            },
            required=(
                "outboxPollInterval",
                "shutdownTimeout",
                "outboxRetentionHours",
                "inboxRetentionDays",
            ),
        ),
        "extraEnv": EXTRA_ENV,
        "containerPort": PORT,
        "service": obj(
            {
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": PORT,
                "annotations": STRING_MAP,
            }
        ),
        "serviceAccount": obj(
            {
                "create": BOOLEAN,
                "name": string(),
                "annotations": STRING_MAP,
                "automountToken": BOOLEAN,
            }
        ),
        "podAnnotations": STRING_MAP,
        "podLabels": STRING_MAP,
        "resources": ANY_OBJECT,
        **POD_SETTINGS,
        "probes": obj({"startup": PROBE, "liveness": PROBE, "readiness": PROBE}),
        "lifecycle": obj({"preStopSleepSeconds": integer(0)}),
        "terminationGracePeriodSeconds": integer(1, null=True),
        "revisionHistoryLimit": integer(0),
        "strategy": ANY_OBJECT,
        "topologySpread": obj({"enabled": BOOLEAN}),
        "topologySpreadConstraints": ANY_ARRAY,
        "podDisruptionBudget": obj(
            {
                "enabled": BOOLEAN,
                "maxUnavailable": {"anyOf": [*INT_OR_PERCENT["anyOf"], {"type": "null"}]},
                "minAvailable": {"anyOf": [*INT_OR_PERCENT["anyOf"], {"type": "null"}]},
                "unhealthyPodEvictionPolicy": {"enum": ["", "IfHealthyBudget", "AlwaysAllow"]},
            }
        ),
        "autoscaling": obj(
            {
                "enabled": BOOLEAN,
                "minReplicas": integer(1),
                "maxReplicas": integer(1),
                "targetCPUUtilizationPercentage": integer(1, 100, null=True),
                "targetMemoryUtilizationPercentage": integer(1, 100, null=True),
                "behavior": ANY_OBJECT,
                "keda": obj(
                    {
                        "enabled": BOOLEAN,
                        "topics": {"type": "array", "items": string(minLength=1)},
                        "lagThreshold": integer(1),
                        "activationLagThreshold": integer(0),
                        "allowIdleConsumers": BOOLEAN,
                        "pollingInterval": integer(1),
                        "cooldownPeriod": integer(0),
                    }
                ),
            }
        ),
        "serviceMonitor": obj(
            {
                "enabled": BOOLEAN,
                "namespace": string(),
                "labels": STRING_MAP,
                "interval": DURATION,
                "scrapeTimeout": DURATION,
                "relabelings": ANY_ARRAY,
                "metricRelabelings": ANY_ARRAY,
            }
        ),
        "networkPolicy": obj(
            {
                "enabled": BOOLEAN,
                "ingress": obj({"from": ANY_ARRAY}),
                "egress": obj({"restrict": BOOLEAN, "allowDns": BOOLEAN, "to": ANY_ARRAY}),
            }
        ),
        "migrations": obj(job({"enabled": BOOLEAN})),
    }
    if service == "notifications":
        properties["publicUrl"] = string(pattern="^(https?://[^/?#\\s]+[^?#\\s]*)?$")
        properties["smtp"] = obj(
            {
                "host": string(),
                "port": PORT,
                "sender": string(),
                "starttls": BOOLEAN,
                "username": secret_ref("SMTP username"),
                "password": secret_ref("SMTP password"),
            }
        )
    return {
        "$schema": DRAFT,
        "title": f"crossgen-{service} values",
        **obj(properties, required=("image", "replicaCount", "database")),
    }


def umbrella_schema() -> Schema:
    topics_job = obj(
        job(
            {
                "image": image(repository_required=True),
                "imagePullSecrets": PULL_SECRETS,
                "kafka": kafka(service=False),
                "connectTimeoutSeconds": integer(1),
                **POD_SETTINGS,
            }
        )
    )
    # Each service's values are checked by its own chart's schema.
    services = {name: {"type": "object"} for name in SERVICES}
    return {
        "$schema": DRAFT,
        "title": "crossgen values",
        **obj(
            {"global": GLOBAL, "topicsJob": topics_job, "crossgen-common": ANY_OBJECT, **services}
        ),
    }


# -- files -----------------------------------------------------------------------------------


# Each service's memory request and limit, and the values' comment on them. Matching's peak RSS
# was 588 MB in a run over 20,000 learners and 20,000 mentors (benchmarks/launch_bench.py,
# fifty-third session); a bare run over 100,000 learners takes 1.9 GB (matching_bench.py).
MEMORY = {
    "matching": (
        "512Mi",
        "2Gi",
        "# A whole-program run is held in memory: about 0.6 GB for 20,000 learners and as many\n"
        "# mentors, 2 GB for 100,000 learners. Raise the limit for larger programs.\n",
    ),
    "sessions": ("256Mi", "512Mi", ""),
    "notifications": ("256Mi", "512Mi", ""),
}


def service_values(service: str) -> str:
    request, limit, note = MEMORY[service]
    text = Template((HERE / "src" / "service-values.yaml").read_text()).substitute(
        service=service, memory_request=request, memory_limit=limit, memory_note=note
    )
    extra = HERE / "src" / f"{service}-values.yaml"
    return text + (extra.read_text() if extra.exists() else "")


def as_json(schema: Schema) -> str:
    return json.dumps(schema, indent=2) + "\n"


def outputs() -> dict[Path, str]:
    files = {CHARTS / "crossgen" / "values.schema.json": as_json(umbrella_schema())}
    for service in SERVICES:
        chart = CHARTS / f"crossgen-{service}"
        files[chart / "values.yaml"] = service_values(service)
        files[chart / "values.schema.json"] = as_json(service_schema(service))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(HERE))
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        names = ", ".join(str(p) for p in stale)
        print(f"out of date: {names}; run python3 deploy/helm/generate.py", file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
