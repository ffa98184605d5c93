"""The outbox relay: publishes committed events to Kafka in commit order, then marks them sent.

One relay at a time per database publishes (a transaction-scoped advisory lock), so replicas of a
service never reorder a key's events. Delivery is at least once: a crash between the Kafka ack and
the database update republishes a batch, and consumers deduplicate on the event id.
"""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge
from sqlalchemy import BigInteger, Text, any_, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crossgen_shared.db import OutboxRecord
from crossgen_shared.observability import wait_to_retry

log = logging.getLogger(__name__)

PUBLISHED = Counter(
    "crossgen_outbox_published_total", "Events published from the outbox", ["topic"]
)
# What an alert watches: the broker refusing a record (too large for its topic, not allowed) is
# retried for ever, and holds every later event of the service behind it.
OLDEST_WAITING = Gauge(
    "crossgen_outbox_oldest_waiting_seconds",
    "Age of the oldest event not yet published, at the publishing replica's last round (else 0)",
)
_RELAY_LOCK = 0x0C05_06E0  # advisory lock id: any constant shared by the replicas of a service
# A round's records in bytes (values and headers), past its first record: events are a few kB,
# but a dead letter can be nearly 1 MB, headers included, and a round of 500 of them would hold
# over 500 MB (40 held 43 MB; the services' memory limit is 512 MiB).
ROUND_BYTES = 8 * 1024 * 1024
_SIZE = func.octet_length(OutboxRecord.value) + func.octet_length(cast(OutboxRecord.headers, Text))
# The first ``rows`` waiting, each with how many bytes of records wait before it, and how many wait.
_waiting = (
    select(OutboxRecord.seq, _SIZE.label("size"))
    .where(OutboxRecord.published_at.is_(None))
    .order_by(OutboxRecord.seq)
    .limit(bindparam("rows"))
    .subquery()
)
_ahead = select(
    _waiting.c.seq,
    func.coalesce(
        func.sum(_waiting.c.size).over(order_by=_waiting.c.seq, rows=(None, -1)), 0
    ).label("ahead"),
    func.count().over().label("waiting"),
).subquery()
# Those of them that start within the round's bytes, in order.
_ROUND = (
    select(OutboxRecord, _ahead.c.waiting)
    .join(_ahead, OutboxRecord.seq == _ahead.c.seq)
    .where(_ahead.c.ahead < bindparam("bytes"))
    .order_by(OutboxRecord.seq)
)
# The batch's rows as one array: one statement for any batch size, prepared once a connection.
# The round's objects end with its session: not brought up to date (that read the rows back).
_PUBLISHED = (
    update(OutboxRecord)
    .where(OutboxRecord.seq == any_(bindparam("seqs", type_=ARRAY(BigInteger))))
    .values(published_at=func.now())
    .execution_options(synchronize_session=False)
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
                more = await self.publish_pending()
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
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    async def publish_pending(self) -> bool:
        """Publish one round of unpublished events; returns whether more may be waiting."""
        async with self._sessions() as session, session.begin():
            if not await session.scalar(select(func.pg_try_advisory_xact_lock(_RELAY_LOCK))):
                OLDEST_WAITING.set(0)  # another replica is publishing, and says
                return False
            found = (
                await session.execute(_ROUND, {"rows": self._batch_size, "bytes": ROUND_BYTES})
            ).all()
            rows = [row for row, _ in found]
            age = (datetime.now(UTC) - rows[0].created_at).total_seconds() if rows else 0
            OLDEST_WAITING.set(max(0, age))
            if not rows:
                return False
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
            # A full round, or one its bytes cut short.
            return len(rows) == self._batch_size or len(rows) < found[0].waiting
