"""The group watch, on the broker's answers as aiokafka decodes them: a consumer whose topic has
partitions no member of a settled group holds, or who holds partitions with records it takes none
of, for long enough, is restarted; nothing else is."""

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.protocol.admin import DescribeGroupsResponse_v3
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from crossgen_shared import group_watch
from crossgen_shared.consumer import Consumer
from crossgen_shared.group_watch import GroupWatch, held, records_gone

TOPIC = "crossgen.pairings.v1"
OTHER = "crossgen.participants.v1"


def described(state: str, *assignments: dict[str, list[int]], error: int = 0) -> Any:
    """The broker's answer to DescribeGroups, through aiokafka's own decoding."""
    members = [
        (f"member-{n}", "crossgen-x", "/127.0.0.1", b"", _assignment(topics))
        for n, topics in enumerate(assignments)
    ]
    group = (error, "crossgen-x", state, "consumer", "roundrobin", members, 0)
    return DescribeGroupsResponse_v3.decode(DescribeGroupsResponse_v3(0, [group]).encode())


def _assignment(topics: dict[str, list[int]]) -> bytes:
    if not topics:
        return b""  # not given anything yet
    return ConsumerProtocolMemberAssignment(0, list(topics.items()), b"").encode()


@dataclass
class FakeConsumer:
    topic: str
    holds: list[int] = field(default_factory=list)  # its partitions in the group
    taken: float | None = 0.0  # when it last took records of each (None: handling a batch)
    at: int | None = None  # the next offset it takes of each (None: it cannot tell)
    restarts: int = 0
    ended: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"x:{self.topic}"

    def partitions(self) -> set[TopicPartition]:
        return {TopicPartition(self.topic, n) for n in range(3)}

    def assigned(self) -> set[TopicPartition]:
        return {TopicPartition(self.topic, n) for n in self.holds}

    def last_taken(self, partition: TopicPartition) -> float | None:
        return self.taken

    async def position(self, partition: TopicPartition) -> int | None:
        return self.at

    def kafka_tasks_ended(self) -> dict[str, str]:
        return self.ended

    async def restart(self) -> None:
        self.restarts += 1


