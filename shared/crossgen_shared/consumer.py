"""Consuming events: decode, dead-letter what is invalid, handle each event id once.

Records come in batches (what the broker has ready, or gathers within ``batch_wait``, up to
``batch_size``), and a batch is handled in one unit of work that also records each event id in
the inbox, so a redelivered event has no second effect and a busy topic costs one transaction
per batch, not one per record. The Kafka offsets are committed only after that transaction, a
moment later with the next batches' (``offsets.py``); on an exception each partition is rewound
to the batch's first record, and the batch comes again.
A batch that fails is rolled back whole and handled again one record at a time, each in a unit of
work of its own, which finds the record at fault: the others commit, that one is retried or
parked. A record to retry (``NotReady``) holds back only its partition: the consumer rewinds
that partition to it and pauses it for a backoff, and goes on with the others (their offsets are
committed; the held partition's stop at the record). Such a record has usually just overtaken
the event it refers to, on another of the service's topics: before a new batch is taken apart
for it, the batch is tried again as soon as another consumer of the service has applied records
since the last try began, for up to ``READY_WAIT``.

An event of ours that the consumer has no handler for is passed by unread (the consumers that
handle it check it); anything else that cannot be read is invalid. A record is parked in the
service's dead-letter topic through the outbox, in a transaction that claims it in the inbox: a
batch that comes again, or a crash before the offsets were committed, does not park it twice.
"""

import asyncio
import hashlib
import itertools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter

from crossgen_shared import dead_letters, observability, topics
from crossgen_shared.db import refused_data, unavailable
from crossgen_shared.envelope import Envelope, InvalidEvent, decode
from crossgen_shared.events import BY_TYPE, Event
from crossgen_shared.offsets import OffsetCommits, spans
from crossgen_shared.unit_of_work import UnitOfWork
from crossgen_shared.unreadable import UnreadableRecords

log = logging.getLogger(__name__)

CONSUMED = Counter(
    "crossgen_events_consumed_total", "Events consumed", ["consumer", "type", "outcome"]
)
WAITED = Counter(
    "crossgen_batches_waited_total",
    "Batches tried again once another consumer applied records (an event came too early)",
    ["consumer"],
)

# A Kafka consumer's background tasks, by the attribute that holds each (``kafka_tasks_ended``).
KAFKA_TASKS = {
    "metadata task": ("_client", "_sync_task"),
    "fetch task": ("_fetcher", "_fetch_task"),
}

Handler = Callable[[Any, Envelope, UnitOfWork], Awaitable[None]]
Work = Callable[[UnitOfWork], Awaitable[None]]


class NotReady(Exception):
    """The event refers to something this service has not seen yet: retry it later.

    Events arrive on several topics, so an event may come before the one it depends on.
    """


# Seconds a batch that failed on NotReady, none of its records tried before, waits for the
# service's other consumers to apply what it refers to, trying again after each batch they apply.
# Taken apart instead, the batch cost a transaction per record, and the record and the rest of its
# partition waited a backoff and a fetch. Notifications' proposals overtook their participants
# 0-5 times in a benchmark run (40 s at 200 records/s), and their emails took 0.3-0.5 s more.
READY_WAIT = 0.5


class Progress:
    """Counts the batches a service's consumers applied, and wakes whoever waits for the next."""

    def __init__(self) -> None:
        self.applied_batches = 0
        self._next = asyncio.Event()

    def applied(self) -> None:
        self.applied_batches += 1
        self._next.set()
        self._next = asyncio.Event()

    async def since(self, applied_batches: int) -> None:
        """Returns once more than ``applied_batches`` were applied: at once if they were."""
        if self.applied_batches == applied_batches:
            await self._next.wait()


# Attempts of an event that must wait logged at INFO: one that overtook what it refers to is a
# normal race, and usually goes through at the next try. One still waiting after four (backoffs
# of 0.2, 0.4, 0.8 and 1.6 s: about 3 s) is a warning.
QUIET_WAITS = 4


class HeldBack(Exception):
    """Records of a batch to try again later, each holding back its partition from its offset
    on; the batch's other records were applied."""

    def __init__(self, cause: Exception, offsets: dict[TopicPartition, int], delay: float) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.offsets = offsets
        self.delay = delay  # seconds to wait before trying again


