"""A consumer's Kafka offsets, committed a moment after the batches they end, not after each one.

A commit is a round trip to the broker that the consumer waited for before taking its next batch,
and work for the broker and the client: at 200 HRIS records a second the services' seven
consumers committed about 145 times a second. The inbox makes a record handled twice harmless,
so the offsets of handled batches can wait: they are committed in the background at most once
every ``every`` seconds (0: after each batch, waited for), and only ever up to records whose
transaction committed. What a crash leaves uncommitted, at most that long's worth, comes again
and the inbox skips it. A partition taken away in a rebalance has its offsets committed before
it goes; a consumer about to stop commits what is pending, and each batch's at once from then on.
A commit the group refuses (it rebalances, or no longer knows the member) is not tried again until
the consumer has its new partitions: aiokafka forgets the member's place in the group on each such
refusal, and one that came while the consumer was joining again cost the whole group a session
timeout (the member it had just joined as was forgotten, and the group waited for it).
"""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError

log = logging.getLogger(__name__)

RETRY = 0.2  # seconds before a failed commit is tried again, where each batch's is at once


def spans(records: Sequence[Any]) -> dict[TopicPartition, tuple[int, int]]:
    """Each partition of the records (aiokafka's): the offset of its first record among them,
    and the offset after its last."""
    found: dict[TopicPartition, tuple[int, int]] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        first, end = found.get(partition, (record.offset, record.offset + 1))
        found[partition] = (min(first, record.offset), max(end, record.offset + 1))
    return found


class OffsetCommits(ConsumerRebalanceListener):
    def __init__(self, name: str, every: float) -> None:
        self._name = name
        self._every = every
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}  # the next offset to read, per partition
        self._lock = asyncio.Lock()  # one commit at a time: a later one never lands first
        self._timer: asyncio.Task[None] | None = None
        self._closing = False
        self._rejoining = False  # a commit was refused: the consumer is joining the group again

    async def handled(
        self,
        consumer: AIOKafkaConsumer,
        records: Sequence[Any],
        held: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """A batch's records (aiokafka's) were handled: their transaction committed. In the
        partitions ``held`` back, only those before the offset held at."""
        self._consumer = consumer
        ends = {partition: end for partition, (_, end) in spans(records).items()}
        self._pending |= ends | dict(held or {})
        if self._closing or not self._every:
            await self.commit()
        self._commit_soon()

    def _commit_soon(self) -> None:
        """What is pending (all of it; what a commit at once failed to) goes in the background."""
        if self._closing or self._rejoining or not self._pending:
            return
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._commit_later(), name=f"{self._name} offsets")

    def closing(self) -> None:
        """The consumer is about to stop: each batch's offsets are committed at once from now on
        (what is pending, by ``commit``)."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()

    def forget(self) -> None:
        """The consumer is being replaced (``Consumer.restart``): what is pending is left to the
        new one, which starts after the committed offsets. A commit under way on the old one may
        never end, so the next commit does not wait for it."""
        if self._timer is not None:
            self._timer.cancel()
        self._consumer = None
        self._pending.clear()
        self._rejoining = False
        self._lock = asyncio.Lock()

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        """Commit the pending offsets (of ``partitions`` only, if given) of partitions still ours.
        A failure is logged, and they go with the next commit: in the background, a moment
        later (``RETRY`` s when each batch commits at once), or with the next batch's if that
        comes first; after a refusal by the group, once the consumer has its new partitions."""
        consumer = self._consumer
        if consumer is None or self._rejoining:
            return
        async with self._lock:
            assigned = consumer.assignment()
            # Another member reads a partition no longer ours: its offsets are not ours to move.
            for partition in [p for p in self._pending if p not in assigned]:
                del self._pending[partition]
            offsets = {
                partition: offset
                for partition, offset in self._pending.items()
                if partitions is None or partition in partitions
            }
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except CommitFailedError:
                self._rejoining = True
                log.warning("%s: offsets not committed yet (the group rebalances)", self._name)
                return
            except Exception as exc:  # the broker away: the next commit has them
                # The name says it: aiokafka's texts run to a paragraph of advice for others.
                log.warning("%s: offsets not committed yet (%s)", self._name, type(exc).__name__)
                return
            for partition, offset in offsets.items():
                if self._pending.get(partition) == offset:  # no batch of it handled since
                    del self._pending[partition]

    async def _commit_later(self) -> None:
        # Until nothing is left: what a batch handled during a commit's round trip added, or
        # what a failed commit kept, must not wait for a next batch, which may never come.
        while self._pending and not self._rejoining:
            await asyncio.sleep(self._every or RETRY)
            await self.commit()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Before the partitions go to another member, which then starts after what was handled.
        await self.commit(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Joined again: what is pending of partitions still ours can be committed now.
        self._rejoining = False
        self._commit_soon()