@dataclass
class FakeAdmin:
    answers: list[Any]
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    asked: list[list[str]] = field(default_factory=list)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def describe_consumer_groups(self, groups: list[str]) -> list[Any]:
        self.asked.append(groups)
        return [self.answers.pop(0)]

    async def list_consumer_group_offsets(
        self, group: str, partitions: list[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        # As a broker answers for partitions asked for: -1 where the group committed none.
        asked = list(self.committed) if partitions is None else partitions
        return {p: OffsetAndMetadata(self.committed.get(p, -1), "") for p in asked}


@dataclass
class FakeOffsets:
    """A Kafka consumer in no group, as the watch reads partitions' ends with it."""

    ends: dict[TopicPartition, int] = field(default_factory=dict)
    firsts: dict[TopicPartition, int] = field(default_factory=dict)
    asked: int = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        return {p: self.ends.get(p, 0) for p in partitions}

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {p: self.firsts.get(p, 0) for p in partitions}


def watch(
    admin: FakeAdmin,
    stall_after: float,
    *consumers: FakeConsumer,
    offsets: FakeOffsets | None = None,
) -> GroupWatch:
    reader = offsets or FakeOffsets()
    return GroupWatch("crossgen-x", consumers, lambda: admin, lambda: reader, stall_after)


def test_held_is_every_partition_a_member_was_given() -> None:
    answer = described("Stable", {TOPIC: [0, 2]}, {OTHER: [1]}, {})
    assert held(answer.groups[0]) == {
        TopicPartition(TOPIC, 0),
        TopicPartition(TOPIC, 2),
        TopicPartition(OTHER, 1),
    }
    assert held(described("Empty").groups[0]) == set()


@pytest.mark.parametrize("state", ["PreparingRebalance", "CompletingRebalance"])
def test_a_group_in_a_rebalance_says_nothing_yet(state: str) -> None:
    assert held(described(state, {OTHER: [0, 1, 2]}).groups[0]) is None


def test_a_group_the_broker_cannot_describe_says_nothing() -> None:
    assert held(described("", error=14).groups[0]) is None  # the coordinator is loading


async def test_a_consumer_whose_partitions_nobody_holds_is_restarted() -> None:
    stalled, fine = FakeConsumer(TOPIC), FakeConsumer(OTHER)
    # The other consumer joined again alone, after the broker came back; the stalled one did not.
    admin = FakeAdmin([described("Stable", {OTHER: [0, 1, 2]})])
    await watch(admin, 0, stalled, fine).check()
    assert (stalled.restarts, fine.restarts) == (1, 0)
    assert admin.asked == [["crossgen-x"]]


async def test_the_restart_says_how_the_consumers_kafka_tasks_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stalled = FakeConsumer(TOPIC, ended={"metadata task": "RuntimeError: what ended it"})
    await watch(FakeAdmin([described("Empty")]), 0, stalled).check()
    [restarting] = [r.getMessage() for r in caplog.records if "restarting it" in r.getMessage()]
    assert (
        "Its Kafka consumer's metadata task had ended: RuntimeError: what ended it." in restarting
    )


async def test_a_consumer_tells_how_its_kafka_tasks_ended() -> None:
    async def fails() -> None:
        raise RuntimeError("what ended it")

    def consumer_whose_tasks_are(metadata: asyncio.Task[Any], fetch: asyncio.Task[Any]) -> Consumer:
        consumer = Consumer("x", TOPIC, {}, uow=lambda: None)
        kafka = SimpleNamespace(
            _client=SimpleNamespace(_sync_task=metadata),
            _fetcher=SimpleNamespace(_fetch_task=fetch),
        )
        consumer.subscriber = SimpleNamespace(consumer=kafka)
        return consumer

    assert Consumer("x", TOPIC, {}, uow=lambda: None).kafka_tasks_ended() == {}  # not started
    running, ended = asyncio.create_task(asyncio.Event().wait()), asyncio.create_task(fails())
    returned, cancelled = asyncio.create_task(asyncio.sleep(0)), asyncio.create_task(fails())
    cancelled.cancel()
    await asyncio.sleep(0.01)
    assert consumer_whose_tasks_are(running, running).kafka_tasks_ended() == {}
    told = consumer_whose_tasks_are(ended, running).kafka_tasks_ended()
    assert list(told) == ["metadata task"] and "in fails" in told["metadata task"]
    assert told["metadata task"].endswith("RuntimeError: what ended it\n")
    assert consumer_whose_tasks_are(running, returned).kafka_tasks_ended() == {
        "fetch task": "returned"  # as aiokafka's ends on a cancel it swallowed
    }
    assert consumer_whose_tasks_are(cancelled, running).kafka_tasks_ended() == {
        "metadata task": "cancelled"
    }
    running.cancel()


async def test_a_consumer_is_given_time_to_come_back_first() -> None:
    stalled = FakeConsumer(TOPIC)
    admin = FakeAdmin([described("Stable", {OTHER: [0, 1, 2]})] * 2)
    watching = watch(admin, 60, stalled)
    await watching.check()
    await watching.check()
    assert stalled.restarts == 0


async def test_nothing_is_restarted_while_every_partition_is_held_or_the_group_rebalances() -> None:
    consumers = [FakeConsumer(TOPIC), FakeConsumer(OTHER)]
    admin = FakeAdmin(
        [
            described("Stable", {TOPIC: [0, 1], OTHER: [0, 1, 2]}, {TOPIC: [2]}),
            described("PreparingRebalance", {OTHER: [0, 1, 2]}),
        ]
    )
    watching = watch(admin, 0, *consumers)
    await watching.check()
    await watching.check()
    assert [c.restarts for c in consumers] == [0, 0]


async def test_a_service_without_running_kafka_consumers_asks_nothing() -> None:
    class NotStarted(FakeConsumer):
        def partitions(self) -> set[TopicPartition]:
            return set()

    admin = FakeAdmin([])
    await watch(admin, 0, NotStarted(TOPIC)).check()
    assert admin.asked == []


async def test_a_replica_that_holds_no_partitions_opens_no_client_to_read_offsets() -> None:
    """The other replica holds them all: there is nothing of its own to read the ends of."""
    admin = FakeAdmin([described("Stable", {TOPIC: [0, 1, 2]})])
    opened: list[FakeOffsets] = []

    def reader() -> Any:  # a Kafka consumer in no group, as the watch asks for one
        opened.append(FakeOffsets())
        return opened[-1]

    idle = FakeConsumer(TOPIC)
    await GroupWatch("crossgen-x", [idle], lambda: admin, reader, 0).check()
    assert (idle.restarts, opened) == (0, [])


def held_by_one(*consumers: FakeConsumer) -> Any:
    """A settled group whose one member holds what these consumers hold."""
    return described("Stable", {c.topic: c.holds for c in consumers})


async def test_a_consumer_holding_records_it_takes_none_of_is_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It keeps its place in the group, and records wait past what the group committed (as when
    aiokafka's fetch task has ended): 2 records in partition 0, 1 in partition 2, where the group
    committed nothing; partition 1 has none to read."""
    idle = FakeConsumer(TOPIC, holds=[0, 1, 2], ended={"fetch task": "returned"})
    at = {n: TopicPartition(TOPIC, n) for n in range(3)}
    admin = FakeAdmin([held_by_one(idle)], committed={at[0]: 5, at[1]: 7})
    offsets = FakeOffsets(ends={at[0]: 7, at[1]: 7, at[2]: 4}, firsts={at[2]: 3})
    await watch(admin, 0, idle, offsets=offsets).check()
    assert idle.restarts == 1
    [restarting] = [r.getMessage() for r in caplog.records if "restarting it" in r.getMessage()]
    assert restarting.startswith(
        f"x:{TOPIC}: records unread in the partitions it holds (0: 2, 2: 1), none taken for 0 s;"
    )
    assert "Its Kafka consumer's fetch task had ended: returned." in restarting


async def test_a_consumer_that_takes_its_records_or_is_busy_with_a_batch_is_left_alone() -> None:
    at = TopicPartition(TOPIC, 0)
    taking = FakeConsumer(TOPIC, holds=[0, 1, 2], taken=float("inf"))  # took some after the check
    busy = FakeConsumer(OTHER, holds=[0, 1, 2], taken=None)
    answer = held_by_one(taking, busy)
    ends = {at: 2, TopicPartition(OTHER, 0): 9}
    admin = FakeAdmin([answer], committed={at: 1})
    await watch(admin, 0, taking, busy, offsets=FakeOffsets(ends=ends)).check()
    assert (taking.restarts, busy.restarts) == (0, 0)


@pytest.mark.parametrize(("at", "restarts"), [(4, 0), (3, 1), (None, 1)])
async def test_a_consumer_that_took_all_up_to_a_transactions_marker_is_left_alone(
    at: int | None, restarts: int
) -> None:
    """The group committed 3, after the last record handed over; offset 3 is the marker that
    ended the producer's transaction, which no consumer is handed. A consumer whose next offset
    is 4 has taken all there is; one still at 3, or that cannot tell, has not."""
    idle = FakeConsumer(TOPIC, holds=[0, 1, 2], at=at)
    partition = TopicPartition(TOPIC, 0)
    admin = FakeAdmin([held_by_one(idle)], committed={partition: 3})
    await watch(admin, 0, idle, offsets=FakeOffsets(ends={partition: 4})).check()
    assert idle.restarts == restarts


async def test_a_consumer_is_given_time_to_take_its_records_and_more_after_a_freeze(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records unread the whole time, none taken: restarted once they have waited 30 s at
    checks no more than 30 s apart. The process frozen for 80 s (its view stale, its consumers
    perhaps dropped from the group meanwhile) starts the wait again."""
    clock = [1000.0]
    monkeypatch.setattr(group_watch, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    idle = FakeConsumer(TOPIC, holds=[0, 1, 2])
    offsets = FakeOffsets(ends={TopicPartition(TOPIC, 0): 1})
    watching = watch(FakeAdmin([held_by_one(idle)] * 5), 30, idle, offsets=offsets)
    restarts = []
    for clock[0] in (1000.0, 1020.0, 1100.0, 1120.0, 1131.0):
        await watching.check()
        restarts.append(idle.restarts)
    assert restarts == [0, 0, 0, 0, 1]


async def test_a_consumer_with_nothing_to_read_or_in_a_rebalance_is_left_alone() -> None:
    """Partition 0 read to its end, 1 emptied by retention before the group read it, 2 empty."""
    idle = FakeConsumer(TOPIC, holds=[0, 1, 2])
    at = {n: TopicPartition(TOPIC, n) for n in range(3)}
    offsets = FakeOffsets(ends={at[0]: 4, at[1]: 6}, firsts={at[1]: 6})
    answers = [held_by_one(idle), described("PreparingRebalance", {TOPIC: [0, 1, 2]})]
    watching = watch(FakeAdmin(answers, committed={at[0]: 4}), 0, idle, offsets=offsets)
    await watching.check()
    await watching.check()
    assert idle.restarts == 0
    assert offsets.asked == 1  # not in the rebalance


@dataclass
class FakeSubscriber:
    """FastStream's subscriber as ``Consumer.restart`` uses it; its first start fails."""

    consumer: Any
    starts: int = 0

    async def stop(self) -> None:
        pass

    async def start(self) -> None:
        self.starts += 1
        if self.starts == 1:
            raise ConnectionError("the broker went away again")
        self.consumer = "a new Kafka consumer"


async def test_a_restart_that_cannot_start_the_consumer_tries_again() -> None:
    class Stalled:
        stopped = False

        async def stop(self) -> None:
            self.stopped = True

    stalled = Stalled()
    restarting = Consumer("x", TOPIC, {}, uow=lambda: None)
    subscriber = restarting.subscriber = FakeSubscriber(stalled)
    await restarting.restart()
    assert stalled.stopped
    assert (subscriber.starts, subscriber.consumer) == (2, "a new Kafka consumer")


async def test_records_gone_run_from_the_groups_commit_to_where_the_partition_starts() -> None:
    """Partition 0 committed at 5 and now starts at 8; partition 1 committed past its start; the
    group committed nothing on partition 2 (none can tell); another topic is not asked about."""
    at = {n: TopicPartition(TOPIC, n) for n in range(3)}
    admin = FakeAdmin([], committed={at[0]: 5, at[1]: 9, TopicPartition(OTHER, 0): 1})
    offsets = FakeOffsets(firsts={at[0]: 8, at[1]: 4, at[2]: 6, TopicPartition(OTHER, 0): 7})
    assert await records_gone(admin, offsets, "crossgen-x", {TOPIC}) == {at[0]: range(5, 8)}


async def test_records_gone_waits_for_the_coordinator_of_a_group_new_to_the_broker() -> None:
    class Settling(FakeAdmin):
        async def list_consumer_group_offsets(
            self, group: str, partitions: list[TopicPartition] | None = None
        ) -> dict[TopicPartition, OffsetAndMetadata]:
            if not self.asked:
                self.asked.append([group])
                raise GroupCoordinatorNotAvailableError()
            return await super().list_consumer_group_offsets(group, partitions)

    at = TopicPartition(TOPIC, 0)
    admin = Settling([], committed={at: 1})
    offsets = FakeOffsets(firsts={at: 3})
    assert await records_gone(admin, offsets, "crossgen-x", {TOPIC}) == {at: range(1, 3)}
