"""The relay publishes at once what was committed while it was publishing, not a poll later."""

import asyncio
from typing import Any, cast

from crossgen_shared.outbox import OutboxRelay


class CommitDuringALook(OutboxRelay):
    """Its first look finds nothing, and an event is committed (the relay woken) meanwhile."""

    looks = 0
    looked_again: asyncio.Event

    async def publish_pending(self) -> int:
        self.looks += 1
        if self.looks == 1:
            self.wake()
        else:
            self.looked_again.set()
        return 0


async def test_a_commit_during_a_look_is_published_without_waiting_for_the_poll() -> None:
    # Nothing is ever read or sent: publish_pending is the test's own.
    relay = CommitDuringALook(cast(Any, None), cast(Any, None), poll_interval=60.0)
    relay.looked_again = asyncio.Event()
    relay.start()
    try:
        await asyncio.wait_for(relay.looked_again.wait(), 5.0)
    finally:
        await relay.stop()
