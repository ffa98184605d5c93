from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import crossgen_matching
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching import views
from crossgen_matching.app import build
from crossgen_matching.settings import MatchingSettings
from crossgen_shared.service import Service

MIGRATIONS = Path(crossgen_matching.__file__).parent / "migrations"


def matching_service(postgres: LocalPostgres, tokens: TokenIssuer, **settings: Any) -> Service:
    """The matching service on a freshly migrated database of its own."""
    return build(
        MatchingSettings(
            database_url=migrated_database(postgres, MIGRATIONS),
            jwt_issuer=tokens.issuer,
            jwt_audience=tokens.audience,
            jwt_public_key=tokens.public_key_pem,
            **settings,
        )
    )


@asynccontextmanager
async def http_api(matching: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API without its Kafka lifespan: events stay in the outbox for the test to read."""
    app = matching.http_app([views.router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://matching"
    ) as client:
        yield client
    await matching.engine.dispose()


@pytest.fixture
def matching(postgres: LocalPostgres, tokens: TokenIssuer) -> Service:
    return matching_service(postgres, tokens)


@pytest.fixture
async def api(matching: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with http_api(matching) as client:
        yield client
