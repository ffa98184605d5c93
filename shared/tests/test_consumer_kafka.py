"""Over a real Kafka broker: a record that must wait holds back its own partition only (the
consumer's other partitions go on, and the offsets it commits never pass the waiting record), and
offsets waiting to be committed are committed when the service stops or a rebalance takes their
partitions; a consumer given a batch wait takes records that trickle in as one batch; a batch
handled leaves no line in the log at INFO; a consumer that lost its place in the group, or
keeps it but takes no records, is restarted; records compressed with any of Kafka's codecs are
read; and a record the Kafka client cannot read holds back its own partition only."""

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from prometheus_client import REGISTRY

from crossgen_local.kafka import LocalKafka
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import consumer, topics
from crossgen_shared.consumer import NotReady
from crossgen_shared.envelope import Envelope, encode
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.unit_of_work import UnitOfWork

from .messaging import create_topic, eventually, fresh_settings, messaging_service
from .test_observability import joined

pytestmark = pytest.mark.integration

READY: set[str] = set()  # names whose events may be handled now
HANDLED: list[str] = []  # names of the events handled, in commit order
BATCH_OF: dict[str, UnitOfWork] = {}  # name of each event handled -> its batch's unit of work


async def note(event: ParticipantJoined, _: Envelope, uow: UnitOfWork) -> None:
    if event.display_name.startswith("later") and "later" not in READY:
        raise NotReady("what it refers to has not come yet")
    BATCH_OF[event.display_name] = uow
    uow.after_commit(lambda: HANDLED.append(event.display_name))


@pytest.fixture
async def service(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka
) -> AsyncIterator[Service]:
    settings = fresh_settings(postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers)
    service = await messaging_service("holding", settings)
    service.consume(topics.PARTICIPANTS, {ParticipantJoined: note})
    yield service
    READY.clear()
    HANDLED.clear()


def handled(name: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return name in HANDLED

    return check


async def replica(
    name: str,
    topic: str,
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    batch_wait: float = 0.0,
) -> Service:
    """A service consuming ``topic`` whose offsets would wait a minute to be committed: only a
    stop or a rebalance commits them in a test."""
    settings = fresh_settings(
        postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers, offset_commit_interval=60
    )
    service = await messaging_service(name, settings)
    service.consume(topic, {ParticipantJoined: note}, batch_wait=batch_wait)
    return service


@pytest.fixture
async def producer(kafka: LocalKafka) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    yield producer
    await producer.stop()
    HANDLED.clear()
    BATCH_OF.clear()


async def send_to(producer: AIOKafkaProducer, where: TopicPartition, name: str) -> None:
    wire = encode(joined().model_copy(update={"display_name": name}), source="/test")
    await producer.send_and_wait(
        where.topic, wire.value, key=wire.key, headers=[*wire.headers.items()],
        partition=where.partition,
    )  # fmt: skip


def progress_of(kafka: LocalKafka, group: str) -> AIOKafkaConsumer:
    """A consumer in ``group`` that only reads what the group committed."""
    return AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=group)


def committed_to(
    progress: AIOKafkaConsumer, where: TopicPartition, offset: int
) -> Callable[[], Awaitable[bool]]:
    """Whether the group of ``progress`` has committed ``where`` up to ``offset``."""

    async def check() -> bool:
        return await progress.committed(where) == offset

    return check


async def test_a_service_that_stops_commits_what_it_handled(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka, producer: AIOKafkaProducer
) -> None:
    service = await replica("stopping", topics.SESSIONS, postgres, tokens, kafka)
    progress = progress_of(kafka, "crossgen-stopping")
    where = TopicPartition(topics.SESSIONS, 2)
    await progress.start()
    try:
        async with service.running():
            for name in ("one", "two", "three"):
                await send_to(producer, where, name)
            await eventually(handled("three"))
            assert await progress.committed(where) is None  # waiting to go with later ones
        assert await progress.committed(where) == 3
    finally:
        await progress.stop()


