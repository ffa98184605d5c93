"""Every pooled connection busy for longer than ``database_pool_timeout`` (a hung or overloaded
server): that is the database's passing trouble, as a refused connection is. A request is told to
try again (503); a consumer or the outbox relay retries without counting it against the work."""

import httpx
from fastapi import APIRouter
from sqlalchemy import select

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared.db import unavailable

from .messaging import fresh_settings, messaging_service


async def test_a_request_finding_every_connection_busy_is_told_to_retry(
    postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    settings = fresh_settings(postgres, tokens, database_pool_size=1, database_pool_timeout=0.2)
    service = await messaging_service("matching", settings)
    router = APIRouter()

    @router.get("/one")
    async def one() -> int:
        async with service.sessions() as session:
            return await session.scalar(select(1)) or 0

    app = service.http_app([router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        # The pool's connection and the one opened beyond it, both held, as by hung queries.
        async with service.sessions() as first, service.sessions() as second:
            await first.execute(select(1))
            await second.execute(select(1))
            busy = await client.get("/one")
            assert (busy.status_code, busy.headers["Retry-After"]) == (503, "1")
            assert "try again" in busy.json()["detail"]
            try:
                async with service.sessions() as third:
                    await third.execute(select(1))
            except Exception as exc:
                assert unavailable(exc), exc
            else:
                raise AssertionError("a third connection was handed out")
        assert (await client.get("/one")).json() == 1
    await service.engine.dispose()
