"""Creates and reconciles Crossgen's Kafka topics: the crossgen chart's pre-install/upgrade Job.

    python create_topics.py TOPICS.json

TOPICS.json is rendered by the chart from ``global.topics``:
``[{"name": ..., "partitions": 6, "replicationFactor": 3, "config": {"retention.ms": "..."}}]``.

The connection comes from the environment, with the names the services use (prefix TOPICS_):
TOPICS_KAFKA_BOOTSTRAP_SERVERS, TOPICS_KAFKA_SECURITY_PROTOCOL, TOPICS_KAFKA_SASL_MECHANISM,
TOPICS_KAFKA_SASL_USERNAME, TOPICS_KAFKA_SASL_PASSWORD, TOPICS_KAFKA_SSL_CA (PEM text), and
TOPICS_CONNECT_TIMEOUT (seconds to keep retrying the brokers).

For every declared topic: create it when missing; raise its partition count when the declaration
asks for more; set the declared configs and keep any other per-topic override already there.
Nothing is changed and the Job fails when a declaration asks for fewer partitions than the topic
has (Kafka cannot shrink a topic). A different replication factor is only reported: changing it
takes a partition reassignment, which is an operator's decision.

Runs in a service image (Python + aiokafka); needs nothing else.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOPIC_ALREADY_EXISTS = 36
DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source of a per-topic override


@dataclass(frozen=True)
class Topic:
    """A topic as declared, or as found (config: its per-topic overrides only)."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    create: list[Topic] = field(default_factory=list)
    add_partitions: dict[str, int] = field(default_factory=dict)
    # The complete set of per-topic overrides to write (AlterConfigs replaces them all).
    set_config: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.create or self.add_partitions or self.set_config)


def load(path: Path) -> list[Topic]:
    return [
        Topic(
            name=item["name"],
            partitions=int(item["partitions"]),
            replication_factor=int(item["replicationFactor"]),
            config={k: str(v) for k, v in (item.get("config") or {}).items()},
        )
        for item in json.loads(path.read_text())
    ]


def plan(declared: list[Topic], found: dict[str, Topic]) -> Plan:
    """What to do to make the cluster match the declaration. Pure: no Kafka involved."""
    result = Plan()
    for topic in declared:
        actual = found.get(topic.name)
        if actual is None:
            result.create.append(topic)
            continue
        if topic.partitions < actual.partitions:
            result.errors.append(
                f"{topic.name}: declared {topic.partitions} partitions but it has "
                f"{actual.partitions}; Kafka cannot remove partitions, declare "
                f"partitions: {actual.partitions} (or more)"
            )
            continue
        if topic.partitions > actual.partitions:
            result.add_partitions[topic.name] = topic.partitions
        if topic.replication_factor != actual.replication_factor:
            result.warnings.append(
                f"{topic.name}: declared replication factor {topic.replication_factor}, "
                f"it has {actual.replication_factor}; left as it is (changing it takes a "
                "partition reassignment)"
            )
        wanted = actual.config | topic.config
        if wanted != actual.config:
            result.set_config[topic.name] = wanted
    return result


# -- Kafka -----------------------------------------------------------------------------------


def connection_settings(env: dict[str, str]) -> dict[str, Any]:
    """aiokafka client arguments from TOPICS_KAFKA_* (the same names the services read)."""
    bootstrap = env.get("TOPICS_KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        raise SystemExit("TOPICS_KAFKA_BOOTSTRAP_SERVERS is not set")
    protocol = env.get("TOPICS_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
    settings: dict[str, Any] = {"bootstrap_servers": bootstrap, "security_protocol": protocol}
    if protocol.startswith("SASL_"):
        settings |= {
            "sasl_mechanism": env.get("TOPICS_KAFKA_SASL_MECHANISM") or "PLAIN",
            "sasl_plain_username": env.get("TOPICS_KAFKA_SASL_USERNAME"),
            "sasl_plain_password": env.get("TOPICS_KAFKA_SASL_PASSWORD"),
        }
    if protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        settings["ssl_context"] = create_ssl_context(cadata=env.get("TOPICS_KAFKA_SSL_CA") or None)
    return settings


async def connect(settings: dict[str, Any], patience: float) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + patience
    while True:
        admin = AIOKafkaAdminClient(client_id="crossgen-topics", **settings)
        try:
            await admin.start()
            return admin
        except Exception as error:
            await admin.close()
            if time.monotonic() >= deadline:
                where = settings["bootstrap_servers"]
                raise SystemExit(f"cannot reach Kafka at {where}: {error}") from error
            print(f"waiting for Kafka ({error.__class__.__name__}: {error})", flush=True)
            await asyncio.sleep(3)


async def describe(admin: Any, names: list[str]) -> dict[str, Topic]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    # list_topics asks for all topics: unlike a metadata request naming a missing topic, it never
    # makes a broker with auto.create.topics.enable create one with broker defaults.
    existing = sorted(set(await admin.list_topics()) & set(names))
    if not existing:
        return {}
    metadata = {t["topic"]: t for t in await admin.describe_topics(existing)}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in existing]
    overrides: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            check(resource["error_code"], f"describe configs of {resource['resource_name']}")
            overrides[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if is_override(entry)
            }
    found = {}
    for name in existing:
        partitions = metadata[name]["partitions"]
        found[name] = Topic(
            name=name,
            partitions=len(partitions),
            replication_factor=max((len(p["replicas"]) for p in partitions), default=0),
            config=overrides.get(name, {}),
        )
    return found


def is_override(entry: dict[str, Any]) -> bool:
    if "config_source" in entry:
        return bool(entry["config_source"] == DYNAMIC_TOPIC_CONFIG)
    return not entry.get("is_default", True) and not entry.get("read_only", False)


def check(code: int, what: str, message: str | None = None) -> None:
    if code:
        from aiokafka.errors import for_code

        raise SystemExit(f"{what} failed: {for_code(code).__name__} {message or ''}".rstrip())


async def apply(admin: Any, todo: Plan) -> None:
    from aiokafka.admin import NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if todo.create:
        response = await admin.create_topics(
            [
                NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.config)
                for t in todo.create
            ]
        )
        for name, code, *message in response.topic_errors:
            if code != TOPIC_ALREADY_EXISTS:  # another run got there first: same result
                check(code, f"create topic {name}", *message)
            print(f"created {name}", flush=True)
    if todo.add_partitions:
        await admin.create_partitions(
            {name: NewPartitions(count) for name, count in todo.add_partitions.items()}
        )
        for name, count in todo.add_partitions.items():
            print(f"{name}: partitions raised to {count}", flush=True)
    for name, config in todo.set_config.items():
        for response in await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, config)]
        ):
            for code, message, _type, resource, *_ in response.resources:
                check(code, f"alter configs of {resource}", message)
        print(f"{name}: configs set {json.dumps(config, sort_keys=True)}", flush=True)


async def run(spec: Path, env: dict[str, str]) -> int:
    declared = load(spec)
    patience = float(env.get("TOPICS_CONNECT_TIMEOUT") or 120)
    admin = await connect(connection_settings(env), patience)
    try:
        todo = plan(declared, await describe(admin, [t.name for t in declared]))
        for warning in todo.warnings:
            print(f"warning: {warning}", flush=True)
        if todo.errors:
            for error in todo.errors:
                print(f"error: {error}", file=sys.stderr, flush=True)
            return 1
        await apply(admin, todo)
        if not todo.changes:
            print(f"all {len(declared)} topics are as declared", flush=True)
        return 0
    finally:
        await admin.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    return asyncio.run(run(Path(argv[1]), dict(os.environ)))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
