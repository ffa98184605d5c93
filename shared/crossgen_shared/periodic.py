"""Work a service does on a timer, next to its consumers: one loop for all of it."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from crossgen_shared.observability import log_failure


async def every(
    interval: float,
    what: str,
    run: Callable[[], Awaitable[object]],
    log: logging.Logger,
    *,
    first_after_interval: bool = False,
) -> None:
    """Await ``run()`` every ``interval`` seconds until cancelled: at once, or first after one
    interval. A run that fails is logged (``log_failure``) and the next one retries: a database
    outage pauses the work, it does not end it."""
    if first_after_interval:
        await asyncio.sleep(interval)
    while True:
        try:
            await run()
        except Exception as exc:
            log_failure(log, what, exc, "the next run retries")
        await asyncio.sleep(interval)
