"""Records the Kafka client cannot read, and the partition that waits at each.

aiokafka reads every header name as UTF-8, and cannot read a record whose name is not: Kafka
takes one from any producer that writes raw bytes (a Go or C client can), and its own clients
read it with U+FFFD. Nor can it read a batch that fails its CRC: the broker checks that when it
takes a batch, not when it serves it, so a log damaged on disk reaches consumers. Every fetch
that meets such a record fails, and drops what it had already taken from the consumer's other
partitions, which have moved past those records: a consumer that fetched again, as FastStream's
loop does, lost them. So after such a failure every partition goes back to what was handled
(what comes again, the inbox skips), and each is read alone. The one that fails is read a record
at a time up to the record it cannot read, and paused there, with what to do; the others go on.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError
from prometheus_client import Counter

from crossgen_shared.offsets import OffsetCommits

log = logging.getLogger(__name__)

WAIT_MS = 500  # for a partition's records, read alone
# The group watch leaves such a partition be (restarting would not help): this is its alert.
PAUSED = Counter(
    "crossgen_partitions_paused_unreadable_total",
    "Partitions paused at a record the Kafka client cannot read, until the group is moved past it",
    ["consumer"],
)

# What a fetch raises when it meets such a record (a codec: one whose library is missing).
UNREADABLE = (UnicodeDecodeError, CorruptRecordException, UnsupportedCodecError)

Fetch = Callable[[AIOKafkaConsumer], Awaitable[tuple[Any, ...]]]


class UnreadableRecords:
    def __init__(self, name: str, group: str, batch_size: int, offsets: OffsetCommits) -> None:
        self._name = name
        self._group = group
        self._batch_size = batch_size
        self._offsets = offsets
        self._stopped: set[TopicPartition] = set()  # at such a record, once

    def around(self, fetch: Fetch) -> Fetch:
        """``fetch`` (FastStream's, of a batch), and around a record it cannot read."""

        async def fetching(consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
            try:
                return await fetch(consumer)
            except UNREADABLE:
                return await self._read_alone(consumer)

        return fetching

    def waiting(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """The partitions paused at a record the client cannot read."""
        return consumer.paused() & self._stopped

    async def _read_alone(self, consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
        await self._offsets.commit()  # what was handled: where the partitions go back to
        readable = sorted(consumer.assignment() - consumer.paused())
        await _back_to_committed(consumer, readable)
        taken: list[Any] = []
        for partition in readable:
            try:
                found = await consumer.getmany(
                    partition, timeout_ms=WAIT_MS, max_records=self._batch_size
                )
            except UNREADABLE:
                await _back_to_committed(consumer, [partition])
                taken += await self._up_to_unreadable(consumer, partition)
                continue
            taken += found.get(partition, [])
        return tuple(taken)

    async def _up_to_unreadable(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition
    ) -> list[Any]:
        """The records before the one that cannot be read (a batch's worth at most), and the
        partition paused at it; without it, if the partition had no more records yet."""
        taken: list[Any] = []
        while len(taken) < self._batch_size:
            try:
                found = await consumer.getmany(partition, timeout_ms=WAIT_MS, max_records=1)
            except UNREADABLE as error:
                # The failed read moved nothing: the partition is at the record.
                offset = await consumer.position(partition)
                await self._wait_at(consumer, partition, offset, error)
                break
            if not found:
                break
            taken += found[partition]
        return taken

    async def _wait_at(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int, error: Exception
    ) -> None:
        consumer.pause(partition)
        self._stopped.add(partition)
        PAUSED.labels(self._name).inc()
        where = f"{partition.topic}[{partition.partition}]"
        log.error(
            "%s: %s waits at offset %d: the Kafka client cannot read that record (%s); the"
            " other partitions go on. Stop the service and move its group past it:"
            " kafka-consumer-groups.sh --bootstrap-server <brokers> --group %s"
            " --topic %s:%d --reset-offsets --to-offset %d --execute (records its producer sent"
            " in the same batch fail the same way: past those too)",
            self._name,
            where,
            offset,
            _why(error),
            self._group,
            partition.topic,
            partition.partition,
            offset + 1,
        )


async def _back_to_committed(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    for partition in partitions:
        committed = await consumer.committed(partition)
        if committed is None:  # nothing committed yet: where the group starts
            await consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, committed)


def _why(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "a header name that is not UTF-8"
    if isinstance(error, CorruptRecordException):
        # Another replica's copy may be whole: made leader, it serves the batch after a restart.
        return f"its batch fails its CRC check, the leader's log is damaged: {error}"
    return str(error)
