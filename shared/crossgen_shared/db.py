"""Database plumbing every service shares: declarative base, engine, outbox and inbox tables.

Each service owns its own database; these two tables exist in each of them.
"""

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVarTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Index,
    LargeBinary,
    String,
    Uuid,
    any_,
    bindparam,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import ExceptionContext, Result, Row
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The messaging tables only: each service declares its own base for its own tables."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxRecord(Base):
    """An event written with the state change that caused it, waiting to be published."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )


class InboxRecord(Base):
    """An event id a consumer has handled, recorded in the same transaction as its effect."""

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# Every unit of work writes these with inserts on the tables: the ORM's bulk path costs about
# 0.1 ms more CPU a statement, and they are written in nearly every transaction.
OUTBOX, INBOX = Base.metadata.tables["outbox"], Base.metadata.tables["inbox"]
MESSAGING_TABLES = (OUTBOX, INBOX)


def create_engine(
    url: str,
    service: str | None = None,
    idle_transaction_timeout: float = 0.0,
    *,
    pool_size: int = 10,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    """The engine of a service's process: its connections say whose they are (``service``), and
    PostgreSQL ends one whose transaction sits idle longer than ``idle_transaction_timeout``
    seconds (0: as the server is set), releasing its locks. It keeps ``pool_size`` connections,
    opens as many more while all are busy, and waits ``pool_timeout`` seconds for one to be free
    beyond that."""
    settings = {}
    if service:
        settings["application_name"] = application_name(service, os.getpid())
    if idle_transaction_timeout:
        limit = str(round(idle_transaction_timeout * 1000))  # milliseconds
        settings["idle_in_transaction_session_timeout"] = limit
    # No pre-ping: it cost every transaction three more round trips (BEGIN, ping, ROLLBACK). A
    # connection a server restart broke fails its first use instead; SQLAlchemy then renews the
    # whole pool, and what failed is done again (see ``unavailable``).
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        connect_args={"server_settings": settings},
    )
    event.listen(engine.sync_engine, "handle_error", _drop_read_only_connections)
    return engine


_READ_ONLY = "25006"  # read_only_sql_transaction


def _drop_read_only_connections(context: ExceptionContext) -> None:
    """A write refused because the server is read-only (SQLSTATE 25006) was sent to a standby:
    after a failover, the demoted primary or a replica not promoted yet. Taken for a broken
    connection, it renews the pool, so that the next connection goes where the database's
    address leads by then; the work is retried (``unavailable``), not counted against it."""
    if getattr(context.original_exception, "sqlstate", None) == _READ_ONLY:
        context.is_disconnect = True


def application_name(service: str, pid: int) -> str:
    """What a process's connections are called in ``pg_stat_activity``: the service, the process
    and its host (PostgreSQL keeps 63 bytes)."""
    return f"crossgen-{service} pid {pid} on {socket.gethostname()}"[:63]


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def reason(exc: BaseException) -> str:
    """What the server or the driver said, without SQLAlchemy's wrapping."""
    return str(getattr(exc, "orig", None) or exc)


def refused_data(exc: BaseException) -> bool:
    """Whether the database refused a value (SQLSTATE class 22: too long, NUL, out of range, or
    a value asyncpg cannot encode): the input's fault, the same on every retry."""
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    # asyncpg's own DataError (say an int beyond int4) is an InterfaceError and a ValueError.
    return sqlstate.startswith("22") or isinstance(exc.orig.__cause__, ValueError)


# SQLSTATE classes worth a retry: a server that cannot serve now (connection exception,
# insufficient resources, operator intervention: starting up, shutting down, too many clients),
# a transaction the server rolled back to let another through (deadlock, serialization
# failure), a connection refused for its credentials or database name (a password rotated
# before the service's secret, a database not created yet), a privilege the service's role lacks
# (a grant revoked or lost in a restore: the service owns every table it touches), and the
# server's own system errors (I/O): never the record's fault. asyncpg's errors for them reach us
# as plain DBAPIErrors, not OperationalErrors.
_UNAVAILABLE = ("08", "53", "57P", "40", "28", "3D", "42501", "58")


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's trouble (down, restarted, a broken connection, a
    deadlock, every pooled connection busy for too long, the connection refused), not the
    work's: the same work may succeed once it has passed or been put right."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE)


# Rows turned into Python before the event loop is let go: a few thousand hold it for tens of
# milliseconds (benchmarks/outcomes_bench.py, whole_program_bench.py).
ROWS_AT_A_TIME = 2000
_Ts = TypeVarTuple("_Ts")


async def a_few_at_a_time(result: Result[*_Ts]) -> AsyncIterator[Sequence[Row[*_Ts]]]:
    """``result``'s rows, ``ROWS_AT_A_TIME`` at a time, the event loop let go between two: a
    read of a whole program would otherwise hold it, and the service's events and requests (its
    probes too) with it, for as long as it takes to turn every row into Python."""
    for some in result.partitions(ROWS_AT_A_TIME):
        yield some
        await asyncio.sleep(0)


def any_of_uuids(name: str) -> ColumnElement[Any]:
    """``ANY(:name)``, ``name`` bound as an array of UUIDs: a column compared with it matches a
    list of any length in one statement, prepared once a connection."""
    return any_(bindparam(name, type_=ARRAY(Uuid)))