# Work on a batch's records that costs less knowing them all (one lock, one read for them all):
# given what each fresh record carries (its event), it wraps the records' work, still done in
# turn, each coming out as it would alone. What it does after its ``yield`` belongs to the
# batch's transaction and runs only when all the work succeeded.
InTurn = Callable[[UnitOfWork, list[Any]], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Received:
    """A record read and understood: what to do with it, under which inbox id."""

    record: Any  # aiokafka's ConsumerRecord
    event_id: str
    label: str  # its type, for the metrics
    work: Work
    item: Any = None  # what the consumer's ``in_turn`` is given of it: its event, say


AGAIN_AFTER = 1.0  # seconds a batch the database could not take waits before it comes again
RESTART_STOP = 10.0  # seconds a restart waits for the Kafka consumer it replaces to stop
POSITION_WAIT = 1.0  # seconds the group watch waits to learn where a consumer is

# About a full batch of our events (0.5-1 KB each): a burst fills it at once and never waits.
BATCH_BYTES = 64 * 1024


@dataclass
class Consumer:
    """One consumer of one topic, in the service's consumer group."""

    service: str
    topic: str
    handlers: Mapping[type[Event], Handler]
    uow: Callable[[], UnitOfWork]
    max_attempts: int = 30
    # Records handled in one transaction at most: a larger batch saves more commits but holds
    # its locks longer, and a batch with a bad record is handled again one record at a time.
    batch_size: int = 100
    in_turn: InTurn | None = None
    # Seconds a handled batch's offsets may wait to be committed with the next ones (offsets.py):
    # a service passes its setting; 0 commits each batch's before the next.
    commit_every: float = 0.0
    # Seconds the broker may hold a fetch until it has BATCH_BYTES: a batch has a fixed cost (its
    # transaction, its outbox round, its produce request), so at a steady rate fewer, larger
    # batches save CPU, for up to that much latency. 0: answer as soon as a record is there.
    # Only the pipeline's entry waits (matching's ``hris_batch_wait`` says why).
    batch_wait: float = 0.0
    # Seconds the group waits for a member that stopped without leaving before its partitions
    # go to the others: a service passes its setting; this is aiokafka's default.
    session_timeout: float = 10.0
    # The service's consumers' applied batches, for a batch that came too early to wait for.
    progress: Progress | None = None
    # Bytes a dead letter may hold: less if the dead-letter topic takes less (``Service``).
    letter_limit: int = dead_letters.LIMIT
    attempts: dict[str, int] = field(default_factory=dict)
    offsets: OffsetCommits = field(init=False)
    unreadable: UnreadableRecords = field(init=False)
    subscriber: Any = field(init=False, default=None)  # FastStream's, once registered
    stopping: set[asyncio.Task[None]] = field(init=False, default_factory=set)  # (``restart``)
    # When a batch last brought records of each partition (time.monotonic), and whether one is
    # being handled now: what the group watch needs to tell a stalled consumer from a busy one.
    taken_at: dict[TopicPartition, float] = field(init=False, default_factory=dict)
    handling: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.offsets = OffsetCommits(self.name, self.commit_every)
        group = topics.consumer_group(self.service)
        self.unreadable = UnreadableRecords(self.name, group, self.batch_size, self.offsets)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.topic}"

    def register(self, broker: KafkaBroker) -> None:
        self.subscriber = subscriber = broker.subscriber(
            self.topic,
            group_id=topics.consumer_group(self.service),
            auto_offset_reset="earliest",
            # A producer writing in transactions (Kafka Connect's exactly-once sources do): what
            # it aborted is not handled, what it has not committed yet waits.
            isolation_level="read_committed",
            # Committed by ``self.offsets``, after the batch's transaction; on an exception
            # ``consume`` rewinds the batch's partitions as FastStream's NACK would.
            ack_policy=AckPolicy.MANUAL,
            listener=self.offsets,
            batch=True,
            max_records=self.batch_size,
            parser=_parsed,
            decoder=_undecoded,
            # A rebalance waits for every member's next heartbeat, and a service's consumers join
            # one after another at its start: at the default 3 s, a restart took 3 s more for
            # each of them.
            heartbeat_interval_ms=1000,
            session_timeout_ms=round(self.session_timeout * 1000),  # rebalance timeout too
            # Without a wait, aiokafka's defaults: the broker answers as soon as a record is
            # there. At least 1 ms: 0 ms with BATCH_BYTES to gather would poll in a loop.
            fetch_min_bytes=BATCH_BYTES if self.batch_wait else 1,
            fetch_max_wait_ms=max(1, round(self.batch_wait * 1000)) if self.batch_wait else 500,
            title=f"{self.service} <- {self.topic}",
            description=self.description,
        )

        # FastStream fetches each batch with ``get_msg``: around a record the client cannot read.
        self.subscriber.get_msg = self.unreadable.around(subscriber.get_msg)
        context = broker.context

        # The message is taken from the context, not asked for as a parameter: FastStream
        # resolves such a parameter in a worker thread, a thread hop for every batch. The body
        # is left undecoded: ``handle`` reads the records themselves.
        async def consume(body: Any) -> None:
            message: KafkaMessage = context.get_local("message")
            records = message.raw_message  # a tuple (a list under TestKafkaBroker)
            batch = records if isinstance(records, tuple | list) else (records,)
            consumer = message.consumer
            real = isinstance(consumer, AIOKafkaConsumer)  # not FastStream's test broker's
            held_at = None
            if real:
                now = time.monotonic()
                self.taken_at.update((partition, now) for partition in spans(batch))
            self.handling = True
            try:
                await self.handle(batch)
            except HeldBack as held:
                await self.hold_back(consumer, held)
                held_at = held.offsets
            except BaseException:
                if real:
                    _rewind(consumer, batch)  # the batch comes again
                raise
            finally:
                self.handling = False
            if real:
                await self.offsets.handled(consumer, batch, held_at)

        subscriber(consume)

    def partitions(self) -> set[TopicPartition]:
        """The topic's partitions, as the running Kafka consumer knows them; none before it
        runs, or on FastStream's test broker."""
        consumer = getattr(self.subscriber, "consumer", None)
        if not isinstance(consumer, AIOKafkaConsumer):
            return set()
        known = consumer.partitions_for_topic(self.topic) or ()
        return {TopicPartition(self.topic, partition) for partition in known}

    def assigned(self) -> set[TopicPartition]:
        """The partitions the running Kafka consumer holds in the group now, but those waiting
        at a record it cannot read: someone must move the group past it."""
        consumer = getattr(self.subscriber, "consumer", None)
        if not isinstance(consumer, AIOKafkaConsumer):
            return set()
        return consumer.assignment() - self.unreadable.waiting(consumer)

    def last_taken(self, partition: TopicPartition) -> float | None:
        """When a batch last brought records of ``partition`` (time.monotonic, 0 if none has);
        None while a batch is handled: a consumer waiting for its database is busy, not
        stalled."""
        return None if self.handling else self.taken_at.get(partition, 0.0)

    async def position(self, partition: TopicPartition) -> int | None:
        """The offset of the next record the Kafka consumer will take of ``partition``; None if
        it cannot tell at once (not running, not holding it, its position being looked up)."""
        consumer = getattr(self.subscriber, "consumer", None)
        if not isinstance(consumer, AIOKafkaConsumer):
            return None
        try:
            async with asyncio.timeout(POSITION_WAIT):
                return int(await consumer.position(partition))
        except (TimeoutError, IllegalStateError):
            return None

    def kafka_tasks_ended(self) -> dict[str, str]:
        """How each of the Kafka consumer's background tasks that ended did: the likely cause of
        a stall, which the group watch logs. Neither ends unless the consumer stops, and aiokafka
        notices neither's end: the metadata task (the group coordinator waits on it) and the
        fetch task (aio-libs/aiokafka#983). aiokafka keeps them private, hence the getattr."""
        consumer = getattr(self.subscriber, "consumer", None)
        ended = {}
        for name, (part, attribute) in KAFKA_TASKS.items():
            task = getattr(getattr(consumer, part, None), attribute, None)
            if not isinstance(task, asyncio.Task) or not task.done():
                continue
            if task.cancelled():
                ended[name] = "cancelled"
            elif (failure := task.exception()) is not None:
                ended[name] = "".join(traceback.format_exception(failure))
            else:
                ended[name] = "returned"  # aiokafka's fetch task, on a cancel it swallowed
        return ended

    async def restart(self) -> None:
        """A new Kafka consumer in place of this one's, which joins the group afresh. The old one
        is waited for ``RESTART_STOP`` seconds at most: one that stalled may take as long as its
        stall to stop, and stops in the background meanwhile."""
        self.offsets.forget()
        # FastStream's subscriber stops its consume loop; the Kafka consumer is ours to stop.
        old, self.subscriber.consumer = self.subscriber.consumer, None
        await self.subscriber.stop()
        stopping = asyncio.create_task(old.stop(), name=f"{self.name} stalled consumer")
        if not (await asyncio.wait({stopping}, timeout=RESTART_STOP))[0]:
            log.warning("%s: the stalled Kafka consumer stops in the background", self.name)
            self.stopping.add(stopping)
            stopping.add_done_callback(self.stopping.discard)
        # Until it starts: a consumer left stopped would read nothing, and the watch would no
        # longer see it (it has no partitions).
        for failures in itertools.count(1):
            try:
                await self.subscriber.start()
                return
            except Exception as exc:
                await self.subscriber.stop()
                await observability.wait_to_retry(log, f"{self.name}: restart", exc, failures)

    @property
    def description(self) -> str:
        return ", ".join(cls.event_type() for cls in self.handlers)

    async def handle(self, records: Sequence[Any]) -> None:
        """Handle a batch of records in their order (which keeps each partition's); raises
        HeldBack for records to try again later."""
        received: list[Received] = []
        for record in records:
            try:
                found = self.receive(record)
            except InvalidEvent as exc:
                await self.dead_letter(record, str(exc))
                continue
            except MemoryError:
                raise  # the process's trouble, not the record's
            except Exception as exc:
                # A reader's bug, most likely. Reading depends on the record alone, so it would
                # fail on every redelivery and hold up its partition for good: parked instead,
                # to replay once the reader is fixed.
                log.exception("%s: cannot read %s", self.name, _place(record))
                await self.dead_letter(record, f"cannot be read: {type(exc).__name__}: {exc}")
                continue
            if found is not None:
                received.append(found)
        if len(received) > 1 and await self._apply_together(received):
            return
        # One at a time. A record to retry holds back the rest of its partition, not the others.
        held: dict[TopicPartition, int] = {}
        errors: list[Exception] = []
        delay = 0.0
        for one in received:
            where = TopicPartition(one.record.topic, one.record.partition)
            if where in held:
                continue
            try:
                await self.apply_once(one)
            except Exception as exc:
                if unavailable(exc):
                    raise  # the database: the other records would fail alike
                held[where] = one.record.offset
                errors.append(exc)
                delay = max(delay, min(0.1 * 2 ** self.attempts.get(one.event_id, 1), 2.0))
        if held:
            raise HeldBack(errors[0], held, delay)

    async def hold_back(self, consumer: Any, held: HeldBack) -> None:
        """Rewind each held partition to its record and pause it for the backoff: the consumer
        goes on with its other partitions, and the offsets committed next stop at that record.
        A consumer that cannot pause (FastStream's test broker) waits, then the batch comes
        again."""
        if not isinstance(consumer, AIOKafkaConsumer):
            await asyncio.sleep(held.delay)
            raise held.cause
        for partition, offset in held.offsets.items():
            consumer.seek(partition, offset)
        consumer.pause(*held.offsets)
        asyncio.get_running_loop().call_later(held.delay, _resume, consumer, [*held.offsets])

    def receive(self, record: Any) -> Received | None:
        """What to do with one record, None to pass it by; InvalidEvent when it is not valid."""
        headers = {k: v for k, v in record.headers or ()}
        kind = BY_TYPE.get(headers.get("ce_type", b"").decode(errors="replace"))
        if kind is not None and kind not in self.handlers:
            # An event of ours this consumer has no use for, passed by unread: the consumers
            # that handle it check it (and park it if it is invalid). Reading it cost the
            # sessions service most of its CPU, for events it then ignored.
            CONSUMED.labels(self.name, kind.event_type(), "ignored").inc()
            return None
        envelope = decode(headers, record.key, record.value)
        handler = self.handlers[type(envelope.event)]

        async def work(uow: UnitOfWork) -> None:
            await handler(envelope.event, envelope, uow)

        return Received(record, envelope.id, envelope.type, work, envelope.event)

    async def _apply(self, uow: UnitOfWork, batch: Sequence[Received]) -> list[tuple[str, str]]:
        """Claim the batch's ids in the inbox and run the work of those not handled before, in
        ``uow``; returns each record's (label, outcome) for the metrics once committed."""
        fresh = await uow.claim_all(self.name, [one.event_id for one in batch])
        outcomes, todo = [], []
        for one in batch:
            if one.event_id not in fresh:
                outcomes.append((one.label, "duplicate"))
                continue
            fresh.discard(one.event_id)  # the same id twice in one batch: once
            todo.append(one)
            outcomes.append((one.label, "handled"))
        in_turn = self.in_turn(uow, [one.item for one in todo]) if self.in_turn and todo else None
        async with in_turn or nullcontext():
            for one in todo:
                with _continuing_trace(one.record):
                    await one.work(uow)
        return outcomes

    def _done(self, batch: Sequence[Received], outcomes: list[tuple[str, str]]) -> None:
        for label, outcome in outcomes:
            CONSUMED.labels(self.name, label, outcome).inc()
        for one in batch:
            self.attempts.pop(one.event_id, None)
        if self.progress is not None:
            self.progress.applied()

    async def _apply_together(self, batch: Sequence[Received]) -> bool:
        """Apply the batch in one unit of work; False, with nothing applied, if a record failed.

        Trouble with the database itself is raised instead: the whole batch comes again."""
        until = asyncio.get_running_loop().time() + READY_WAIT
        while True:
            # What the service had applied when this try began: what another consumer applies
            # meanwhile, even before this try fails, is worth another.
            seen = self.progress.applied_batches if self.progress else 0
            try:
                async with self.uow() as uow:
                    outcomes = await self._apply(uow, batch)
                    await uow.commit()
            except Exception as exc:
                if isinstance(exc, NotReady) and await self._others_applied(batch, seen, until):
                    WAITED.labels(self.name).inc()
                    continue
                if await self._waited_out(exc, "retrying the batch"):
                    raise
                log.info("%s: a batch of %d failed (%s); one at a time", self.name, len(batch), exc)
                return False
            self._done(batch, outcomes)
            return True

    async def _others_applied(self, batch: Sequence[Received], seen: int, until: float) -> bool:
        """Whether the service's other consumers applied records since ``seen`` batches, by
        ``until``; waited for when none of the batch's records was tried before: a record held
        back before is waiting for more than a race, and the consumer does not stall on it each
        time."""
        if self.progress is None or any(one.event_id in self.attempts for one in batch):
            return False
        if asyncio.get_running_loop().time() >= until:
            return False  # (a timeout past its deadline lets a body that never waits finish)
        try:
            async with asyncio.timeout_at(until):
                await self.progress.since(seen)
        except TimeoutError:
            return False
        return True

    async def apply_once(self, one: Received) -> None:
        """Apply one record in a unit of work of its own, with its inbox claim.

        Trouble that may pass is raised, to be tried again (``handle`` holds its partition back);
        a record the work rejects as invalid (InvalidEvent), or that keeps failing, is parked.
        """
        record, event_id = one.record, one.event_id
        try:
            async with self.uow() as uow:
                outcomes = await self._apply(uow, [one])
                await uow.commit()
        except InvalidEvent as exc:
            self.attempts.pop(event_id, None)
            await self.dead_letter(record, str(exc))
            return
        except Exception as exc:
            if refused_data(exc):
                # The record's data does not fit the database (too long, NUL, out of range):
                # every retry would fail the same way.
                await self.dead_letter(record, f"data refused: {getattr(exc, 'orig', exc)}")
                return
            # Infrastructure trouble is not the record's fault: never dead-letter, retry.
            if await self._waited_out(exc, f"retrying event {event_id}"):
                raise
            attempt = self.attempts.get(event_id, 0) + 1
            if attempt >= self.max_attempts:
                self.attempts.pop(event_id, None)
                await self.dead_letter(record, f"{type(exc).__name__}: {exc}")
                return
            self.attempts[event_id] = attempt
            quiet = isinstance(exc, NotReady) and attempt <= QUIET_WAITS
            level = logging.INFO if quiet else logging.WARNING
            log.log(level, "%s: %s attempt %d failed: %s", self.name, event_id, attempt, exc)
            raise
        self._done([one], outcomes)

    async def _waited_out(self, exc: Exception, then: str) -> bool:
        """Whether ``exc`` is the database's trouble, after a pause if so: the caller raises it,
        and the batch comes again a second later rather than at once."""
        if not unavailable(exc):
            return False
        observability.log_failure(log, self.name, exc, f"{then} in {AGAIN_AFTER:g} s")
        await asyncio.sleep(AGAIN_AFTER)
        return True

    async def dead_letter(self, record: Any, reason: str) -> None:
        """Park a record with why and where it came from, once; the consumer goes on with the
        next. Raises when the database is unavailable: the batch comes again."""
        try:
            async with self.uow() as uow:
                first = await uow.claim_all(f"{self.name} dead letters", [record_digest(record)])
                if first:
                    parked = dead_letters.letter(self.name, record, reason, self.letter_limit)
                    uow.forward(
                        topics.dead_letter(self.service), parked.key, parked.value, parked.headers
                    )
                await uow.commit()
        except Exception as exc:
            await self._waited_out(exc, "trying to park the record again")
            raise
        if first:
            CONSUMED.labels(self.name, "-", "dead-lettered").inc()
            log.warning("%s: dead-lettering %s: %s", self.name, _place(record), reason)