async def test_partitions_handed_to_another_replica_are_committed_first(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka, producer: AIOKafkaProducer
) -> None:
    first = await replica("rebalancing", topics.PAIRINGS, postgres, tokens, kafka)
    second = await replica("rebalancing", topics.PAIRINGS, postgres, tokens, kafka)
    progress = progress_of(kafka, "crossgen-rebalancing")
    partitions = [TopicPartition(topics.PAIRINGS, number) for number in range(3)]

    async def all_committed() -> bool:
        return [await progress.committed(p) for p in partitions] == [1, 1, 1]

    await progress.start()
    try:
        async with first.running():
            for where in partitions:
                await send_to(producer, where, f"in {where.partition}")
            await eventually(handled("in 2"))
            await eventually(handled("in 1"))
            await eventually(handled("in 0"))
            assert [await progress.committed(p) for p in partitions] == [None] * 3
            # The second replica joins: the rebalance takes every partition from the first
            # (aiokafka's eager protocol), and it commits each one's offsets before it goes.
            async with second.running():
                await eventually(all_committed, within=20)
    finally:
        await progress.stop()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_records_a_producer_compressed_are_read_whatever_its_codec(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka, codec: str
) -> None:
    """Kafka keeps a producer's compression, and Java producers often use lz4, snappy or zstd.
    Without those codecs the client could read no record of such a batch, and each fetch that
    met one dropped what it had taken from the consumer's other partitions."""
    topic = f"crossgen.test.{codec}.{uuid4().hex[:8]}"
    service = await replica(f"reading-{codec}", topic, postgres, tokens, kafka)
    compressing = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, compression_type=codec
    )
    await compressing.start()
    try:
        await send_to(compressing, TopicPartition(topic, 0), f"compressed with {codec}")
    finally:
        await compressing.stop()
    try:
        async with service.running():
            await eventually(handled(f"compressed with {codec}"), within=30)
    finally:
        HANDLED.clear()


async def test_a_waiting_record_holds_back_its_partition_only(
    service: Service, kafka: LocalKafka, producer: AIOKafkaProducer
) -> None:
    progress = progress_of(kafka, "crossgen-holding")

    async def send(name: str, partition: int) -> None:
        await send_to(producer, TopicPartition(topics.PARTICIPANTS, partition), name)

    async def committed(partition: int) -> int | None:
        return await progress.committed(TopicPartition(topics.PARTICIPANTS, partition))

    def committed_at(partition: int, offset: int) -> Callable[[], Awaitable[bool]]:
        return committed_to(progress, TopicPartition(topics.PARTICIPANTS, partition), offset)

    async def tried_thrice() -> bool:
        return max(held.attempts.values(), default=0) >= 3

    held = next(c for c in service.consumers if c.topic == topics.PARTICIPANTS)
    await progress.start()
    try:
        async with service.running():
            await send("first", 0)
            await send("later", 0)
            await send("after", 0)  # behind the one that waits
            await eventually(handled("first"))
            for attempt in range(3):  # the other partition goes on while partition 0 waits
                await send(f"now {attempt}", 1)
                await eventually(handled(f"now {attempt}"))
            await eventually(tried_thrice)
            assert "later" not in HANDLED and "after" not in HANDLED
            await eventually(committed_at(1, 3), within=10)
            assert await committed(0) == 1  # not past the record that waits

            READY.add("later")
            await eventually(handled("after"))
            await eventually(committed_at(0, 3), within=10)
    finally:
        await progress.stop()
    assert [name for name in HANDLED if not name.startswith("now")] == ["first", "later", "after"]


@pytest.mark.parametrize(("batch_wait", "batches"), [(0.0, 3), (2.0, 1)])
async def test_a_batch_wait_gathers_records_that_trickle_in(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    producer: AIOKafkaProducer,
    batch_wait: float,
    batches: int,
) -> None:
    group = f"gathering{batches}"
    service = await replica(group, topics.NOTIFICATIONS, postgres, tokens, kafka, batch_wait)
    where = TopicPartition(topics.NOTIFICATIONS, 0)
    async with service.running():
        # Handled once the consumer is in the group; its next fetch is out meanwhile.
        await send_to(producer, where, f"first {batches}")
        await eventually(handled(f"first {batches}"), within=20)
        names = [f"{n} {batches}" for n in ("one", "two", "three")]
        for name in names:  # a quiet topic: each record alone at first
            await send_to(producer, where, name)
            await asyncio.sleep(0.3)
        await eventually(handled(names[-1]), within=10)
    assert len({id(BATCH_OF[name]) for name in names}) == batches  # each kept: ids unique


