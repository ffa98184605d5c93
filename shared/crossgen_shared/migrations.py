"""Alembic plumbing shared by the services: each service keeps its own migration scripts."""

import asyncio
from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from crossgen_shared.db import MESSAGING_TABLES


def config(script_location: Path, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(script_location: Path, database_url: str, revision: str = "head") -> None:
    command.upgrade(config(script_location, database_url), revision)


def missing_revisions(
    connection: Connection, script_location: Path, database_url: str
) -> list[str]:
    """The service's migrations the database has not had, oldest first; none when it has had
    the latest, or a revision these scripts do not know (a newer release's)."""
    script = ScriptDirectory.from_config(config(script_location, database_url))
    applied = MigrationContext.configure(connection).get_current_heads()
    known = [revision.revision for revision in script.walk_revisions()]  # newest first
    if any(revision not in known for revision in applied):
        return []
    had = {r.revision for head in applied for r in script.iterate_revisions(head, "base")}
    return [revision for revision in reversed(known) if revision not in had]


def run_env() -> None:
    """The body of every service's ``env.py``: run migrations online over asyncpg."""
    url = context.config.attributes["database_url"]

    def run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(main())


def create_messaging_tables() -> None:
    """Create the outbox and inbox tables; called from each service's first migration."""
    bind = context.get_bind()
    for table in MESSAGING_TABLES:
        table.create(bind)


def drop_messaging_tables() -> None:
    bind = context.get_bind()
    for table in reversed(MESSAGING_TABLES):
        table.drop(bind)


# BRIN: a few pages for any number of rows, barely any work per insert; the two times grow with
# the rows' order on disk, which is all a BRIN index needs to find the old ones (retention.py).
# Summarised as each range of pages fills, not only at a vacuum: a sweep that finds nothing
# old then reads a few pages (4 ms over a million rows), not the ranges written since (0.5 s).
RETENTION_INDEXES = (
    ("ix_outbox_created_brin", "outbox", "created_at"),
    ("ix_inbox_handled_brin", "inbox", "handled_at"),
)


def create_retention_indexes() -> None:
    for name, table, column in RETENTION_INDEXES:
        op.create_index(
            name, table, [column], postgresql_using="brin", postgresql_with={"autosummarize": "on"}
        )


def drop_retention_indexes() -> None:
    for name, table, _ in RETENTION_INDEXES:
        op.drop_index(name, table_name=table)
