"""A service's own functions measured in this process, set up as the service runs them: how long
an owner's request holds the event loop. While it is held, that replica moves no event and answers
nothing, its probes included."""

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uvicorn.loops.auto import auto_loop_factory

from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_shared.cli import settle_collector

TICK_S = 0.005
ROWS_A_STATEMENT = 5000
T = TypeVar("T")


def on_a_fresh_database(migrations: Path, measure: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """``measure`` given the URL of a fresh database of ``migrations`` (a local PostgreSQL), on the
    event loop the services run on (uvicorn picks uvloop where installed)."""
    with LocalPostgres() as postgres, asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        url = migrated_database(postgres, migrations)
        return runner.run(measure(url))


async def fill(
    sessions: async_sessionmaker[AsyncSession], tables: dict[Any, list[dict[str, Any]]]
) -> None:
    """Write ``tables``' rows (by table) in one transaction and empty it; then set the garbage
    collector as a started service has it, the rows let go first."""
    async with sessions() as session:
        for table, rows in tables.items():
            for start in range(0, len(rows), ROWS_A_STATEMENT):
                await session.execute(insert(table), rows[start : start + ROWS_A_STATEMENT])
        await session.commit()
    tables.clear()
    settle_collector()


class LoopHeld:
    """The longest the event loop was held from a task asking for it every ``TICK_S``."""

    async def __aenter__(self) -> "LoopHeld":
        self.longest = 0.0
        self._ticking = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ticking.cancel()

    async def _tick(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.longest = max(self.longest, time.perf_counter() - asked - TICK_S)
