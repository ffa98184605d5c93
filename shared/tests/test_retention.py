"""Retention: the outbox and the inbox lose what is past its time, batch after batch, and never an
event still waiting to be published."""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import retention
from crossgen_shared.retention import Swept
from crossgen_shared.service import Service

from .messaging import eventually, fresh_settings, messaging_service

NOW = datetime.now(UTC)
# Written (and handled) how long ago, published or not: the rows each test starts with.
OUTBOX_ROWS = {
    "old-published": (timedelta(days=2), True),
    "old-waiting": (timedelta(days=9), False),
    "recent-published": (timedelta(hours=1), True),
}
INBOX_ROWS = {"old": timedelta(days=50), "recent": timedelta(days=10)}


async def seeded(postgres: LocalPostgres, tokens: TokenIssuer, **settings: float) -> Service:
    service = await messaging_service("retention", fresh_settings(postgres, tokens, **settings))
    async with service.engine.begin() as connection:
        for event_id, (age, published) in OUTBOX_ROWS.items():
            await connection.execute(
                text(
                    "INSERT INTO outbox (event_id, topic, key, headers, value, created_at,"
                    " published_at) VALUES (:id, 't', '', '{}', '', :at, :published)"
                ),
                {"id": event_id, "at": NOW - age, "published": NOW if published else None},
            )
        for event_id, age in INBOX_ROWS.items():
            await connection.execute(
                text("INSERT INTO inbox VALUES ('c', :id, :at)"), {"id": event_id, "at": NOW - age}
            )
    return service


async def left(service: Service) -> tuple[set[str], set[str]]:
    async with service.engine.connect() as connection:
        outbox = await connection.scalars(text("SELECT event_id FROM outbox"))
        inbox = await connection.scalars(text("SELECT event_id FROM inbox"))
        return set(outbox), set(inbox)


async def test_a_sweep_deletes_old_published_events_and_old_ids_and_nothing_else(
    postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    service = await seeded(postgres, tokens)
    day, days_45 = timedelta(days=1), timedelta(days=45)
    assert await retention.sweep(service.engine, NOW, day, days_45) == Swept(outbox=1, inbox=1)
    assert await left(service) == ({"old-waiting", "recent-published"}, {"recent"})
    # No inbox retention: the ids stay, however old.
    assert await retention.sweep(service.engine, NOW + 9 * days_45, day, None) == Swept(1, 0)
    assert await left(service) == ({"old-waiting"}, {"recent"})
    await service.engine.dispose()


async def test_a_sweep_goes_on_batch_after_batch_and_says_how_far(
    postgres: LocalPostgres,
    tokens: TokenIssuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(retention, "PROGRESS_EVERY", 0.0)
    service = await seeded(postgres, tokens)
    async with service.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO inbox SELECT 'c', 'e-' || i, now() - interval '60 days'"
                " FROM generate_series(1, :n) i"
            ),
            {"n": retention.BATCH + 1},
        )
    with caplog.at_level(logging.INFO, logger=retention.__name__):
        swept = await retention.sweep(service.engine, NOW, timedelta(days=1), timedelta(days=45))
    assert swept == Swept(outbox=1, inbox=retention.BATCH + 2)
    assert f"{retention.BATCH} row(s) deleted from the inbox so far" in caplog.text
    assert (await left(service))[1] == {"recent"}
    await service.engine.dispose()


async def test_the_service_sweeps_as_its_settings_say(
    postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    service = await seeded(
        postgres,
        tokens,
        outbox_retention_hours=0.5,
        inbox_retention_days=5,
        retention_check_interval=0.05,
    )
    [sweeping] = [asyncio.create_task(worker()) for worker in service.workers]

    async def swept() -> bool:
        return await left(service) == ({"old-waiting"}, set())

    try:
        await eventually(swept, within=10)
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        await service.engine.dispose()
