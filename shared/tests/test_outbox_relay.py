"""The relay publishes at once what was committed while it was publishing, not a poll later; a
failed look is retried, logged as a warning when it is passing trouble, with a traceback if not."""

import asyncio
from logging import ERROR, WARNING
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
from sqlalchemy.exc import InterfaceError

from crossgen_shared.outbox import OutboxRelay


class ScriptedRelay(OutboxRelay):
    """Its first look does what ``first`` says; the next one sets ``looked_again``. Nothing is
    ever read or sent: ``publish_pending`` is the test's own."""

    def __init__(self, first: Exception | None = None, poll_interval: float = 60.0) -> None:
        super().__init__(cast(Any, None), cast(Any, None), poll_interval=poll_interval)
        self.first = first
        self.looks = 0
        self.looked_again = asyncio.Event()

    async def publish_pending(self) -> bool:
        self.looks += 1
        if self.looks > 1:
            self.looked_again.set()
        elif self.first is not None:
            raise self.first
        else:
            self.wake()  # an event committed during the look
        return False

    async def second_look(self) -> None:
        self.start()
        try:
            await asyncio.wait_for(self.looked_again.wait(), 5.0)
        finally:
            await self.stop()


async def test_a_commit_during_a_look_is_published_without_waiting_for_the_poll() -> None:
    await ScriptedRelay().second_look()


CLOSED = InterfaceError("update outbox ...", {}, Exception("the underlying connection is closed"))


@pytest.mark.parametrize(
    ("error", "level", "logged"),
    [
        (
            CLOSED,
            WARNING,
            "the database is unavailable (Exception: the underlying connection is closed);"
            " retrying in 0.4 s",
        ),
        (
            KafkaTimeoutError(),
            WARNING,
            "the Kafka broker is unavailable (KafkaTimeoutError); retrying in 0.4 s",
        ),
        (ValueError("a bug"), ERROR, "failed; retrying in 0.4 s"),
        # The broker answers, and refuses: a person must grant the topic, it will not pass.
        (TopicAuthorizationFailedError(), ERROR, "failed; retrying in 0.4 s"),
    ],
    ids=["database", "kafka", "bug", "kafka refuses"],
)
async def test_a_failed_look_is_retried(
    error: Exception, level: int, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    await ScriptedRelay(error).second_look()
    [record] = [r for r in caplog.records if r.name == "crossgen_shared.outbox"]
    assert record.getMessage().removeprefix("outbox relay").lstrip(": ") == logged
    # Only what nobody foresaw gets a traceback.
    assert (record.levelno, record.exc_info is not None) == (level, level == ERROR)
