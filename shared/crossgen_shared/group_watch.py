"""Each of a service's consumers keeps its place in the service's consumer group, or is restarted.

In long fault runs a consumer at times never came back after the broker had been away: its
session expired, the service's other consumers joined the group again, and this one logged
nothing and committed nothing more. Its group coordinator (aiokafka 0.14.0) waited for a metadata
refresh that never came: its client's metadata task had very likely ended. The broker
knows: the group is settled, no rebalance under way, yet partitions of the topic that consumer
reads are held by no member. A watch asks the broker every few seconds; a consumer whose topic
has partitions left so for ``stall_after`` seconds is restarted. Its new Kafka consumer joins the
group and starts after the committed offsets; the inbox skips what comes twice. The log says how
the consumer's metadata task ended, if it had, and where aiokafka's tasks were waiting then, to
find what stalled.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.structs import TopicPartition
from prometheus_client import Counter

log = logging.getLogger(__name__)

RESTARTED = Counter(
    "crossgen_consumers_restarted_total",
    "Consumers restarted because their topic's partitions were held by no member of the group",
    ["consumer"],
)

RESTARTING = "restarting it"  # in the log line of a restart, which the fault suite counts

# No rebalance under way: what no member holds now stays unheld until somebody joins.
SETTLED = {"Stable", "Empty", "Dead"}


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


class Watched(Protocol):
    """What the watch needs of a consumer (``consumer.Consumer``)."""

    @property
    def name(self) -> str: ...

    def partitions(self) -> set[TopicPartition]: ...

    def metadata_task_end(self) -> str | None: ...

    async def restart(self) -> None: ...


class GroupWatch:
    def __init__(
        self,
        group: str,
        consumers: Sequence[Watched],
        admin: Callable[[], AIOKafkaAdminClient],
        stall_after: float,
    ) -> None:
        self.group = group
        self.consumers = consumers
        self.stall_after = stall_after
        self._new_admin = admin
        self._admin: AIOKafkaAdminClient | None = None
        self._unheld_since: dict[str, float] = {}  # per consumer

    async def check(self) -> None:
        """Ask the broker who holds what; restart a consumer whose topic has had partitions held
        by nobody for ``stall_after`` seconds."""
        # A consumer not started, or on FastStream's test broker, knows no partitions.
        watched = [(c, partitions) for c in self.consumers if (partitions := c.partitions())]
        if not watched:
            return
        [response] = await (await self.admin()).describe_consumer_groups([self.group])
        holding = held(response.groups[0])
        now = time.monotonic()
        for consumer, partitions in watched:
            unheld = set() if holding is None else partitions - holding
            if not unheld:
                self._unheld_since.pop(consumer.name, None)
                continue
            since = self._unheld_since.setdefault(consumer.name, now)
            if now - since < self.stall_after:
                continue
            ended = consumer.metadata_task_end()
            log.error(
                "%s: partitions %s held by no member of group %s for %.0f s; %s. "
                "Its Kafka client's metadata task %s. "
                "The process's Kafka client tasks were waiting in:\n  %s",
                consumer.name,
                ",".join(str(p.partition) for p in sorted(unheld)),
                self.group,
                now - since,
                RESTARTING,
                "was running" if ended is None else f"had ended: {ended}",
                "\n  ".join(kafka_client_waits()),
            )
            RESTARTED.labels(consumer.name).inc()
            del self._unheld_since[consumer.name]
            await consumer.restart()

    async def admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = self._new_admin()
            try:
                await admin.start()
            except BaseException:
                await admin.close()
                raise
            self._admin = admin
        return self._admin

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
