"""Each service's AsyncAPI 3.0 document: generated from its code, served, and checked in.

``python -m crossgen_shared.asyncapi [DIR]`` writes ``docs/asyncapi/<service>.yaml`` for every
service; a test fails when the code and those files differ. FastStream renders the service's broker
(info, server, security). What FastStream cannot see is added from the code that defines it: what
the service publishes (``PUBLISHES``; the outbox relay sends raw records), which events each
consumer accepts (its handlers; FastStream sees one raw-record handler), and every message's
payload (the event's JSON Schema, as in ``shared/schemas``) and ``ce_*`` headers.
"""

import importlib
import sys
from collections.abc import Mapping
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

import yaml
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from faststream.specification import AsyncAPI

from crossgen_shared import topics
from crossgen_shared.envelope import CONTENT_TYPE
from crossgen_shared.events import (
    Event,
    FeedbackSubmitted,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    NotificationFailed,
    NotificationSent,
    PairingAtRisk,
    PairingEnded,
    ParticipantErased,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    SessionCancelled,
    SessionCompleted,
    SessionScheduled,
    json_schema,
    schema_uri,
)

if TYPE_CHECKING:
    from crossgen_shared.service import Service

# Which service publishes which events: the one place that says so.
PUBLISHES: Mapping[str, tuple[type[Event], ...]] = {
    "matching": (
        ParticipantJoined,
        ParticipantUpdated,
        ParticipantLeft,
        ParticipantErased,
        MatchProposed,
        MatchAccepted,
        MatchDeclined,
        PairingEnded,
    ),
    "sessions": (
        SessionScheduled,
        SessionCancelled,
        SessionCompleted,
        FeedbackSubmitted,
        PairingAtRisk,
    ),
    "notifications": (NotificationSent, NotificationFailed),
}
PRODUCER: Mapping[type[Event], str] = {
    cls: service for service, classes in PUBLISHES.items() for cls in classes
}

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"
# The checked-in documents name a placeholder broker; a running service serves its own.
DOCUMENTED_KAFKA = "kafka:9092"
_BINDINGS = "0.5.0"  # of the AsyncAPI Kafka bindings
DEAD_LETTER = "crossgen.dead-letter"

_DESCRIPTION = (
    "Events on Kafka: CloudEvents 1.0 in binary mode (`ce_*` headers, JSON value), each value "
    "valid against the JSON Schema its `ce_dataschema` names. Delivery is at least once: "
    "deduplicate on `ce_id`. Generated from the code by `python -m crossgen_shared.asyncapi`; "
    "see docs/events.md and docs/versioning.md."
)


def document(service: "Service") -> dict[str, Any]:
    base = (
        AsyncAPI(
            service.broker,
            title=f"Crossgen {service.name}",
            version=version(f"crossgen-{service.name}"),
            description=_DESCRIPTION,
            schema_version="3.0.0",
        )
        .to_specification()
        .to_jsonable()
    )
    (server,) = base["servers"].values()  # FastStream names it "development" wherever it is
    messages, sends, receives = _flows(service)
    dead_letters = topics.dead_letter(service.name)
    channels = {
        topic: {
            "address": topic,
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {
                name: {"$ref": f"#/components/messages/{name}"}
                for name in sorted({*sends.get(topic, ()), *receives.get(topic, ())})
            },
            "bindings": {"kafka": {"topic": topic, "bindingVersion": _BINDINGS}},
        }
        for topic in sorted({*sends, *receives})
    }
    group = topics.consumer_group(service.name)
    operations = {
        f"send-{topic}": _operation(
            "send", topic, names, _PARKED if topic == dead_letters else _SENT
        )
        for topic, names in sorted(sends.items())
    } | {
        f"receive-{topic}": _operation("receive", topic, names, f"Consumed by group {group}.")
        | {"bindings": {"kafka": _group(group)}}
        for topic, names in sorted(receives.items())
    }
    security = base.get("components", {}).get("securitySchemes")
    return {
        "asyncapi": base["asyncapi"],
        "info": base["info"],
        "defaultContentType": base["defaultContentType"],
        "servers": {"kafka": server},
        "channels": channels,
        "operations": operations,
        "components": {"messages": dict(sorted(messages.items()))}
        | ({"securitySchemes": security} if security else {}),
    }


def _flows(service: "Service") -> tuple[dict[str, Any], dict[str, list[str]], dict[str, list[str]]]:
    """The messages of the document, and their names by the topics they are sent and received on."""
    messages: dict[str, Any] = {DEAD_LETTER: _DEAD_LETTER_MESSAGE}
    sends: dict[str, list[str]] = {topics.dead_letter(service.name): [DEAD_LETTER]}
    receives: dict[str, list[str]] = {}
    for cls in PUBLISHES.get(service.name, ()):
        messages[cls.event_type()] = _event_message(cls)
        sends.setdefault(cls.topic, []).append(cls.event_type())
    for consumer in service.consumers:
        names = receives.setdefault(consumer.topic, [])
        for cls in consumer.handlers:
            messages[cls.event_type()] = _event_message(cls)
            names.append(cls.event_type())
        if not consumer.handlers:  # records that are not Crossgen events, e.g. the HRIS feed
            name = f"{consumer.topic}.record"
            messages[name] = {"name": "Record", "title": name, "summary": consumer.description}
            names.append(name)
    return messages, sends, receives


