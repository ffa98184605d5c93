"""Each of a service's consumers keeps its place in the service's consumer group and takes the
records of its partitions, or is restarted.

In long fault runs a consumer at times never came back after the broker had been away: its
session expired, the service's other consumers joined the group again, and this one logged
nothing and committed nothing more. Its group coordinator (aiokafka 0.14.0) waited for a metadata
refresh that never came: its client's metadata task had very likely ended. The broker
knows: the group is settled, no rebalance under way, yet partitions of the topic that consumer
reads are held by no member. A consumer can also keep its place and take nothing: aiokafka does
not notice when its fetch task ends (aio-libs/aiokafka#983), and its heartbeats go on. The broker
knows that too: the partitions it holds have records past the group's committed offsets, and
none came to it. A watch asks the broker every few seconds; a consumer whose topic has partitions
left unheld, or who holds partitions with records it has not taken, for ``stall_after`` seconds is
restarted. Its new Kafka consumer joins the group and starts after the committed offsets; the
inbox skips what comes twice. The log says how the consumer's Kafka tasks ended, if they had, and
where aiokafka's tasks were waiting then, to find what stalled.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    NotCoordinatorForGroupError,
)
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)

RESTARTED = Counter(
    "crossgen_consumers_restarted_total",
    "Consumers restarted: their topic's partitions were held by no member of the group (unheld), "
    "or they held partitions with records they did not take (not taking)",
    ["consumer", "why"],
)

Client = TypeVar("Client", AIOKafkaAdminClient, AIOKafkaConsumer)

RESTARTING = "restarting it"  # in the log line of a restart, which the fault suite counts

# No rebalance under way: what no member holds now stays unheld until somebody joins.
SETTLED = {"Stable", "Empty", "Dead"}
# What the broker answers while it sets up a group's coordinator.
COORDINATOR_SETTLING = (
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    NotCoordinatorForGroupError,
)


def held(group: Any) -> set[TopicPartition] | None:
    """The partitions the members hold, from a group of a DescribeGroups response (aiokafka's
    tuple: error code, name, state, protocol type, protocol, members, ...); None while the group
    rebalances or the broker could not say."""
    error_code, _, state, _, _, members, *_ = group
    if error_code or state not in SETTLED:
        return None
    # A member's assignment is its tuple's last field, empty until it has been given one.
    assignments = [member[-1] for member in members if member[-1]]
    return {
        partition
        for assignment in assignments
        for partition in ConsumerProtocolMemberAssignment.decode(assignment).partitions()
    }


def kafka_client_waits() -> list[str]:
    """Where each task of aiokafka's (group coordination, heartbeats, fetches, metadata,
    connections) waits: its chain of coroutines, outermost first."""
    waits = []
    for task in asyncio.all_tasks():
        coroutine: Any = task.get_coro()
        code = getattr(coroutine, "cr_code", None)
        if code is None or "/aiokafka/" not in code.co_filename:
            continue
        chain = []
        while getattr(coroutine, "cr_frame", None) is not None:  # a suspended coroutine
            frame = coroutine.cr_frame
            chain.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
            coroutine = coroutine.cr_await
        waits.append(f"{task.get_name()}: {' > '.join(chain)}")
    return sorted(waits)


async def records_unread(
    admin: AIOKafkaAdminClient,
    offsets: AIOKafkaConsumer,
    group: str,
    partitions: list[TopicPartition] | None = None,
) -> dict[TopicPartition, int]:
    """How many records each partition has past the group's committed offset (past its first
    record, where the group committed none), where it has any; ``offsets`` is a Kafka consumer in
    no group. Without ``partitions``, those the group has committed on."""
    committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    partitions = list(committed) if partitions is None else partitions
    ends = await offsets.end_offsets(partitions)
    read = {p: committed[p].offset for p in partitions if p in committed}
    if never := [p for p in partitions if read.get(p, -1) < 0]:
        read |= await offsets.beginning_offsets(never)
    return {p: ends[p] - read[p] for p in partitions if ends[p] > read[p]}


async def records_gone(
    admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer, group: str, topics: Collection[str]
) -> dict[TopicPartition, range]:
    """The offsets of the records of ``topics`` deleted before the group read them (the topic's
    retention, or someone's delete-records), per partition: from what the group committed to
    where the partition now starts. Where the group has committed nothing, none can tell."""
    committed = await _committed_offsets(admin, group)
    read = {p: at.offset for p, at in committed.items() if p.topic in topics and at.offset >= 0}
    starts = await offsets.beginning_offsets(list(read)) if read else {}
    return {p: range(read[p], starts[p]) for p in read if starts[p] > read[p]}


async def _committed_offsets(
    admin: AIOKafkaAdminClient, group: str
) -> dict[TopicPartition, OffsetAndMetadata]:
    """A group new to the broker (a service's first start) has no coordinator for a moment."""
    return await AsyncRetrying(
        retry=retry_if_exception_type(COORDINATOR_SETTLING),
        wait=wait_exponential(multiplier=0.1, max=2),
        stop=stop_after_delay(4),
        reraise=True,
    )(admin.list_consumer_group_offsets, group)


class Watched(Protocol):
    """What the watch needs of a consumer (``consumer.Consumer``)."""

    @property
    def name(self) -> str: ...

    def partitions(self) -> set[TopicPartition]: ...

    def assigned(self) -> set[TopicPartition]: ...

    def last_taken(self, partition: TopicPartition) -> float | None: ...

    async def position(self, partition: TopicPartition) -> int | None: ...

    def kafka_tasks_ended(self) -> dict[str, str]: ...

    async def restart(self) -> None: ...


class GroupWatch:
    def __init__(
        self,
        group: str,
        consumers: Sequence[Watched],
        admin: Callable[[], AIOKafkaAdminClient],
        offsets: Callable[[], AIOKafkaConsumer],
        stall_after: float,
    ) -> None:
        self.group = group
        self.consumers = consumers
        self.stall_after = stall_after
        self._new_admin = admin
        self._new_offsets = offsets  # a Kafka consumer in no group, to read the partitions' ends
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._clients = AsyncExitStack()  # those two, once started
        self._unheld_since: dict[str, float] = {}  # per consumer
        self._unread_since: dict[TopicPartition, float] = {}  # per partition with records to take
        self._taking_checked = 0.0  # when consumers' taking was last checked (time.monotonic)

    async def check(self) -> None:
        """Ask the broker who holds what; restart a consumer whose topic has had partitions held
        by nobody for ``stall_after`` seconds, or who for that long has held partitions with
        records it took none of."""
        # A consumer not started, or on FastStream's test broker, knows no partitions.
        watched = [(c, partitions) for c in self.consumers if (partitions := c.partitions())]
        if not watched:
            return
        [response] = await (await self.admin()).describe_consumer_groups([self.group])
        holding = held(response.groups[0])
        now = time.monotonic()
        restarted = set()
        for consumer, partitions in watched:
            unheld = set() if holding is None else partitions - holding
            if not unheld:
                self._unheld_since.pop(consumer.name, None)
                continue
            since = self._unheld_since.setdefault(consumer.name, now)
            if now - since >= self.stall_after:
                where = ",".join(str(p.partition) for p in sorted(unheld))
                why = f"partitions {where} held by no member of group {self.group}"
                await self._restart(consumer, "unheld", f"{why} for {now - since:.0f} s")
                restarted.add(consumer.name)
        if holding is not None:  # not in a rebalance, when partitions change hands
            await self._check_taking([c for c, _ in watched if c.name not in restarted])

    async def _check_taking(self, consumers: Sequence[Watched]) -> None:
        """Restart a consumer that for ``stall_after`` seconds has held partitions with records
        past the group's committed offsets, and taken none of them meanwhile."""
        assigned = {partition: c for c in consumers for partition in c.assigned()}
        unread = {}
        if assigned:  # a replica that holds none needs no client to read offsets with
            admin, offsets = await self.admin(), await self.offsets()
            unread = await records_unread(admin, offsets, self.group, list(assigned))
        now = time.monotonic()
        if now - self._taking_checked > self.stall_after:
            # Not checked for that long (the process frozen, the broker away): what it saw then
            # is stale, and its consumers may still hold partitions the group has given others.
            self._unread_since.clear()
        self._taking_checked = now
        for partition in set(self._unread_since) - set(unread):
            del self._unread_since[partition]
        stalled: dict[str, dict[TopicPartition, int]] = {}
        for partition, count in unread.items():
            consumer = assigned[partition]
            taken = consumer.last_taken(partition)
            since = self._unread_since.setdefault(partition, now)
            if taken is None or taken >= since:  # busy with a batch, or it took some since
                self._unread_since[partition] = now
            elif now - since >= self.stall_after:
                if await self._taken_all(consumer, partition):
                    self._unread_since[partition] = now
                else:
                    stalled.setdefault(consumer.name, {})[partition] = count
        for consumer in consumers:
            if counts := stalled.get(consumer.name):
                where = ", ".join(f"{p.partition}: {n}" for p, n in sorted(counts.items()))
                why = f"records unread in the partitions it holds ({where}), none taken"
                await self._restart(consumer, "not taking", f"{why} for {self.stall_after:.0f} s")

    async def _taken_all(self, consumer: Watched, partition: TopicPartition) -> bool:
        """Whether the consumer has taken all there is of ``partition``: past the group's
        committed offset then lies the marker that ends a producer's transaction, an offset
        that no consumer is handed and so none commits."""
        position = await consumer.position(partition)
        if position is None:
            return False
        ends = await (await self.offsets()).end_offsets([partition])
        return position >= ends[partition]

    async def _restart(self, consumer: Watched, reason: str, why: str) -> None:
        ended = consumer.kafka_tasks_ended()
        tasks = [f"Its Kafka consumer's {task} had ended: {how}." for task, how in ended.items()]
        log.error(
            "%s: %s; %s. %s The process's Kafka client tasks were waiting in:\n  %s",
            consumer.name,
            why,
            RESTARTING,
            " ".join(tasks) or "Its Kafka consumer's metadata and fetch tasks were running.",
            "\n  ".join(kafka_client_waits()),
        )
        RESTARTED.labels(consumer.name, reason).inc()
        self._unheld_since.pop(consumer.name, None)
        for partition in consumer.assigned():
            self._unread_since.pop(partition, None)
        await consumer.restart()

    async def admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = self._new_admin()
            self._admin = await self._started(admin, admin.close)
        return self._admin

    async def offsets(self) -> AIOKafkaConsumer:
        if self._offsets is None:
            offsets = self._new_offsets()
            self._offsets = await self._started(offsets, offsets.stop)
        return self._offsets

    async def _started(self, client: Client, stop: Callable[[], Awaitable[None]]) -> Client:
        try:
            await client.start()
        except BaseException:
            await stop()
            raise
        self._clients.push_async_callback(stop)
        return client

    async def close(self) -> None:
        await self._clients.aclose()
        self._admin = self._offsets = None
