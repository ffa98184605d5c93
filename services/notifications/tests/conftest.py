from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

import crossgen_notifications
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.smtp import SmtpSink
from crossgen_local.tokens import TokenIssuer
from crossgen_notifications.app import build
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.settings import NotificationsSettings
from crossgen_notifications.testing import START, Clock
from crossgen_shared.events import MatchProposed, ParticipantJoined, Role
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

MIGRATIONS = Path(crossgen_notifications.__file__).parent / "migrations"
NOW = START


@pytest.fixture
def clock() -> Clock:
    return Clock()


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
        public_url="https://crossgen.example/notifications",
        smtp_host="127.0.0.1",
        smtp_timeout=5.0,
        webhook_timeout=1.0,
        sending_timeout=30.0,
        # The tests' HTTP receivers listen on 127.0.0.1 over plain http.
        outbound_allowed_hosts=("127.0.0.1", "hooks.slack.com", "*.webhook.office.com"),
        outbound_allow_http=True,
        outbound_allow_private=True,
    )


@pytest.fixture
async def notifications(settings: NotificationsSettings, clock: Clock) -> AsyncIterator[Service]:
    service = build(settings, clock)
    yield service
    await service.engine.dispose()


@pytest.fixture
async def broker(notifications: Service) -> AsyncIterator[KafkaBroker]:
    async with TestKafkaBroker(notifications.broker) as broker:
        yield broker


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def delivery(
    notifications: Service, settings: NotificationsSettings, clock: Clock, smtp: SmtpSink
) -> Callable[..., Delivery]:
    """Makes a delivery worker of the service under test, sending to the SMTP sink."""

    def make(**overrides: Any) -> Delivery:
        changed = settings.model_copy(update={"smtp_port": smtp.port} | overrides)
        return Delivery(notifications.unit_of_work, changed, clock=clock)

    return make


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
async def both_known(
    broker: KafkaBroker, learner: ParticipantJoined, mentor: ParticipantJoined
) -> None:
    await publish_event(broker, learner)
    await publish_event(broker, mentor)


@pytest.fixture
async def proposed(broker: KafkaBroker, both_known: None, proposal: MatchProposed) -> str:
    """Both contacts known and a match proposed: two pending emails. Returns the event id."""
    return await publish_event(broker, proposal)
