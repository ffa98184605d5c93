"""How long the outbox and the inbox keep their rows: as long as they are needed, not forever.

Each HRIS record leaves about six rows in them across the services, and the outbox keeps each
event's body, which names people: kept forever, both grow with the traffic, and an erased
person's name outlives the erasure there.

- An event stays in the outbox ``outbox_retention`` after it was written (to look into what went
  out), and however long it waits to be published: an unpublished one is never deleted.
- A handled event's id stays in the inbox ``inbox_retention``. A later copy of the event is
  skipped only while its id is there, and Kafka can deliver a copy as long as the topic keeps the
  event (a consumer group whose offsets were reset or expired reads the topic again), so it must
  outlast the retention of every topic the service reads. None keeps the ids forever.

Rows go in batches, each its own short transaction; replicas sweeping at once skip each other's.
The BRIN indexes on the two times (each service's migrations) find the old rows cheaply.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Delete,
    Table,
    any_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from crossgen_shared.db import INBOX, OUTBOX
from crossgen_shared.periodic import every

log = logging.getLogger(__name__)

BATCH = 5000
PROGRESS_EVERY = 10.0  # seconds between two lines of a long sweep's progress
DELETED = Counter(
    "crossgen_retention_deleted_total", "Rows deleted once past their retention", ["table"]
)
_CUTOFF = bindparam("cutoff", type_=DateTime(timezone=True))


def _older(table: Table, *old: ColumnElement[bool]) -> Delete:
    """The next batch of ``table``'s rows that are ``old``, as one statement, prepared once a
    connection. By where they are, not by key: matched by key, the planner read the whole table
    for each batch (150 ms a batch at a million rows)."""
    where: ColumnElement[Any] = literal_column("ctid")  # the row's place in the table
    batch = select(where).where(*old).limit(BATCH).with_for_update(skip_locked=True)
    return delete(table).where(where == any_(func.array(batch.scalar_subquery())))


_OLD_PUBLISHED = _older(OUTBOX, OUTBOX.c.created_at < _CUTOFF, OUTBOX.c.published_at.is_not(None))
_OLD_HANDLED = _older(INBOX, INBOX.c.handled_at < _CUTOFF)


@dataclass(frozen=True)
class Swept:
    """How many rows one sweep deleted."""

    outbox: int
    inbox: int


async def sweep(
    engine: AsyncEngine, now: datetime, outbox_keep: timedelta, inbox_keep: timedelta | None
) -> Swept:
    """Delete what is past its retention at ``now``, batch by batch, until none is left."""
    outbox = await _delete_older(engine, _OLD_PUBLISHED, now - outbox_keep)
    inbox = await _delete_older(engine, _OLD_HANDLED, now - inbox_keep) if inbox_keep else 0
    DELETED.labels("outbox").inc(outbox)
    DELETED.labels("inbox").inc(inbox)
    return Swept(outbox, inbox)


async def _delete_older(engine: AsyncEngine, batch: Delete, cutoff: datetime) -> int:
    deleted, said = 0, time.monotonic()
    while True:
        async with engine.begin() as connection:
            taken = (await connection.execute(batch, {"cutoff": cutoff})).rowcount
        deleted += taken
        if taken < BATCH:
            return deleted
        # The first sweep of a database that kept everything may take minutes: say how far.
        if time.monotonic() - said >= PROGRESS_EVERY:
            table = batch.table.description
            log.info("retention: %d row(s) deleted from the %s so far, going on", deleted, table)
            said = time.monotonic()


async def watch(
    engine: AsyncEngine,
    outbox_keep: timedelta,
    inbox_keep: timedelta | None,
    interval: float,
) -> None:
    """The background worker: a sweep every ``interval`` seconds until cancelled."""

    async def run() -> None:
        swept = await sweep(engine, datetime.now(UTC), outbox_keep, inbox_keep)
        if swept.outbox or swept.inbox:
            log.info(
                "retention: deleted %d published event(s) from the outbox, %d handled id(s)"
                " from the inbox",
                swept.outbox,
                swept.inbox,
            )

    await every(interval, "retention sweep", run, log)
