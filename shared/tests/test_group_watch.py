"""The group watch, on the broker's answers as aiokafka decodes them: a consumer whose topic has
partitions no member of a settled group holds, for long enough, is restarted; nothing else is."""

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.protocol.admin import DescribeGroupsResponse_v3
from aiokafka.structs import TopicPartition

from crossgen_shared.consumer import Consumer
from crossgen_shared.group_watch import GroupWatch, held

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
    restarts: int = 0
    ended: str | None = None

    @property
    def name(self) -> str:
        return f"x:{self.topic}"

    def partitions(self) -> set[TopicPartition]:
        return {TopicPartition(self.topic, n) for n in range(3)}

    def metadata_task_end(self) -> str | None:
        return self.ended

    async def restart(self) -> None:
        self.restarts += 1


@dataclass
class FakeAdmin:
    answers: list[Any]
    asked: list[list[str]] = field(default_factory=list)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def describe_consumer_groups(self, groups: list[str]) -> list[Any]:
        self.asked.append(groups)
        return [self.answers.pop(0)]


def watch(admin: FakeAdmin, stall_after: float, *consumers: FakeConsumer) -> GroupWatch:
    return GroupWatch("crossgen-x", consumers, lambda: admin, stall_after)


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


async def test_the_restart_says_how_the_consumers_metadata_task_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stalled = FakeConsumer(TOPIC, ended="RuntimeError: what ended it")
    await watch(FakeAdmin([described("Empty")]), 0, stalled).check()
    [restarting] = [r.getMessage() for r in caplog.records if "restarting it" in r.getMessage()]
    assert "metadata task had ended: RuntimeError: what ended it." in restarting


async def test_a_consumer_tells_how_its_kafka_clients_metadata_task_ended() -> None:
    async def fails() -> None:
        raise RuntimeError("what ended it")

    def consumer_whose_task_is(task: asyncio.Task[Any]) -> Consumer:
        consumer = Consumer("x", TOPIC, {}, uow=lambda: None)
        client = SimpleNamespace(_sync_task=task)
        consumer.subscriber = SimpleNamespace(consumer=SimpleNamespace(_client=client))
        return consumer

    assert Consumer("x", TOPIC, {}, uow=lambda: None).metadata_task_end() is None  # not started
    running, ended = asyncio.create_task(asyncio.Event().wait()), asyncio.create_task(fails())
    await asyncio.sleep(0)
    assert consumer_whose_task_is(running).metadata_task_end() is None
    told = consumer_whose_task_is(ended).metadata_task_end()
    assert told is not None and "in fails" in told
    assert told.endswith("RuntimeError: what ended it\n")
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
