"""A record that must wait holds back its own partition only, over a real Kafka broker: the
consumer's other partitions go on, and the offsets it commits never pass the waiting record."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from crossgen_local.kafka import LocalKafka
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import topics
from crossgen_shared.consumer import NotReady
from crossgen_shared.envelope import Envelope, encode
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.unit_of_work import UnitOfWork

from .messaging import eventually, fresh_settings, messaging_service
from .test_observability import joined

pytestmark = pytest.mark.integration

READY: set[str] = set()  # names whose events may be handled now
HANDLED: list[str] = []  # names of the events handled, in commit order


async def note(event: ParticipantJoined, _: Envelope, uow: UnitOfWork) -> None:
    if event.display_name.startswith("later") and "later" not in READY:
        raise NotReady("what it refers to has not come yet")
    uow.after_commit(lambda: HANDLED.append(event.display_name))


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with LocalKafka() as broker:
        yield broker


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


async def test_a_waiting_record_holds_back_its_partition_only(
    service: Service, kafka: LocalKafka
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    progress = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id="crossgen-holding"
    )

    async def send(name: str, partition: int) -> None:
        wire = encode(joined().model_copy(update={"display_name": name}), source="/test")
        headers = list(wire.headers.items())
        await producer.send_and_wait(
            topics.PARTICIPANTS, wire.value, key=wire.key, headers=headers, partition=partition
        )

    async def committed(partition: int) -> int | None:
        return await progress.committed(TopicPartition(topics.PARTICIPANTS, partition))

    def committed_at(partition: int, offset: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await committed(partition) == offset

        return check

    async def tried_thrice() -> bool:
        return max(held.attempts.values(), default=0) >= 3

    held = next(c for c in service.consumers if c.topic == topics.PARTICIPANTS)
    await producer.start()
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
        await producer.stop()
    assert [name for name in HANDLED if not name.startswith("now")] == ["first", "later", "after"]


async def test_a_service_that_stops_commits_what_it_handled(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka
) -> None:
    # Offsets that would wait a minute to be committed: only the stop commits them.
    settings = fresh_settings(
        postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers, offset_commit_interval=60
    )
    service = await messaging_service("stopping", settings)
    service.consume(topics.SESSIONS, {ParticipantJoined: note})
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    progress = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id="crossgen-stopping"
    )
    where = TopicPartition(topics.SESSIONS, 2)
    await producer.start()
    await progress.start()
    try:
        async with service.running():
            for name in ("one", "two", "three"):
                wire = encode(joined().model_copy(update={"display_name": name}), source="/t")
                await producer.send_and_wait(
                    topics.SESSIONS, wire.value, key=wire.key, headers=[*wire.headers.items()],
                    partition=where.partition,
                )  # fmt: skip
            await eventually(handled("three"))
            assert await progress.committed(where) is None  # waiting to go with later ones
        assert await progress.committed(where) == 3
    finally:
        await progress.stop()
        await producer.stop()
        HANDLED.clear()
