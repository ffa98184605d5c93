from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

import crossgen_sessions
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_sessions import views
from crossgen_sessions.app import build
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared.events import MatchAccepted
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

MIGRATIONS = Path(crossgen_sessions.__file__).parent / "migrations"


@pytest.fixture
def sessions_db(postgres: LocalPostgres) -> str:
    return migrated_database(postgres, MIGRATIONS)


@pytest.fixture
async def sessions_service(sessions_db: str, tokens: TokenIssuer) -> AsyncIterator[Service]:
    settings = SessionsSettings(
        database_url=sessions_db,
        jwt_issuer=tokens.issuer,
        jwt_audience=tokens.audience,
        jwt_public_key=tokens.public_key_pem,
    )
    service = build(settings)
    yield service
    await service.engine.dispose()


@pytest.fixture
async def api(sessions_service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API without its Kafka lifespan: events stay in the outbox for the test to read."""
    app = sessions_service.http_app([views.router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sessions"
    ) as client:
        yield client


@pytest.fixture
def match_accepted() -> MatchAccepted:
    """Matching's announcement that E-100 (learner) and E-200 (mentor) are a pair."""
    return MatchAccepted(
        pairing_id=uuid4(),
        program_id=uuid4(),
        learner_id=uuid4(),
        mentor_id=uuid4(),
        learner_person_id="E-100",
        mentor_person_id="E-200",
        accepted_at=datetime.now(UTC),
    )


@pytest.fixture
async def pairing(sessions_service: Service, match_accepted: MatchAccepted) -> MatchAccepted:
    """That pairing, opened in sessions the way it happens in production: by the consumer."""
    async with TestKafkaBroker(sessions_service.broker) as broker:
        await publish_event(broker, match_accepted)
    return match_accepted
