from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import update

import crossgen_sessions
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_sessions.app import ROUTERS, build
from crossgen_sessions.models import Session
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared.events import Event, MatchAccepted
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

MIGRATIONS = Path(crossgen_sessions.__file__).parent / "migrations"
RATINGS = {
    "knowledge": 5,
    "skills": 4,
    "communication": 5,
    "perspectives": 3,
    "cultural_awareness": 4,
    "learning": 5,
}

# The fixtures' types; test modules name them the same way.
Headers = dict[str, str]
Deliver = Callable[..., Awaitable[None]]
OpenPairing = Callable[..., Awaitable[MatchAccepted]]
Schedule = Callable[..., Awaitable[Any]]
MoveSession = Callable[[str | UUID, datetime], Awaitable[None]]


@pytest.fixture
def sessions_db(postgres: LocalPostgres) -> str:
    return migrated_database(postgres, MIGRATIONS)


@pytest.fixture
def settings(sessions_db: str, tokens: TokenIssuer) -> SessionsSettings:
    return SessionsSettings(
        database_url=sessions_db,
        jwt_issuer=tokens.issuer,
        jwt_audience=tokens.audience,
        jwt_public_key=tokens.public_key_pem,
    )


@pytest.fixture
async def sessions_service(settings: SessionsSettings) -> AsyncIterator[Service]:
    service = build(settings)
    yield service
    await service.engine.dispose()


@pytest.fixture
async def api(sessions_service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API without its Kafka lifespan: events stay in the outbox for the test to read."""
    app = sessions_service.http_app(ROUTERS)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sessions"
    ) as client:
        yield client


@pytest.fixture
def owner(tokens: TokenIssuer) -> Callable[..., Headers]:
    """Headers of a program owner: an admin whose token lists the programs they own.

    TokenIssuer has no way to add a claim yet, so this signs with its key directly.
    """

    def headers(*program_ids: UUID, subject: str = "hr", programs: Any = None) -> Headers:
        owned = [str(p) for p in program_ids] if programs is None else programs
        return tokens.headers(subject, "admin", programs=owned)

    return headers


@pytest.fixture
def deliver(sessions_service: Service) -> Deliver:
    """Hand events to the service's consumers the way Kafka would, one after the other."""

    async def deliver(*events: Event) -> None:
        async with TestKafkaBroker(sessions_service.broker) as broker:
            for event in events:
                await publish_event(broker, event)

    return deliver


@pytest.fixture
def open_pairing(deliver: Deliver) -> OpenPairing:
    """Open a pairing in sessions as in production: matching's MatchAccepted, consumed."""

    async def open_pairing(
        learner: str = "E-100",
        mentor: str = "E-200",
        *,
        program_id: UUID | None = None,
        accepted_at: datetime | None = None,
        departments: tuple[str | None, str | None] = (None, None),
    ) -> MatchAccepted:
        accepted = MatchAccepted(
            pairing_id=uuid4(),
            program_id=program_id or uuid4(),
            learner_id=uuid4(),
            mentor_id=uuid4(),
            learner_person_id=learner,
            mentor_person_id=mentor,
            accepted_at=accepted_at or datetime.now(UTC),
            learner_department=departments[0],
            mentor_department=departments[1],
        )
        await deliver(accepted)
        return accepted

    return open_pairing


@pytest.fixture
async def pairing(open_pairing: OpenPairing) -> MatchAccepted:
    """E-100 (learner) and E-200 (mentor), paired today."""
    return await open_pairing()


@pytest.fixture
def schedule(api: httpx.AsyncClient, tokens: TokenIssuer) -> Schedule:
    """Schedule a session through the API (next week by default); returns the session."""

    async def schedule(
        pairing: MatchAccepted,
        *,
        who: str = "E-100",
        starts_at: datetime | None = None,
        minutes: int = 45,
    ) -> Any:
        when = starts_at or datetime.now(UTC) + timedelta(days=7)
        response = await api.post(
            f"/pairings/{pairing.pairing_id}/sessions",
            json={"starts_at": when.isoformat(), "duration_minutes": minutes, "agenda": "Slack"},
            headers=tokens.headers(who, "participant"),
        )
        assert response.status_code == 201, response.text
        return response.json()

    return schedule


@pytest.fixture
def move_session(sessions_service: Service) -> MoveSession:
    """Move a session's start behind the API's back: how a test lets time pass."""

    async def move(session_id: str | UUID, starts_at: datetime) -> None:
        async with sessions_service.sessions() as db, db.begin():
            await db.execute(
                update(Session)
                .where(Session.id == UUID(str(session_id)))
                .values(starts_at=starts_at)
            )

    return move
