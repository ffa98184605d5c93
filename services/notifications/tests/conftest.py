from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

import crossgen_notifications
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_notifications.app import build
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared.events import MatchProposed, ParticipantJoined, Role
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

MIGRATIONS = Path(crossgen_notifications.__file__).parent / "migrations"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def notifications_db(postgres: LocalPostgres) -> str:
    return migrated_database(postgres, MIGRATIONS)


@pytest.fixture
def settings(notifications_db: str, tokens: TokenIssuer) -> NotificationsSettings:
    return NotificationsSettings(
        database_url=notifications_db,
        jwt_issuer=tokens.issuer,
        jwt_audience=tokens.audience,
        jwt_public_key=tokens.public_key_pem,
        create_topics=False,
    )


@pytest.fixture
async def notifications(settings: NotificationsSettings) -> AsyncIterator[Service]:
    service = build(settings)
    yield service
    await service.engine.dispose()


@pytest.fixture
async def broker(notifications: Service) -> AsyncIterator[KafkaBroker]:
    async with TestKafkaBroker(notifications.broker) as broker:
        yield broker


def joined(role: Role, name: str, email: str, program_id: UUID | None = None) -> ParticipantJoined:
    return ParticipantJoined(
        participant_id=uuid4(),
        program_id=program_id or uuid4(),
        person_id=f"E-{name}",
        role=role,
        display_name=name,
        email=email,
        skills=("ai tools",),
        joined_at=NOW,
    )


@pytest.fixture
def learner() -> ParticipantJoined:
    return joined("learner", "Linda", "linda@example.com")


@pytest.fixture
def mentor(learner: ParticipantJoined) -> ParticipantJoined:
    return joined("mentor", "Max", "max@example.com", learner.program_id)


@pytest.fixture
def proposal(learner: ParticipantJoined, mentor: ParticipantJoined) -> MatchProposed:
    return MatchProposed(
        pairing_id=uuid4(),
        program_id=learner.program_id,
        learner_id=learner.participant_id,
        mentor_id=mentor.participant_id,
        learner_person_id=learner.person_id,
        mentor_person_id=mentor.person_id,
        score=1.0,
        explanation=("mentor teaches ai tools", "mentor has free capacity"),
        proposed_at=NOW,
    )


@pytest.fixture
async def proposed(
    broker: KafkaBroker,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
) -> str:
    """Both contacts known and a match proposed: two pending emails. Returns the event id."""
    await publish_event(broker, learner)
    await publish_event(broker, mentor)
    return await publish_event(broker, proposal)
