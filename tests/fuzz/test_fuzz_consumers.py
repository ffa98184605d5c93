"""Fuzzing every consumer with bad records: garbage bytes, mutated event data, bad ce_ headers.

Whatever arrives, a consumer must not raise for it (that would be a retry loop), must park a
record it rejects in its dead-letter topic once, with a reason and its origin, must leave the
database as it was for a rejected record, and must go on handling valid events afterwards.
"""

import contextlib
import json
import os
import types
import typing
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import text

import crossgen_matching
import crossgen_notifications
import crossgen_sessions
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching.app import build as build_matching
from crossgen_matching.directory import intake, vendors
from crossgen_matching.settings import MatchingSettings
from crossgen_notifications.app import build as build_notifications
from crossgen_notifications.settings import NotificationsSettings
from crossgen_sessions.app import build as build_sessions
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared import topics
from crossgen_shared.asyncapi import placeholder_service
from crossgen_shared.consumer import Consumer, NotReady
from crossgen_shared.db import OutboxRecord
from crossgen_shared.envelope import decode, encode
from crossgen_shared.events import Event, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import parked

SERVICES: dict[str, tuple[Callable[..., Service], type, Path]] = {
    "matching": (build_matching, MatchingSettings, Path(crossgen_matching.__file__).parent),
    "sessions": (build_sessions, SessionsSettings, Path(crossgen_sessions.__file__).parent),
    "notifications": (
        build_notifications,
        NotificationsSettings,
        Path(crossgen_notifications.__file__).parent,
    ),
}
# Every consumer of every service, from the code: one added later is fuzzed too.
CONSUMED = [
    (name, consumer.topic) for name in SERVICES for consumer in placeholder_service(name).consumers
]
# CROSSGEN_FUZZ_DEPTH=10 draws ten times the examples: a deeper run by hand (README).
FUZZ = settings(
    max_examples=50 * int(os.environ.get("CROSSGEN_FUZZ_DEPTH", "1")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Record = tuple[bytes | None, dict[str, str], bytes]  # key, headers, value


# The pair every sampled event is about, so handlers that need to know them get further.
PAIR = {"learner_id": str(uuid4()), "mentor_id": str(uuid4())}


def sample(cls: type[BaseModel]) -> dict[str, Any]:
    """A valid instance's JSON data of an event (or nested model), made from its field types."""
    data: dict[str, Any] = {}
    for name in cls.model_fields:
        kind = field_type(cls, name)
        if name in PAIR:
            data[name] = PAIR[name]
        elif kind is UUID:
            data[name] = str(uuid4())
        elif kind is datetime:
            data[name] = datetime.now(UTC).isoformat()
        elif kind is int:
            data[name] = 30
        elif kind is float:
            data[name] = 0.5
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            data[name] = {f: 3 for f in kind.model_fields}
        elif typing.get_origin(kind) is typing.Literal:
            data[name] = typing.get_args(kind)[0]
        elif typing.get_origin(kind) is tuple:
            data[name] = ["ai tools"]
        elif name == "email":
            data[name] = "someone@example.com"
        else:
            data[name] = f"E-{uuid4().hex[:8]}"
    return data


def envelope(cls: type[Event], data: dict[str, Any]) -> Record:
    """``data`` as ``cls`` in a well-formed CloudEvents record (data left unvalidated)."""
    record = encode(cls.model_validate(sample(cls)), source="/fuzz")
    headers = {k: v.decode() for k, v in record.headers.items()}
    return record.key, headers, json.dumps(data).encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.text(alphabet="x\x00é", min_size=10_000, max_size=20_000),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
# Values of the right JSON type that are awkward to store or compute with, by field type.
EXTREMES: dict[type, list[Any]] = {
    str: ["x" * 300, "a\x00b", "", "é" * 5000],
    datetime: ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", "2030-01-01T12:00:00"],
    int: [2**63, -(2**31), 0, 10**6],
    float: [1e308, -1e308, 0.0],
}


def field_type(cls: type[BaseModel], name: str) -> Any:
    kind = cls.model_fields[name].annotation
    if isinstance(kind, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


# Arrays nested past the interpreter's recursion limit: json raises RecursionError, no ValueError.
nested_too_deeply = st.integers(2_000, 50_000).map(lambda depth: b"[" * depth + b"]" * depth)


@st.composite
def mutated_events(draw: st.DrawFn, events: list[type[Event]]) -> Record:
    """A valid envelope whose data has a field dropped or replaced, or whose type is unknown."""
    cls = draw(st.sampled_from(events))
    data = sample(cls)
    name = draw(st.sampled_from(sorted(data)))
    mutation = draw(
        st.sampled_from(["drop", "replace", "extremes", "version", "not an object", "too deep"])
    )
    if mutation == "drop":
        del data[name]
    elif mutation == "replace":
        data[name] = draw(json_values)
    elif mutation == "extremes":
        for each in data:
            extremes: list[Any] = EXTREMES.get(field_type(cls, each), [])
            replace: bool = draw(st.booleans())
            if extremes and replace:
                data[each] = draw(st.sampled_from(extremes))
    key, headers, value = envelope(cls, data)
    if mutation == "version":
        headers["ce_type"] = headers["ce_type"].rsplit(".", 1)[0] + ".v9"
    elif mutation == "not an object":
        value = json.dumps(draw(json_values)).encode()
    elif mutation == "too deep":
        value = draw(nested_too_deeply)
    return key, headers, value


@st.composite
def garbled_headers(draw: st.DrawFn, events: list[type[Event]]) -> Record:
    """A valid event whose ce_ headers are partly missing, garbled or overlong."""
    cls = draw(st.sampled_from(events))
    key, headers, value = envelope(cls, sample(cls))
    for name in draw(st.sets(st.sampled_from(sorted(headers)), min_size=1, max_size=2)):
        if draw(st.booleans()):
            del headers[name]
        else:
            headers[name] = draw(st.text(max_size=5) | st.text(min_size=65, max_size=300))
    return key, headers, value


garbage: st.SearchStrategy[Record] = st.tuples(
    st.none() | st.binary(max_size=20),
    st.dictionaries(
        st.sampled_from(["ce_id", "ce_type", "hris-format", "x"]), st.text(max_size=20)
    ),
    st.binary(max_size=500),
)

hris_records: st.SearchStrategy[Record] = st.tuples(
    st.none(),
    st.fixed_dictionaries({}, optional={"hris-format": st.sampled_from(sorted(vendors.MAPPERS))}),
    json_values.map(lambda v: json.dumps(v).encode()) | nested_too_deeply,
)


@dataclass
class Harness:
    service: Service
    broker: KafkaBroker
    published: int = 0

    def consumer(self, topic: str) -> Consumer:
        return next(c for c in self.service.consumers if c.topic == topic)

    async def publish(self, topic: str, record: Record) -> None:
        """Publish ``record`` marked with a number of its own: the test broker gives every record
        offset 0, and records are parked once each, so a record drawn twice would be one."""
        key, headers, value = record
        self.published += 1
        headers = headers | {"fuzz-record": str(self.published)}
        await self.broker.publish(value, topic, key=key, headers=headers)

    async def letters(self) -> list[OutboxRecord]:
        return await parked(self.service.sessions)

    async def rows(self) -> dict[str, int]:
        """Row counts of every table of the service's database."""
        async with self.service.engine.connect() as db:
            tables = await db.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            )
            return {
                t: (await db.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one()
                for t in tables.all()
            }


@pytest.fixture
def service(
    request: pytest.FixtureRequest, postgres: LocalPostgres, tokens: TokenIssuer
) -> Service:
    build, settings_type, package = SERVICES[request.param]
    return build(
        settings_type(
            database_url=migrated_database(postgres, package / "migrations"),
            jwt_issuer=tokens.issuer,
            jwt_audience=tokens.audience,
            jwt_public_key=tokens.public_key_pem,
        )
    )


@pytest.fixture
async def harness(service: Service) -> AsyncIterator[Harness]:
    async with TestKafkaBroker(service.broker) as broker:
        for role, participant_id in zip(("learner", "mentor"), PAIR.values(), strict=True):
            data = sample(ParticipantJoined) | {"participant_id": participant_id, "role": role}
            key, headers, value = envelope(ParticipantJoined, data)
            with contextlib.suppress(NotReady):
                await broker.publish(value, topics.PARTICIPANTS, key=key, headers=headers)
        yield Harness(service, broker)
    await service.engine.dispose()


def readable(topic: str, record: Record) -> bool:
    """Whether the record passes the consumer's own reading (its handler may still refuse it)."""
    key, headers, value = record
    raw = [(k, v.encode()) for k, v in headers.items()]
    try:
        if topic == topics.HRIS:
            intake.read(types.SimpleNamespace(headers=raw, value=value, timestamp=0))
        else:
            decode(dict(raw), key, value)
    except ValueError:  # InvalidEvent is one
        return False
    return True


async def check(harness: Harness, topic: str, record: Record) -> None:
    valid = readable(topic, record)
    before, dead_before = await harness.rows(), len(await harness.letters())
    try:
        await harness.publish(topic, record)
    except NotReady:
        assert valid, "an invalid record was retried instead of dead-lettered"
    parked = (await harness.letters())[dead_before:]
    assert len(parked) <= 1
    if parked or not valid:
        [letter] = parked
        assert letter.headers["dlq_reason"]
        assert letter.headers["dlq_origin_topic"] == topic
        assert letter.headers["dlq_consumer"] == harness.consumer(topic).name
        assert letter.value == record[2]
        # Nothing of it but the letter itself and the note that it was parked.
        one_more = {"outbox": before["outbox"] + 1, "inbox": before["inbox"] + 1}
        assert await harness.rows() == before | one_more, "a rejected record left writes behind"


async def still_consuming(harness: Harness, topic: str, cls: type[Event]) -> None:
    """A valid event after the fuzzed record is handled (or waits for what it refers to)."""
    before, dead_before = await harness.rows(), len(await harness.letters())
    try:
        await harness.publish(topic, envelope(cls, sample(cls)))
    except NotReady:
        return
    assert len(await harness.letters()) == dead_before
    assert (await harness.rows())["inbox"] == before["inbox"] + 1


@pytest.mark.parametrize(("service", "topic"), CONSUMED, indirect=["service"])
@FUZZ
@given(data=st.data())
async def test_a_consumer_parks_what_it_cannot_use_and_goes_on(
    harness: Harness, topic: str, data: st.DataObject
) -> None:
    if topic == topics.HRIS:
        record = data.draw(garbage | hris_records)
    else:
        events = list(harness.consumer(topic).handlers)
        record = data.draw(garbage | mutated_events(events) | garbled_headers(events))
    await check(harness, topic, record)
    if topic != topics.HRIS:
        await still_consuming(harness, topic, data.draw(st.sampled_from(events)))
