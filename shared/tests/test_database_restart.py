"""Connections are not pinged before each use: after PostgreSQL stops or restarts, or is killed
-9 and recovers (its clients told nothing), an HTTP request is told to try again in a moment (503,
Retry-After), also while no connection can be made, and the next one works on fresh connections.
So after a failover, while the server the service reconnects to refuses writes as a standby."""

import asyncio
from collections.abc import Iterator
from functools import partial

import httpx
import pytest
from fastapi import APIRouter, Depends
from sqlalchemy import func, select

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared.db import InboxRecord
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

from .messaging import fresh_settings, messaging_service


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A server of this test's own: stopping it must not disturb the other tests."""
    with LocalPostgres([]) as server:
        yield server


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
async def test_a_request_after_a_restart_is_told_to_retry_then_works(
    own_postgres: LocalPostgres, tokens: TokenIssuer, crash: bool
) -> None:
    service = await messaging_service("matching", fresh_settings(own_postgres, tokens))
    router = APIRouter()

    @router.get("/handled")
    async def handled(uow: UnitOfWork = Depends(unit_of_work)) -> int:
        async with uow:
            return await uow.session.scalar(select(func.count()).select_from(InboxRecord)) or 0

    app = service.http_app([router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        # Connections in the pool, more than one: each of them is broken by the restart.
        assert [r.status_code for r in await asyncio.gather(*[client.get("/handled")] * 3)] == [
            200
        ] * 3

        await asyncio.to_thread(partial(own_postgres.stop, crash=crash))
        # The first finds its pooled connection broken; the next cannot connect at all.
        for _ in range(2):
            down = await client.get("/handled")
            assert (down.status_code, down.headers["Retry-After"]) == (503, "1")
            assert "try again" in down.json()["detail"]

        await asyncio.to_thread(own_postgres.start)
        after = [await client.get("/handled") for _ in range(3)]
        # At most the first finds its connection broken; that renews the whole pool.
        assert [r.status_code for r in after[1:]] == [200, 200]
        assert after[0].status_code in (200, 503)
    await service.engine.dispose()


async def test_a_write_a_standby_refused_is_told_to_retry_and_the_next_reaches_the_primary(
    own_postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    """A failover: the sessions end, and the server the service reconnects to is read-only for
    a while. The connection a standby gave must not stay in the pool once the primary is back."""
    service = await messaging_service("matching", fresh_settings(own_postgres, tokens))
    router = APIRouter()

    @router.post("/handled/{event_id}")
    async def handle(event_id: str, uow: UnitOfWork = Depends(unit_of_work)) -> None:
        async with uow:
            uow.session.add(InboxRecord(consumer="test", event_id=event_id))
            await uow.commit()

    app = service.http_app([router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.post("/handled/before")).status_code == 200
        with own_postgres.standby():
            # The first finds its session ended; the next, on a new one, a read-only server.
            during = [await client.post(f"/handled/during-{n}") for n in range(3)]
        after = [await client.post(f"/handled/after-{n}") for n in range(3)]

    assert [(r.status_code, r.headers["Retry-After"]) for r in during] == [(503, "1")] * 3
    assert [r.status_code for r in after] == [200] * 3
    async with service.sessions() as session:
        handled = set(await session.scalars(select(InboxRecord.event_id)))
    assert handled == {"before", "after-0", "after-1", "after-2"}
    await service.engine.dispose()
