"""A process frozen or hung inside a transaction does not hold its locks for ever: PostgreSQL ends
its session after ``database_idle_transaction_timeout``, and the process, once it goes on, finds
that connection gone (trouble to retry, not its data's fault) and works on a fresh one."""

import asyncio
import os

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared.db import application_name, unavailable

from .messaging import fresh_settings, messaging_service

LOCK = select(func.pg_try_advisory_xact_lock(42))  # as the outbox relay takes its own


async def test_an_idle_transaction_is_ended_and_its_locks_released(
    postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    settings = fresh_settings(postgres, tokens, database_idle_transaction_timeout=0.3)
    service = await messaging_service("matching", settings)
    frozen = service.sessions()
    try:
        await frozen.begin()
        assert await frozen.scalar(LOCK)
        # Now it does nothing, as a frozen process would: the lock is its own until the server
        # ends its session.
        async with service.sessions() as other, other.begin():
            assert not await other.scalar(LOCK)
        await asyncio.sleep(1.0)
        async with service.sessions() as other, other.begin():
            assert await other.scalar(LOCK)
        with pytest.raises(DBAPIError) as woken:
            await frozen.execute(select(1))
        assert unavailable(woken.value)
    finally:
        await frozen.close()
    async with service.sessions() as session:
        assert await session.scalar(select(1)) == 1
        # Whose the connection is, in pg_stat_activity.
        assert await session.scalar(select(func.current_setting("application_name"))) == (
            application_name("matching", os.getpid())
        )
    await service.engine.dispose()
