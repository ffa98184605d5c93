"""A batch of records is one unit of work; a batch with a bad record is handled one at a time, so
the others commit and only that one is parked. Over a real PostgreSQL."""

import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from sqlalchemy import func, select

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import topics
from crossgen_shared.consumer import Consumer, NotReady
from crossgen_shared.db import Base, InboxRecord, OutboxRecord
from crossgen_shared.envelope import Envelope, InvalidEvent, encode
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.settings import ServiceSettings
from crossgen_shared.unit_of_work import UnitOfWork

from .test_observability import joined, leave

READY: set[str] = set()  # names whose events may be handled now


async def leave_unless_bad(event: ParticipantJoined, envelope: Envelope, uow: UnitOfWork) -> None:
    """Refuses the event named "bad", as a handler refuses invalid data; emits for the others."""
    if event.display_name == "bad":
        raise InvalidEvent("this one is bad")
    if event.display_name == "later" and "later" not in READY:
        raise NotReady("what it refers to has not come yet")
    await leave(event, envelope, uow)


def record(
    offset: int, name: str = "Lea", event_id: str | None = None, partition: int = 0
) -> ConsumerRecord[Any, Any]:
    event = joined().model_copy(update={"display_name": name})
    wire = encode(event, source="/test", event_id=event_id)
    return ConsumerRecord(
        topic=topics.PARTICIPANTS,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=wire.key,
        value=wire.value,
        checksum=None,
        serialized_key_size=len(wire.key),
        serialized_value_size=len(wire.value),
        headers=list(wire.headers.items()),
    )


@pytest.fixture
async def service(postgres: LocalPostgres, tokens: TokenIssuer) -> AsyncIterator[Service]:
    database = f"test_{uuid4().hex[:12]}"
    postgres.create_database(database)
    settings = ServiceSettings(
        database_url=postgres.url(database),
        jwt_issuer=tokens.issuer,
        jwt_public_key=tokens.public_key_pem,
    )
    service = Service("batches", settings)
    async with service.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)  # just the outbox and inbox
    yield service
    await service.engine.dispose()


class Parking(Consumer):
    """Records what it dead-letters instead of publishing it."""

    parked: list[tuple[int, str]]

    async def dead_letter(self, broker: KafkaBroker, record: Any, reason: str) -> None:
        self.parked.append((record.offset, reason))


def consumer(service: Service) -> Parking:
    parking = Parking(
        service.name,
        topics.PARTICIPANTS,
        {ParticipantJoined: leave_unless_bad},
        service.unit_of_work,
    )
    parking.parked = []
    return parking


async def counts(service: Service) -> tuple[int, int]:
    async with service.sessions() as session:
        outbox = await session.scalar(select(func.count()).select_from(OutboxRecord))
        inbox = await session.scalar(select(func.count()).select_from(InboxRecord))
    return outbox or 0, inbox or 0


async def test_a_batch_is_applied_once_even_when_it_comes_again(service: Service) -> None:
    batch = [record(0), record(1), record(2, event_id="same"), record(3, event_id="same")]
    parking = consumer(service)
    await parking.handle(service.broker, batch)
    assert await counts(service) == (3, 3)  # the id seen twice in the batch: once

    await parking.handle(service.broker, batch)  # redelivered, e.g. after a crash before the ack
    assert await counts(service) == (3, 3)
    assert parking.parked == []


async def test_a_bad_record_is_parked_and_the_rest_of_its_batch_is_applied(
    service: Service,
) -> None:
    parking = consumer(service)
    garbled = dataclasses.replace(record(2), headers=[])  # no CloudEvents headers at all
    await parking.handle(service.broker, [record(0), record(1, "bad"), garbled, record(3)])

    assert parking.parked == [(2, "missing CloudEvents headers: ce_id, ce_type, ce_source,"
                               " ce_specversion"), (1, "this one is bad")]  # fmt: skip
    assert await counts(service) == (2, 2)  # records 0 and 3, nothing of the bad one


async def test_a_record_to_retry_holds_back_its_partition_only(service: Service) -> None:
    parking = consumer(service)
    batch = [
        record(0),
        record(1, "later"),
        record(2),
        record(0, partition=1),
        record(1, partition=1),
    ]
    with pytest.raises(NotReady):
        await parking.handle(service.broker, batch)
    # Partition 1 went on; partition 0 stopped at the record that must wait, in order.
    assert await counts(service) == (3, 3)

    READY.add("later")
    try:
        await parking.handle(service.broker, batch)  # the batch again, as Kafka redelivers it
    finally:
        READY.clear()
    assert await counts(service) == (5, 5)
    assert parking.parked == []