# What FastStream's parsing or decoding of a batch raises skips the batch, before ``consume``
# can rewind it or park the record at fault: the batch's records are lost. So neither may raise.


async def _parsed(
    records: tuple[Any, ...], parse: Callable[[tuple[Any, ...]], Awaitable[KafkaMessage]]
) -> KafkaMessage:
    """FastStream's parsing, which decodes every header value as UTF-8. A value that is not (a
    binary header, as Spring Kafka's correlation id) or that is null comes to FastStream and to
    ``consume`` as text (U+FFFD for the bytes), or empty: every reader of headers here decodes
    them so anyway."""
    try:
        return await parse(records)
    except (UnicodeDecodeError, AttributeError):
        return await parse(tuple(map(_readable_headers, records)))


def _readable_headers(record: Any) -> Any:
    readable = [(k, (v or b"").decode(errors="replace").encode()) for k, v in record.headers]
    return replace(record, headers=readable)


async def _undecoded(message: KafkaMessage) -> None:
    """FastStream's decoding, left out: it parsed every value as JSON (a second time, for
    nothing), and json raises RecursionError for a value nested too deeply."""
    return None


def _place(record: Any) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _rewind(consumer: AIOKafkaConsumer, records: Sequence[Any]) -> None:
    """Each of the records' partitions back to its first record among them."""
    for partition, (first, _) in spans(records).items():
        consumer.seek(partition, first)


def _resume(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    assigned = consumer.assignment()  # a partition revoked meanwhile is no longer ours to resume
    consumer.resume(*(partition for partition in partitions if partition in assigned))


def record_digest(record: Any) -> str:
    """What the inbox knows a record (aiokafka's) by where it has no id of its own: a digest of
    where it sits, when it was written and what it holds. Its place alone does not tell records
    apart: a topic deleted and created again numbers its records from 0 again, and FastStream's
    test broker gives every record offset 0."""
    place = f"{record.topic}:{record.partition}:{record.offset}:{record.timestamp}"
    digest = hashlib.sha256(place.encode())
    for part in (record.key or b"", record.value or b"", *(v for _, v in record.headers or ())):
        digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(repr([k for k, _ in record.headers or ()]).encode())
    return digest.hexdigest()


@contextmanager
def _continuing_trace(record: Any) -> Iterator[None]:
    """A span for one record of a batch, in the trace its headers carry: the events its work
    emits continue that trace."""
    headers = {
        k: v.decode(errors="replace")
        for k, v in record.headers or ()
        if k in observability.TRACE_HEADERS
    }
    with observability.continuing(headers, f"{record.topic} process"):
        yield
