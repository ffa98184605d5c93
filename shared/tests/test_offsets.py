"""Offsets committed a moment after the batches they end: together, only up to what was handled,
only for partitions still the consumer's, and at once when a partition goes or the consumer
stops. A consumer made up here stands in for aiokafka's; test_consumer_kafka.py uses a broker."""

import asyncio
from dataclasses import dataclass, field
from typing import cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError

from crossgen_shared.offsets import OffsetCommits

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int


@dataclass
class FakeKafkaConsumer:
    """What ``OffsetCommits`` asks of aiokafka's consumer, and each commit it was given."""

    assigned: set[TopicPartition] = field(default_factory=lambda: {P0, P1})
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    refuse: int = 0  # commits to fail first
    refusal: type[Exception] = ConnectionError  # how they fail
    answered: asyncio.Event | None = None  # when set, commits wait for it
    tries: int = 0

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.tries += 1
        if self.refuse:
            self.refuse -= 1
            raise self.refusal("refused")
        if self.answered is not None:
            await self.answered.wait()
        self.commits.append(dict(offsets))


def batch(partition: int, *offsets: int) -> list[Record]:
    return [Record("t", partition, offset) for offset in offsets]


def of(consumer: FakeKafkaConsumer) -> AIOKafkaConsumer:
    return cast(AIOKafkaConsumer, consumer)


async def test_the_batches_of_a_moment_are_committed_together() -> None:
    consumer, commits = FakeKafkaConsumer(), OffsetCommits("c", every=0.05)
    await commits.handled(of(consumer), batch(0, 0, 1))
    await commits.handled(of(consumer), batch(1, 4) + batch(0, 2))
    assert consumer.commits == []  # nothing waited for
    await asyncio.sleep(0.1)
    assert consumer.commits == [{P0: 3, P1: 5}]  # the next offset to read
    await asyncio.sleep(0.1)
    assert len(consumer.commits) == 1  # nothing new, no commit


async def test_a_batch_handled_while_a_commit_is_under_way_is_committed_after_it() -> None:
    # The stream's last batch, handled during the round trip of the commit before it, waited
    # for a next batch that never came: its consumer stayed a record behind.
    consumer, commits = FakeKafkaConsumer(answered=asyncio.Event()), OffsetCommits("c", 0.05)
    await commits.handled(of(consumer), batch(0, 1))
    await asyncio.sleep(0.1)  # its commit is under way
    await commits.handled(of(consumer), batch(0, 2))
    assert consumer.answered is not None
    consumer.answered.set()
    await asyncio.sleep(0.1)
    assert consumer.commits == [{P0: 2}, {P0: 3}]


async def test_a_commit_that_fails_in_the_background_is_tried_again() -> None:
    consumer, commits = FakeKafkaConsumer(refuse=1), OffsetCommits("c", every=0.05)
    await commits.handled(of(consumer), batch(0, 1))
    await asyncio.sleep(0.15)
    assert consumer.commits == [{P0: 2}]


async def test_a_held_partition_is_committed_up_to_the_record_that_waits() -> None:
    consumer, commits = FakeKafkaConsumer(), OffsetCommits("c", every=0)
    await commits.handled(of(consumer), batch(0, 5, 6, 7) + batch(1, 2), held={P0: 6})
    assert consumer.commits == [{P0: 6, P1: 3}]


async def test_a_partition_no_longer_ours_is_left_to_its_new_reader() -> None:
    consumer, commits = FakeKafkaConsumer(), OffsetCommits("c", every=0)
    await commits.handled(of(consumer), batch(0, 1))
    consumer.assigned = {P1}
    await commits.handled(of(consumer), batch(0, 2) + batch(1, 9))
    assert consumer.commits == [{P0: 2}, {P1: 10}]


async def test_a_commit_that_fails_goes_with_the_next() -> None:
    consumer, commits = FakeKafkaConsumer(refuse=1), OffsetCommits("c", every=0)
    await commits.handled(of(consumer), batch(0, 1))
    await commits.handled(of(consumer), batch(1, 1))
    assert consumer.commits == [{P0: 2, P1: 2}]


async def test_a_commit_at_once_that_fails_is_tried_again_without_a_next_batch() -> None:
    consumer, commits = FakeKafkaConsumer(refuse=1), OffsetCommits("c", every=0)
    await commits.handled(of(consumer), batch(0, 1))
    assert consumer.commits == []
    await asyncio.sleep(0.5)  # tried again after 0.2 s
    assert consumer.commits == [{P0: 2}]


async def test_a_commit_the_group_refused_waits_for_the_consumers_new_partitions() -> None:
    """aiokafka forgets the member's place in the group on each refusal: one that lands while the
    consumer joins again costs the group a session timeout. So nothing more is sent, the
    partitions revoked meanwhile included, until the consumer has its new partitions."""
    consumer = FakeKafkaConsumer(refuse=1, refusal=CommitFailedError)
    commits = OffsetCommits("c", every=0.05)
    await commits.handled(of(consumer), batch(0, 1))
    await asyncio.sleep(0.3)
    await commits.on_partitions_revoked({P0, P1})
    await commits.handled(of(consumer), batch(1, 4))
    assert (consumer.tries, consumer.commits) == (1, [])
    await commits.on_partitions_assigned({P0, P1})
    await asyncio.sleep(0.1)
    assert consumer.commits == [{P0: 2, P1: 5}]


async def test_partitions_taken_away_are_committed_before_they_go() -> None:
    consumer, commits = FakeKafkaConsumer(), OffsetCommits("c", every=60)
    await commits.handled(of(consumer), batch(0, 1) + batch(1, 1))
    await commits.on_partitions_revoked({P0})
    assert consumer.commits == [{P0: 2}]


async def test_a_consumer_about_to_stop_commits_at_once() -> None:
    consumer, commits = FakeKafkaConsumer(), OffsetCommits("c", every=60)
    await commits.handled(of(consumer), batch(0, 1))
    commits.closing()
    await commits.commit()
    assert consumer.commits == [{P0: 2}]
    # A batch in flight when the consumer was told: committed as it ends.
    await commits.handled(of(consumer), batch(1, 3))
    assert consumer.commits == [{P0: 2}, {P1: 4}]
