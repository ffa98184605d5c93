"""The outbox relay: publishes committed events to Kafka in commit order, then marks them sent.

One relay at a time per database publishes (a transaction-scoped advisory lock), so replicas of a
service never reorder a key's events. Delivery is at least once: a crash between the Kafka ack and
the database update republishes a batch, and consumers deduplicate on the event id.
"""

import asyncio
import contextlib
import logging

from faststream.kafka import KafkaBroker
from prometheus_client import Counter
from sqlalchemy import BigInteger, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crossgen_shared.db import OutboxRecord
from crossgen_shared.observability import wait_to_retry

log = logging.getLogger(__name__)

PUBLISHED = Counter(
    "crossgen_outbox_published_total", "Events published from the outbox", ["topic"]
)
_RELAY_LOCK = 0x0C05_06E0  # advisory lock id: any constant shared by the replicas of a service
# The batch's rows as one array: one statement for any batch size, prepared once a connection.
_PUBLISHED = (
    update(OutboxRecord)
    .where(OutboxRecord.seq == any_(bindparam("seqs", type_=ARRAY(BigInteger))))
    .values(published_at=func.now())
)


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        broker: KafkaBroker,
        *,
        poll_interval: float = 0.5,
        batch_size: int = 500,
    ) -> None:
        self._sessions = sessions
        self._broker = broker
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a commit that wrote events, so they go out without waiting for a poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            # Cleared before looking: an event committed after this look wakes the wait below.
            # (Cleared after it, a commit during the publishing waited for the next poll.)
            self._wake.clear()
            try:
                published = await self.publish_pending()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                # Passing trouble includes a session the database ended while it waited for the
                # broker's acks (its idle-transaction limit): the batch goes out again, and
                # consumers skip the copies of what had reached them.
                await wait_to_retry(log, "outbox relay", exc, failures)
                continue
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; returns how many went out."""
        async with self._sessions() as session, session.begin():
            if not await session.scalar(select(func.pg_try_advisory_xact_lock(_RELAY_LOCK))):
                return 0  # another replica is publishing
            rows = (
                await session.scalars(
                    select(OutboxRecord)
                    .where(OutboxRecord.published_at.is_(None))
                    .order_by(OutboxRecord.seq)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            # Send the whole batch, then wait for every acknowledgement (acks=all, idempotent).
            pending = [
                await self._broker.publish(
                    row.value, row.topic, key=row.key or None, headers=row.headers, no_confirm=True
                )
                for row in rows
            ]
            await asyncio.gather(*pending)
            await session.execute(_PUBLISHED, {"seqs": [row.seq for row in rows]})
            for row in rows:
                PUBLISHED.labels(row.topic).inc()
            return len(rows)
