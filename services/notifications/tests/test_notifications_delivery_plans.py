"""The delivery's statements find their rows by an index: the delivery log is kept, so one that
reads all of it takes longer with every message sent (recording each claim's outcome did, until
migration 0004)."""

import re
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url

from crossgen_local.postgres import LocalPostgres
from crossgen_notifications.scheduling import delivery
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.settings import NotificationsSettings
from crossgen_notifications.testing import START as NOW


async def plan(dsn: str, statement: Executable, **params: Any) -> str:
    """``statement``'s plan with sequential scans priced out (the test's log is small), so that
    it reads by an index if one serves it."""
    compiled = statement.compile(dialect=PGDialect_asyncpg())  # as the service's driver runs it
    values = compiled.construct_params(params)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET enable_seqscan = off")
        rows = await connection.fetch(
            f"EXPLAIN {compiled.string}", *(values[name] for name in compiled.positiontup or ())
        )
        return "\n".join(row[0] for row in rows)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "name",
    ["claim the due messages", "record the sent ones", "lock the others to record them"],
)
async def test_the_delivery_reads_the_log_by_index(
    name: str, postgres: LocalPostgres, notifications_db: str, settings: NotificationsSettings
) -> None:
    attempts = {"attempt_ids": [uuid4(), uuid4()]}
    statement, params, index = {
        "claim the due messages": (
            Delivery(lambda: None, settings)._due,  # type: ignore[arg-type,return-value]
            {"now": NOW},
            "ix_notifications_due",
        ),
        "record the sent ones": (
            delivery._ARRIVED,
            attempts | {"now": NOW},
            "ix_notifications_attempt",
        ),
        "lock the others to record them": (
            delivery._ATTEMPTED,
            attempts,
            "ix_notifications_attempt",
        ),
    }[name]
    database = make_url(notifications_db).database
    assert database is not None
    found = await plan(postgres.dsn(database), statement, **params)
    # By its own index: the primary key's, say, would be read whole, as the table would.
    assert re.search(f"Index Scan (using|on) {index} ", found), found
