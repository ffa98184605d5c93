"""How long an owner's request holds a service's event loop: while it is held, that replica moves
no event and answers nothing, its probes included."""

import asyncio
import time

TICK_S = 0.005


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
