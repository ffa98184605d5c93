import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
import yaml
from faststream.specification import AsyncAPI
from jsonschema import Draft202012Validator

from crossgen_shared.asyncapi import (
    DOCS_DIR,
    PRODUCER,
    PUBLISHES,
    document,
    inline_defs,
    placeholder_service,
    rendered,
)
from crossgen_shared.envelope import encode
from crossgen_shared.events import (
    EVENT_CLASSES,
    BenefitRatings,
    Event,
    FeedbackSubmitted,
    PairingAtRisk,
    ParticipantJoined,
    schema_filename,
)
from crossgen_shared.schemas import SCHEMA_DIR
from crossgen_shared.service import Service

EVENTS_MD = DOCS_DIR.parent / "events.md"


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    return {name: placeholder_service(name) for name in PUBLISHES}


@pytest.fixture(scope="module")
def documents(services: dict[str, Service]) -> dict[str, dict[str, Any]]:
    return {name: document(service) for name, service in services.items()}


def test_checked_in_documents_match_the_code() -> None:
    expected = rendered()
    on_disk = {p.name: p.read_text() for p in DOCS_DIR.glob("*.yaml")}
    stale = sorted(name for name in expected if on_disk.get(name) != expected[name])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, (
        f"AsyncAPI documents drifted (stale: {stale}, unknown: {extra}); "
        "run `make schemas` and commit docs/asyncapi"
    )


def test_every_event_has_exactly_one_producer() -> None:
    published = Counter(cls for classes in PUBLISHES.values() for cls in classes)
    assert set(published) == set(EVENT_CLASSES)
    assert max(published.values()) == 1


def test_each_service_documents_what_it_publishes(documents: dict[str, dict[str, Any]]) -> None:
    for name, doc in documents.items():
        sent = {
            ref["$ref"].rsplit("/", 1)[1]
            for operation in doc["operations"].values()
            if operation["action"] == "send"
            for ref in operation["messages"]
        }
        assert sent == {cls.event_type() for cls in PUBLISHES[name]} | {"crossgen.dead-letter"}


def test_receive_operations_are_the_broker_subscribers(
    services: dict[str, Service], documents: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        faststream = AsyncAPI(service.broker).to_specification().to_jsonable()
        subscribed = {channel["address"] for channel in faststream["channels"].values()}
        received = {
            op["channel"]["$ref"].rsplit("/", 1)[1]
            for op in documents[name]["operations"].values()
            if op["action"] == "receive"
        }
        assert received == subscribed
        groups = {getattr(sub, "group_id", None) for sub in service.broker.subscribers}
        assert groups == {f"crossgen-{name}"}


def test_payloads_are_the_checked_in_schemas(documents: dict[str, dict[str, Any]]) -> None:
    by_type = {cls.event_type(): cls for cls in EVENT_CLASSES}
    for doc in documents.values():
        for name, message in doc["components"]["messages"].items():
            if name in by_type:
                checked_in = json.loads((SCHEMA_DIR / schema_filename(by_type[name])).read_text())
                assert message["payload"] == inline_defs(checked_in)
                assert "$ref" not in json.dumps(message["payload"])  # self-contained


def test_ce_source_is_the_producers_source(
    services: dict[str, Service], documents: dict[str, dict[str, Any]]
) -> None:
    for doc in documents.values():
        for cls, producer in PRODUCER.items():
            if message := doc["components"]["messages"].get(cls.event_type()):
                ce_source = message["headers"]["properties"]["ce_source"]["const"]
                assert ce_source == services[producer].source


def _events() -> list[Event]:
    now, learner = datetime.now(UTC), uuid4()
    pairing = {
        "pairing_id": uuid4(),
        "program_id": uuid4(),
        "learner_id": learner,
        "mentor_id": uuid4(),
    }
    return [
        ParticipantJoined(
            participant_id=learner,
            program_id=pairing["program_id"],
            person_id="E-1",
            role="mentor",
            display_name="Max",
            email="max@example.com",
            skills=("tiktok",),
            joined_at=now,
        ),
        FeedbackSubmitted(
            session_id=uuid4(),
            **pairing,
            participant_id=learner,
            ratings=BenefitRatings(**dict.fromkeys(BenefitRatings.model_fields, 4)),
            submitted_at=now,
        ),
        PairingAtRisk(**pairing, reason="no session for 21 days", detected_at=now),
    ]


@pytest.mark.parametrize("event", _events(), ids=lambda e: e.name)
def test_a_published_record_is_what_its_message_describes(
    event: Event, documents: dict[str, dict[str, Any]]
) -> None:
    record = encode(event, source=f"/crossgen/{PRODUCER[type(event)]}")
    message = documents[PRODUCER[type(event)]]["components"]["messages"][event.event_type()]
    checker = Draft202012Validator.FORMAT_CHECKER
    headers = {k: v.decode() for k, v in record.headers.items()}
    Draft202012Validator(message["headers"], format_checker=checker).validate(headers)
    payload = json.loads(record.value)
    Draft202012Validator(message["payload"], format_checker=checker).validate(payload)
    key_schema = message["bindings"]["kafka"]["key"]
    Draft202012Validator(key_schema, format_checker=checker).validate(record.key.decode())
    assert record.key.decode() == headers["ce_subject"]


async def test_served_over_http_without_a_token(services: dict[str, Service]) -> None:
    app = services["sessions"].http_app([])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sessions"
    ) as client:
        as_json = await client.get("/asyncapi.json")
        as_yaml = await client.get("/asyncapi.yaml")
    assert as_json.status_code == as_yaml.status_code == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    checked_in = (DOCS_DIR / "sessions.yaml").read_text()
    assert as_yaml.text == checked_in
    assert as_json.json() == yaml.safe_load(checked_in)


def test_events_md_lists_every_event_with_its_schema_and_producer() -> None:
    text = EVENTS_MD.read_text()
    missing = [
        cls.event_type()
        for cls in EVENT_CLASSES
        if f"| `{cls.event_type()}` | {PRODUCER[cls]} | `{cls.topic}` | `{cls.key_field}` | "
        f"[{schema_filename(cls)}](../shared/schemas/{schema_filename(cls)}) |" not in text
    ]
    assert not missing, f"docs/events.md lacks or misdescribes: {missing}"