_SENT = "Published from the outbox after commit: at least once, in commit order per key."
_PARKED = "Records this service's consumers could not handle, with the reason; replayable."


def _operation(action: str, topic: str, names: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{topic}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{topic}/messages/{name}"} for name in names],
    }


def _group(group_id: str) -> dict[str, Any]:
    return {"groupId": {"type": "string", "enum": [group_id]}, "bindingVersion": _BINDINGS}


def _event_message(cls: type[Event]) -> dict[str, Any]:
    schema = json_schema(cls)
    key = schema["properties"][cls.key_field]
    return {
        "name": cls.__name__,
        "title": cls.event_type(),
        "summary": f"Published by {PRODUCER[cls]} on {cls.topic}, keyed by {cls.key_field}.",
        "contentType": CONTENT_TYPE,
        "headers": _cloudevents_headers(cls, key),
        "payload": inline_defs(schema),
        "bindings": {"kafka": {"key": key, "bindingVersion": _BINDINGS}},
    }


def _cloudevents_headers(cls: type[Event], key: dict[str, Any]) -> dict[str, Any]:
    def const(value: str) -> dict[str, str]:
        return {"type": "string", "const": value}

    attributes = {
        "ce_specversion": const("1.0"),
        "ce_id": {"type": "string", "description": "Unique per event, kept on redelivery"},
        "ce_source": const(f"/crossgen/{PRODUCER[cls]}"),
        "ce_type": const(cls.event_type()),
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": key | {"description": f"The {cls.key_field}, as in the Kafka key"},
        "ce_dataschema": const(schema_uri(cls)),
        "content-type": const(CONTENT_TYPE),
    }
    return {
        "type": "object",
        "description": "CloudEvents attributes; other headers (e.g. traceparent) may be present",
        "required": list(attributes),
        "properties": attributes,
    }


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``$defs`` written in place of their references.

    In an AsyncAPI document ``#/$defs/...`` would point into the document, not into the schema.
    """
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if (ref := node.get("$ref", "")).startswith("#/$defs/"):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return inline(defs[ref.removeprefix("#/$defs/")] | siblings)
        return {k: inline(v) for k, v in node.items() if k != "$defs"}

    inlined: dict[str, Any] = inline(schema)
    return inlined


_DLQ_HEADERS = {
    "dlq_reason": "Why it was parked",
    "dlq_consumer": "The consumer that parked it: <service>:<topic>",
    "dlq_origin_topic": "Where it came from",
    "dlq_origin_partition": "Its partition there (decimal)",
    "dlq_origin_offset": "Its offset there (decimal)",
}
_DEAD_LETTER_MESSAGE = {
    "name": "DeadLetter",
    "title": DEAD_LETTER,
    "summary": "A record this service's consumers could not handle, parked to be replayed.",
    "contentType": "application/octet-stream",
    "headers": {
        "type": "object",
        "description": "The original record's headers, and why and where from",
        "required": list(_DLQ_HEADERS),
        "properties": {k: {"type": "string", "description": d} for k, d in _DLQ_HEADERS.items()},
    },
    "payload": {"description": "The original record's value, unchanged"},
    "bindings": {
        "kafka": {"key": {"description": "The original record's key"}, "bindingVersion": _BINDINGS}
    },
}


def router(service: "Service") -> APIRouter:
    """``GET /asyncapi.json`` and ``/asyncapi.yaml``, public like ``/openapi.json``."""
    routes = APIRouter(include_in_schema=False)

    @cache  # generated on first use, not at startup: the document never changes while running
    def served() -> dict[str, Any]:
        return document(service)

    @routes.get("/asyncapi.json")
    def as_json() -> JSONResponse:
        return JSONResponse(served())

    @routes.get("/asyncapi.yaml")
    def as_yaml() -> Response:
        return Response(to_yaml(served()), media_type="application/yaml")

    return routes


def to_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def placeholder_service(name: str) -> "Service":
    """The service as its ``app.build`` makes it, on placeholder settings: nothing connects."""
    app = importlib.import_module(f"crossgen_{name}.app")
    settings = get_type_hints(app.build)["settings"](
        database_url="postgresql+asyncpg://crossgen@localhost/crossgen",
        kafka_bootstrap_servers=DOCUMENTED_KAFKA,
        kafka_security_protocol="PLAINTEXT",
        jwt_issuer="https://issuer.invalid",
        jwt_public_key="unused: the generator checks no token",
    )
    service: Service = app.build(settings)
    return service


def rendered() -> dict[str, str]:
    return {f"{name}.yaml": to_yaml(document(placeholder_service(name))) for name in PUBLISHES}


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (target / name).write_text(text)
    print(f"wrote {len(PUBLISHES)} AsyncAPI documents to {target}")


if __name__ == "__main__":
    main()