async def test_a_handled_batch_leaves_no_line_in_an_info_log(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FastStream says "Received" and "Processed" for every batch: at DEBUG, out of the log."""
    service = await replica("quiet", topics.SESSIONS, postgres, tokens, kafka)
    lines = logging.getLogger("faststream.kafka")
    lines.addHandler(caplog.handler)  # FastStream's "faststream" logger does not propagate
    try:
        with caplog.at_level(logging.DEBUG, logger="faststream.kafka"):
            async with service.running():
                await send_to(producer, TopicPartition(topics.SESSIONS, 0), "one")
                await eventually(handled("one"))
    finally:
        lines.removeHandler(caplog.handler)
    said = {(r.levelno, r.getMessage()) for r in caplog.records if r.name == "faststream.kafka"}
    assert (logging.DEBUG, "Received") in said and (logging.DEBUG, "Processed") in said
    logged = {message for level, message in said if level >= logging.INFO}
    assert not {"Received", "Processed"} & logged


async def test_a_service_s_consumers_join_its_group_together(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One after another, each consumer's join made those before it rebalance, about a heartbeat
    a consumer: 2.6 s for three, at every start of a service. Together they join in one round."""
    settings = fresh_settings(postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers)
    service = await messaging_service("together", settings)
    for n in range(3):  # empty topics of its own: nothing handled that other tests count
        topic = f"crossgen.test.together.{uuid4().hex[:8]}.{n}"
        await create_topic(kafka.bootstrap_servers, topic)
        service.consume(topic, {ParticipantJoined: note})
    starts: list[str] = []
    for subscriber in service.broker.subscribers:

        async def noted(start: Callable[[], Awaitable[None]] = subscriber.start) -> None:
            starts.append("began")
            await start()
            starts.append("ended")

        monkeypatch.setattr(subscriber, "start", noted)

    async def all_assigned() -> bool:  # after a second round, should one be needed
        return all(consumer.subscriber.consumer.assignment() for consumer in service.consumers)

    async with service.running():
        assert starts == ["began"] * 3 + ["ended"] * 3
        await eventually(all_assigned, within=10)


async def test_a_session_timeout_the_broker_refuses_stops_the_start_with_what_to_set(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka
) -> None:
    """The broker accepts 6 s at the least by default: a service set shorter does not start,
    and says which setting to change."""
    settings = fresh_settings(
        postgres,
        tokens,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        consumer_session_timeout=3.0,
    )
    service = await messaging_service("too-short", settings)
    for topic in (topics.SESSIONS, topics.PAIRINGS):  # each refused, the other's start ended
        service.consume(topic, {ParticipantJoined: note})
    with pytest.raises(RuntimeError, match="session timeout of 3 s: set CONSUMER_SESSION_TIMEOUT"):
        async with service.running():
            pass


async def test_records_deleted_before_the_service_read_them_are_reported(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service away longer than a topic keeps its records finds them deleted: its consumer
    starts where the partition now starts, which Kafka's client did saying no more than an INFO
    line. The service now says, as it starts, which records it lost."""
    where = TopicPartition(f"crossgen.test.gone.{uuid4().hex[:8]}", 0)
    await create_topic(kafka.bootstrap_servers, where.topic)
    async with (await replica("away", where.topic, postgres, tokens, kafka)).running():
        await send_to(producer, where, "read")
        await eventually(handled("read"))
    for name in ["deleted 1", "deleted 2", "kept"]:
        await send_to(producer, where, name)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_records({where: RecordsToDelete(before_offset=3)})  # as retention
    finally:
        await admin.close()
    async with (await replica("away", where.topic, postgres, tokens, kafka)).running():
        await eventually(handled("kept"))
    assert HANDLED == ["read", "kept"]
    assert (
        f"away: {where.topic}[0]: 2 records (offsets 1 to 2) were deleted before away read them"
        in caplog.text
    )
    gone = "crossgen_records_deleted_unread_total", {"consumer": f"away:{where.topic}"}
    assert REGISTRY.get_sample_value(*gone) == 2


async def watched_service(
    name: str, postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka
) -> Service:
    """A service whose group watch looks every 0.5 s and restarts a consumer after 1 s."""
    settings = fresh_settings(
        postgres,
        tokens,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        consumer_watch_interval=0.5,
        consumer_stall_after=1.0,
    )
    return await messaging_service(name, settings)


def restart_line(caplog: pytest.LogCaptureFixture) -> str:
    """The one restart the watch logged."""
    [line] = [r.getMessage() for r in caplog.records if "restarting it" in r.getMessage()]
    return line


async def test_records_a_producer_wrote_in_transactions_are_handled_once_committed(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A producer may write in transactions (Kafka Connect's exactly-once sources do): what it
    aborted stays in the log, marked so, and is not handled; what it has not committed yet waits.
    Each transaction ends with a marker at an offset of its own, which no consumer is handed:
    a consumer that reached it, or waits for a commit, has not stalled."""
    where = TopicPartition(f"crossgen.test.transactions.{uuid4().hex[:8]}", 0)
    await create_topic(kafka.bootstrap_servers, where.topic)
    service = await watched_service("transacting", postgres, tokens, kafka)
    service.consume(where.topic, {ParticipantJoined: note})
    writer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, transactional_id=f"hris-{uuid4().hex[:8]}"
    )
    await writer.start()
    try:
        async with service.running():
            await writer.begin_transaction()
            await send_to(writer, where, "withdrawn")
            await writer.abort_transaction()
            async with writer.transaction():
                await send_to(writer, where, "sent")
            await eventually(handled("sent"), within=20)
            await writer.begin_transaction()
            await send_to(writer, where, "pending")
            await asyncio.sleep(3)  # the watch restarts a consumer that took nothing for 1 s
            assert HANDLED == ["sent"]
            await writer.commit_transaction()
            await eventually(handled("pending"), within=20)
            await asyncio.sleep(3)
    finally:
        await writer.stop()
    assert HANDLED == ["sent", "pending"]
    assert "restarting it" not in caplog.text


async def test_a_consumer_that_lost_its_place_in_the_group_is_restarted(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its Kafka consumer's group coordinator never finds the broker again (as once after a
    broker outage): the broker drops it from the group after its session timeout, and the watch
    restarts it, saying where the coordinator waited. The service's other consumer stays as it
    is."""
    monkeypatch.setattr(consumer, "RESTART_STOP", 1.0)  # the stalled one never stops
    service = await watched_service("stalling", postgres, tokens, kafka)
    service.consume(topics.SESSIONS, {ParticipantJoined: note})
    service.consume(topics.NOTIFICATIONS, {ParticipantJoined: note})
    stalling, other = service.consumers
    progress = progress_of(kafka, "crossgen-stalling")
    where = TopicPartition(topics.SESSIONS, 1)
    never = asyncio.Event()

    async def replaced() -> bool:
        return stalling.subscriber.consumer not in (None, stalled)

    async def stopped_at_last() -> bool:
        return not stalling.stopping

    await progress.start()
    try:
        async with service.running():
            await send_to(producer, where, "before the stall")
            await eventually(committed_to(progress, where, 1), within=20)
            stalled, unharmed = stalling.subscriber.consumer, other.subscriber.consumer
            coordinator = stalled._coordinator
            lookup = coordinator.ensure_coordinator_known

            async def never_found() -> None:
                await never.wait()
                await lookup()  # then what the restart left behind winds down

            coordinator.ensure_coordinator_known = never_found
            coordinator.coordinator_dead()
            try:
                await eventually(replaced, within=40)  # a 10 s session timeout, then the watch
            finally:
                never.set()
            await send_to(producer, where, "after the restart")
            await eventually(handled("after the restart"), within=20)
            await eventually(committed_to(progress, where, 2), within=10)
            assert other.subscriber.consumer is unharmed
            await eventually(stopped_at_last)  # once its stall ended
    finally:
        await progress.stop()
    restarted = restart_line(caplog)
    assert restarted.startswith(f"stalling:{topics.SESSIONS}: partitions 0,1,2 held by no member")
    assert "GroupCoordinator.__coordination_routine" in restarted and "Event.wait" in restarted
    assert "Its Kafka consumer's metadata and fetch tasks were running." in restarted


async def test_a_consumer_that_keeps_its_place_but_takes_no_records_is_restarted(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its Kafka consumer's fetch task ends, which aiokafka does not notice (aio-libs/aiokafka#983):
    its heartbeats keep its partitions, and a record sent then waits. The watch sees the record
    unread past the committed offset and restarts the consumer, which takes it."""
    service = await watched_service("idling", postgres, tokens, kafka)
    service.consume(topics.SESSIONS, {ParticipantJoined: note})
    [idling] = service.consumers
    where = TopicPartition(topics.SESSIONS, 2)
    async with service.running():
        await send_to(producer, where, "before it stops fetching")
        await eventually(handled("before it stops fetching"), within=20)
        stopped = idling.subscriber.consumer
        fetcher = stopped._fetcher
        fetcher._fetch_task.cancel()

        async def fetches_over() -> bool:  # a fetch under way then may still bring a record
            return fetcher._fetch_task.done() and all(t.done() for t in fetcher._pending_tasks)

        await eventually(fetches_over)
        await send_to(producer, where, "while it fetches nothing")
        await eventually(handled("while it fetches nothing"), within=30)
        assert idling.subscriber.consumer is not stopped
    restarted = restart_line(caplog)
    assert restarted.startswith(
        f"idling:{topics.SESSIONS}: records unread in the partitions it holds (2: 1), none taken"
    )
    assert "Its Kafka consumer's fetch task had ended: returned." in restarted


# A producer that writes a header name that is not UTF-8, as a Go or C client can: aiokafka's own
# writes names as UTF-8, so its pure-Python record builder is given a name that encodes to bytes
# that are not.
UNREADABLE = r"""
import asyncio, sys
from aiokafka import AIOKafkaProducer

class NotUtf8(str):
    def encode(self, *args, **kwargs):
        return b"\xffname"

async def main():
    producer = AIOKafkaProducer(bootstrap_servers=sys.argv[1])
    await producer.start()
    await producer.send_and_wait(
        sys.argv[2], b"{}", headers=[(NotUtf8("x"), b"v")], partition=int(sys.argv[3])
    )
    await producer.stop()

asyncio.run(main())
"""


async def header_name_not_utf8(
    kafka: LocalKafka, _: AIOKafkaProducer, where: TopicPartition
) -> str:
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", UNREADABLE, kafka.bootstrap_servers, where.topic, "0"],
        env=os.environ | {"AIOKAFKA_NO_EXTENSIONS": "1"},
        check=True,
    )
    return "a header name that is not UTF-8"


