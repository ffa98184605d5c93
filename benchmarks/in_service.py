"""A service's own functions measured in this process, set up as the service runs them: how long
an owner's request holds the event loop. While it is held, that replica moves no event and answers
nothing, its probes included."""

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from uvicorn.loops.auto import auto_loop_factory

from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres

TICK_S = 0.005
T = TypeVar("T")


def on_a_fresh_database(migrations: Path, measure: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """``measure`` given the URL of a fresh database of ``migrations`` (a local PostgreSQL), on the
    event loop the services run on (uvicorn picks uvloop where installed)."""
    with LocalPostgres() as postgres, asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        url = migrated_database(postgres, migrations)
        return runner.run(measure(url))


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
