"""Erasure end to end in one process: matching's ParticipantErased, exactly as its outbox holds
it, makes sessions and notifications forget the person (no Kafka: each service's test broker)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import select, update

import crossgen_matching
import crossgen_notifications
import crossgen_sessions
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching.app import build as build_matching
from crossgen_matching.directory.models import Employee
from crossgen_matching.erasure import erase_due
from crossgen_matching.models import Participant, Program
from crossgen_matching.settings import MatchingSettings
from crossgen_notifications.app import build as build_notifications
from crossgen_notifications.models import Contact
from crossgen_notifications.settings import NotificationsSettings
from crossgen_sessions.app import build as build_sessions
from crossgen_sessions.models import Pairing
from crossgen_sessions.pairings.consumers import ERASED
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared import retention
from crossgen_shared.db import OutboxRecord
from crossgen_shared.events import MatchAccepted, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

NOW = datetime(2030, 6, 1, tzinfo=UTC)


@pytest.fixture
def databases(postgres: LocalPostgres) -> list[str]:
    """Matching's, sessions' and notifications' databases, migrated."""
    return [
        migrated_database(postgres, Path(crossgen_matching.__file__).parent / "migrations"),
        migrated_database(postgres, Path(crossgen_sessions.__file__).parent / "migrations"),
        migrated_database(postgres, Path(crossgen_notifications.__file__).parent / "migrations"),
    ]


@pytest.fixture
async def services(databases: list[str], tokens: TokenIssuer) -> AsyncIterator[list[Service]]:
    auth: dict[str, Any] = {
        "jwt_issuer": tokens.issuer,
        "jwt_audience": tokens.audience,
        "jwt_public_key": tokens.public_key_pem,
        "create_topics": False,
    }
    matching_db, sessions_db, notifications_db = databases
    built = [
        build_matching(MatchingSettings(database_url=matching_db, **auth)),
        build_sessions(SessionsSettings(database_url=sessions_db, **auth)),
        build_notifications(
            NotificationsSettings(
                database_url=notifications_db,
                public_url="https://crossgen.example/notifications",
                **auth,
            )
        ),
    ]
    yield built
    for service in built:
        await service.engine.dispose()


async def test_a_leaver_is_forgotten_by_every_service(services: list[Service]) -> None:
    matching, sessions, notifications = services
    program_id, learner_id = uuid.uuid4(), uuid.uuid4()
    joined = ParticipantJoined(
        participant_id=learner_id,
        program_id=program_id,
        person_id="E-1",
        role="learner",
        display_name="Linda",
        email="linda@example.com",
        skills=("ai tools",),
        joined_at=NOW - timedelta(days=100),
    )
    async with matching.unit_of_work() as uow:
        uow.session.add(Program(id=program_id, name="Pilot"))
        await uow.session.flush()
        uow.session.add_all(
            [
                Employee(
                    employee_number="E-1",
                    display_name="Linda",
                    email="linda@example.com",
                    languages=[],
                    source="scim",
                    source_timestamp=NOW - timedelta(days=40),
                    removed_at=NOW - timedelta(days=31),
                ),
                Participant(
                    id=learner_id,
                    program_id=program_id,
                    person_id="E-1",
                    role="learner",
                    display_name="Linda",
                    email="linda@example.com",
                    skills=["ai tools"],
                    status="left",
                ),
            ]
        )
        await uow.emit(joined)  # long since published
        await uow.commit()
    async with matching.engine.begin() as connection:
        published = NOW - timedelta(days=100)
        await connection.execute(update(OutboxRecord).values(published_at=published))
    accepted = MatchAccepted(
        pairing_id=uuid.uuid4(),
        program_id=program_id,
        learner_id=learner_id,
        mentor_id=uuid.uuid4(),
        learner_person_id="E-1",
        mentor_person_id="E-2",
        accepted_at=NOW - timedelta(days=90),
    )

    async with matching.unit_of_work() as uow:
        await erase_due(uow, NOW, timedelta(days=30))
        await uow.commit()
    async with matching.sessions() as db:
        waiting = select(OutboxRecord).where(OutboxRecord.published_at.is_(None))
        relayed = list(await db.scalars(waiting.order_by(OutboxRecord.seq)))
    assert len(relayed) == 1

    for service, before in ((sessions, accepted), (notifications, joined)):
        async with TestKafkaBroker(service.broker) as broker:
            await publish_event(broker, before)
            for record in relayed:  # as the outbox relay sends it
                await broker.publish(
                    record.value, record.topic, key=record.key, headers=record.headers
                )

    async with sessions.sessions() as db:
        pairing = await db.get(Pairing, accepted.pairing_id)
    async with notifications.sessions() as db:
        contact = await db.get(Contact, learner_id)
    assert pairing is not None and contact is not None
    assert (pairing.learner_person_id, pairing.mentor_person_id) == (ERASED, "E-2")
    assert (contact.person_id, contact.display_name, contact.email) == ("", "", "")

    # The events that named her leave matching's outbox with its retention, long before her
    # grace period ends; the erasure's own event waits there until it is published.
    settings = matching.settings
    await retention.sweep(matching.engine, NOW, settings.outbox_retention, None)
    async with matching.sessions() as db:
        left = list(await db.scalars(select(OutboxRecord)))
    assert [record.event_id for record in left] == [record.event_id for record in relayed]
    assert all(b"Linda" not in record.value for record in left)