async def damaged_on_disk(
    kafka: LocalKafka, producer: AIOKafkaProducer, where: TopicPartition
) -> str:
    """A record whose bytes changed in the broker's log after it was written (a failing disk):
    the broker checks a batch's CRC when it takes it, not when it serves it."""
    if kafka.mode != "local" or kafka.data_dir is None:
        pytest.skip("needs the broker's log files: a local broker")
    await send_to(producer, where, "damaged")
    log = kafka.data_dir / "kraft" / f"{where.topic}-{where.partition}" / f"{0:020d}.log"
    at = log.read_bytes().rindex(b"damaged")
    with log.open("r+b") as segment:
        segment.seek(at)
        segment.write(b"DAMAGED")
    return "its batch fails its CRC check, the leader's log is damaged"


@pytest.mark.parametrize("unreadable", [header_name_not_utf8, damaged_on_disk])
async def test_a_record_the_kafka_client_cannot_read_holds_back_its_partition_only(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    kafka: LocalKafka,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
    unreadable: Callable[[LocalKafka, AIOKafkaProducer, TopicPartition], Awaitable[str]],
) -> None:
    """aiokafka cannot read a record whose header name is not UTF-8, nor one whose batch fails
    its CRC: every fetch that met it failed, and dropped what it had taken from the other
    partitions, which had moved past it (in a loop as FastStream's, half of them were lost). Now
    the partition waits at that record, and says what to do; the records before it and every
    other partition's are handled."""
    where = TopicPartition(f"crossgen.test.unreadable.{uuid4().hex[:8]}", 0)
    await create_topic(kafka.bootstrap_servers, where.topic, partitions=3)
    service = await replica("unreading", where.topic, postgres, tokens, kafka)
    await send_to(producer, where, "before")
    why = await unreadable(kafka, producer, where)
    others = [f"other {n}" for n in range(60)]

    async def all_handled() -> bool:
        return {"before", *others} <= set(HANDLED)

    async with service.running():
        for n, name in enumerate(others):
            await send_to(producer, TopicPartition(where.topic, 1 + n % 2), name)
        await eventually(all_handled, within=60)
    assert (
        f"{where.topic}[0] waits at offset 1: the Kafka client cannot read that record ({why}"
        in caplog.text
    )
    paused = "crossgen_partitions_paused_unreadable_total", {"consumer": f"unreading:{where.topic}"}
    assert REGISTRY.get_sample_value(*paused) == 1
    assert "--reset-offsets --to-offset 2" in caplog.text
