"""A batch of records is one unit of work; a batch with a bad record is handled one at a time, so
the others commit and only that one is parked, once. Over a real PostgreSQL."""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import anyio.to_thread
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faststream.kafka import TestKafkaBroker
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import topics
from crossgen_shared.consumer import (
    QUIET_WAITS,
    Consumer,
    Handler,
    HeldBack,
    NotReady,
    Progress,
)
from crossgen_shared.db import InboxRecord
from crossgen_shared.envelope import Envelope, InvalidEvent
from crossgen_shared.events import Event, ParticipantJoined, ParticipantLeft
from crossgen_shared.service import Service
from crossgen_shared.testing import consumer_record, outbox, parked, publish_event
from crossgen_shared.unit_of_work import UnitOfWork

from .messaging import fresh_settings, messaging_service
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
    return consumer_record(event, offset, event_id=event_id, partition=partition)


@pytest.fixture
async def service(postgres: LocalPostgres, tokens: TokenIssuer) -> AsyncIterator[Service]:
    service = await messaging_service("batches", fresh_settings(postgres, tokens))
    yield service
    await service.engine.dispose()


def consumer(
    service: Service, progress: Progress | None = None, handler: Handler = leave_unless_bad
) -> Consumer:
    handlers: dict[type[Event], Handler] = {ParticipantJoined: handler}
    return Consumer(
        service.name, topics.PARTICIPANTS, handlers, service.unit_of_work, progress=progress
    )


async def counts(service: Service) -> tuple[int, int]:
    """Events emitted, and events handled."""
    async with service.sessions() as session:
        inbox = await session.scalar(
            select(func.count()).where(InboxRecord.consumer == f"batches:{topics.PARTICIPANTS}")
        )
    return len(await outbox(service.sessions)), inbox or 0


async def letters(service: Service) -> list[tuple[str, str]]:
    """What was parked: each record's origin offset and the reason."""
    rows = await parked(service.sessions)
    return [(row.headers["dlq_origin_offset"], row.headers["dlq_reason"]) for row in rows]


async def test_a_batch_is_applied_once_even_when_it_comes_again(service: Service) -> None:
    batch = [record(0), record(1), record(2, event_id="same"), record(3, event_id="same")]
    parking = consumer(service)
    await parking.handle(batch)
    assert await counts(service) == (3, 3)  # the id seen twice in the batch: once

    await parking.handle(batch)  # redelivered, e.g. after a crash before the ack
    assert await counts(service) == (3, 3)
    assert await letters(service) == []


async def test_a_batch_reaches_its_handler_without_a_thread_hop(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[Any] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    service.consume(topics.PARTICIPANTS, {ParticipantJoined: leave_unless_bad})
    async with TestKafkaBroker(service.broker) as broker:
        await publish_event(broker, joined())
    assert await counts(service) == (1, 1)
    assert hops == [], "a worker thread for every batch costs a thread hop each time"


async def test_a_bad_record_is_parked_and_the_rest_of_its_batch_is_applied(
    service: Service,
) -> None:
    parking = consumer(service)
    garbled = dataclasses.replace(record(2), headers=[])  # no CloudEvents headers at all
    await parking.handle([record(0), record(1, "bad"), garbled, record(3)])

    missing = "missing CloudEvents headers: ce_id, ce_type, ce_source, ce_specversion"
    assert await letters(service) == [("2", missing), ("1", "this one is bad")]
    assert await counts(service) == (2, 2)  # records 0 and 3, nothing of the bad one
    [letter, _] = await parked(service.sessions)
    assert letter.topic == topics.dead_letter("batches") and letter.value == garbled.value
    assert letter.key == garbled.key and letter.headers["dlq_consumer"] == parking.name


@dataclasses.dataclass
class Misreading(Consumer):
    """Its reading fails on the record named "unreadable", as a reader with a bug would."""

    def receive(self, record: Any) -> Any:
        if b'"unreadable"' in record.value:
            raise KeyError("display_name")
        return super().receive(record)


async def test_a_record_its_consumer_fails_to_read_is_parked_not_read_again_forever(
    service: Service,
) -> None:
    """Reading depends on the record alone: raised, the batch would come again, and fail again."""
    handlers: dict[type[Event], Handler] = {ParticipantJoined: leave_unless_bad}
    misreading = Misreading(service.name, topics.PARTICIPANTS, handlers, service.unit_of_work)
    await misreading.handle([record(0), record(1, "unreadable"), record(2)])

    assert await letters(service) == [("1", "cannot be read: KeyError: 'display_name'")]
    assert await counts(service) == (2, 2)


async def test_an_event_without_a_handler_is_passed_by_unread(service: Service) -> None:
    """Its consumers that handle it check it: here it is neither read nor parked, even broken.
    An unknown type is still parked: no consumer could use it."""
    left = consumer_record(
        ParticipantLeft(
            participant_id=uuid4(), program_id=uuid4(), reason="moved", left_at=datetime.now(UTC)
        ),
        1,
    )
    broken = dataclasses.replace(left, offset=2, value=b"not json")
    unknown = dataclasses.replace(
        left,
        offset=3,
        headers=[
            (k, b"crossgen.someone-left.v1" if k == "ce_type" else v) for k, v in left.headers
        ],
    )
    await consumer(service).handle([record(0), left, broken, unknown])

    assert await counts(service) == (1, 1)  # record 0's, alone
    assert await letters(service) == [("3", "unknown event type 'crossgen.someone-left.v1'")]


async def test_a_record_is_parked_once_however_often_its_batch_comes(service: Service) -> None:
    parking = consumer(service)
    garbled = dataclasses.replace(record(1), headers=[])
    batch = [record(0, "later"), garbled, record(0, "bad", partition=1), record(1, partition=1)]
    for _ in range(3):  # the record that must wait makes its batch come again
        with pytest.raises(HeldBack):
            await parking.handle(batch)
    places = [
        (row.headers["dlq_origin_partition"], row.headers["dlq_origin_offset"])
        for row in await parked(service.sessions)
    ]
    assert places == [("0", "1"), ("1", "0")]
    assert await counts(service) == (1, 1)  # partition 1's good record, once


async def test_a_record_to_retry_holds_back_its_partition_only(service: Service) -> None:
    parking = consumer(service)
    batch = [
        record(0),
        record(1, "later"),
        record(2),
        record(0, partition=1),
        record(1, partition=1),
    ]
    with pytest.raises(HeldBack) as held:
        await parking.handle(batch)
    assert isinstance(held.value.cause, NotReady)
    assert held.value.offsets == {TopicPartition(topics.PARTICIPANTS, 0): 1}
    # Partition 1 went on; partition 0 stopped at the record that must wait, in order.
    assert await counts(service) == (3, 3)

    READY.add("later")
    try:
        await parking.handle(batch)  # the batch again, as Kafka redelivers it
    finally:
        READY.clear()
    assert await counts(service) == (5, 5)
    assert await letters(service) == []


async def test_an_event_that_must_wait_is_a_warning_only_once_it_keeps_waiting(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    waiting, batch = consumer(service), [record(0, "later")]
    with caplog.at_level(logging.INFO, logger="crossgen_shared.consumer"):
        for _ in range(QUIET_WAITS + 2):  # the same record, as Kafka redelivers it
            with pytest.raises(HeldBack):
                await waiting.handle(batch)
    levels = [one.levelno for one in caplog.records if "attempt" in one.getMessage()]
    assert levels == [logging.INFO] * QUIET_WAITS + [logging.WARNING] * 2


async def bring_later(event: ParticipantJoined, envelope: Envelope, uow: UnitOfWork) -> None:
    READY.add("later")  # what the early one refers to, come through another topic


def bringing(service: Service, progress: Progress) -> Consumer:
    """Another consumer of the service, on another topic, whose records make "later" ready."""
    handlers: dict[type[Event], Handler] = {ParticipantJoined: bring_later}
    return Consumer(service.name, "elsewhere", handlers, service.unit_of_work, progress=progress)


def waited(consumer: Consumer) -> float:
    labels = {"consumer": consumer.name}
    return REGISTRY.get_sample_value("crossgen_batches_waited_total", labels) or 0.0


async def test_a_batch_that_overtook_what_it_refers_to_is_applied_whole_once_that_came(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    refused = asyncio.Event()

    async def refusing(event: ParticipantJoined, envelope: Envelope, uow: UnitOfWork) -> None:
        try:
            await leave_unless_bad(event, envelope, uow)
        except NotReady:
            refused.set()
            raise

    progress = Progress()
    waiting, other = consumer(service, progress, refusing), bringing(service, progress)
    waits_before = waited(waiting)
    try:
        with caplog.at_level(logging.INFO, logger="crossgen_shared.consumer"):
            handling = asyncio.create_task(waiting.handle([record(0), record(1, "later")]))
            await refused.wait()
            await other.handle([record(0, "Ola")])
            await handling  # no HeldBack
    finally:
        READY.clear()
    assert await counts(service) == (2, 2)
    assert "one at a time" not in caplog.text  # applied together, in one transaction
    assert waited(waiting) == waits_before + 1


async def test_what_another_consumer_applied_during_the_failing_try_is_worth_another_at_once(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    progress = Progress()
    other = bringing(service, progress)

    async def refusing(event: ParticipantJoined, envelope: Envelope, uow: UnitOfWork) -> None:
        if event.display_name == "later" and "later" not in READY:
            await other.handle([record(0, "Ola")])  # what it waits for, applied meanwhile
            raise NotReady("applied a moment too late for this try")
        await leave_unless_bad(event, envelope, uow)

    waiting = consumer(service, progress, refusing)
    try:
        with caplog.at_level(logging.INFO, logger="crossgen_shared.consumer"):
            await waiting.handle([record(0), record(1, "later")])  # nobody applies after it
    finally:
        READY.clear()
    assert await counts(service) == (2, 2)
    assert "one at a time" not in caplog.text


async def test_a_record_held_back_before_does_not_make_its_consumer_wait_again(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = Progress()
    waiting, batch = consumer(service, progress), [record(0), record(1, "later")]
    with pytest.raises(HeldBack):
        await waiting.handle(batch)  # nobody else applies anything: waits, then holds it back
    looks: list[int] = []

    async def since(applied_batches: int) -> None:
        looks.append(applied_batches)

    monkeypatch.setattr(progress, "since", since)
    with pytest.raises(HeldBack):
        await waiting.handle(batch[1:])  # the held record again, as Kafka redelivers it
    assert looks == []


class NotesBatches:
    """A handler, and the consumer's batch around it (``in_turn``): notes the events of each
    batch it was given, once the batch's work is done, and handles each as ``leave_unless_bad``
    does."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.within: UnitOfWork | None = None

    async def __call__(self, event: ParticipantJoined, envelope: Envelope, uow: UnitOfWork) -> None:
        assert self.within is uow  # called in turn, inside its batch
        await leave_unless_bad(event, envelope, uow)

    @asynccontextmanager
    async def batch(self, uow: UnitOfWork, events: list[ParticipantJoined]) -> AsyncIterator[None]:
        self.within = uow
        yield
        self.within = None
        self.batches.append([event.display_name for event in events])


async def test_a_consumer_s_batch_in_turn_is_given_its_fresh_events_first(service: Service) -> None:
    handler = NotesBatches()
    in_turn = Consumer(
        service.name,
        topics.PARTICIPANTS,
        {ParticipantJoined: handler},
        service.unit_of_work,
        in_turn=handler.batch,
    )
    batch = [record(0, "A"), record(1, "B", event_id="same"), record(2, "C", event_id="same")]
    await in_turn.handle(batch)
    assert handler.batches == [["A", "B"]] and await counts(service) == (2, 2)

    await in_turn.handle(batch)  # redelivered: nothing fresh, no batch
    assert handler.batches == [["A", "B"]] and await counts(service) == (2, 2)

    # A bad record fails the batch before its end, which is not run; one at a time, each is a
    # batch of its own.
    await in_turn.handle([record(3, "D"), record(4, "bad"), record(5, "E")])
    assert handler.batches == [["A", "B"], ["D"], ["E"]]
    assert await letters(service) == [("4", "this one is bad")]


async def test_a_batch_the_database_could_not_take_is_one_warning_naming_the_cause(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    async def refused(event: ParticipantJoined, envelope: Envelope, uow: UnitOfWork) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    with (
        caplog.at_level(logging.INFO, logger="crossgen_shared.consumer"),
        pytest.raises(ConnectionRefusedError),
    ):
        await consumer(service, handler=refused).handle([record(0), record(1)])
    assert [(one.levelno, one.getMessage()) for one in caplog.records] == [
        (
            logging.WARNING,
            f"batches:{topics.PARTICIPANTS}: the database is unavailable"
            " (ConnectionRefusedError: [Errno 111] Connection refused); retrying the batch in 1 s",
        )
    ]
