"""What sessions does with matching's pairing and participant events, over a real PostgreSQL and
the test broker."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import func, select

from crossgen_sessions.models import Pairing, Session
from crossgen_sessions.sessions.service import NOBODY
from crossgen_shared import topics
from crossgen_shared.consumer import NotReady
from crossgen_shared.db import InboxRecord
from crossgen_shared.events import MatchAccepted, PairingEnded, ParticipantLeft, SessionCancelled
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, parked, publish_event

Deliver = Callable[..., Awaitable[None]]
OpenPairing = Callable[..., Awaitable[MatchAccepted]]
Schedule = Callable[..., Awaitable[Any]]
MoveSession = Callable[[str, datetime], Awaitable[None]]


async def pairings(service: Service, pairing_id: UUID) -> list[Pairing]:
    async with service.sessions() as session:
        return list(await session.scalars(select(Pairing).where(Pairing.id == pairing_id)))


async def statuses(service: Service) -> dict[str, str]:
    async with service.sessions() as session:
        return {str(s.id): s.status for s in await session.scalars(select(Session))}


async def cancellations(service: Service) -> list[SessionCancelled]:
    return [
        e.event for e in await outbox(service.sessions) if isinstance(e.event, SessionCancelled)
    ]


def ended(accepted: MatchAccepted, when: datetime | None = None) -> PairingEnded:
    return PairingEnded(
        **accepted.model_dump(exclude={"accepted_at"}),
        reason="mentor left the company",
        ended_at=when or datetime.now(UTC),
    )


def accepted_match() -> MatchAccepted:
    return MatchAccepted(
        pairing_id=uuid4(),
        program_id=uuid4(),
        learner_id=uuid4(),
        mentor_id=uuid4(),
        learner_person_id="E-100",
        mentor_person_id="E-200",
        accepted_at=datetime(2030, 1, 31, 23, 30, tzinfo=UTC),
    )


async def test_an_accepted_match_opens_the_pairing_once_with_its_planned_end(
    sessions_service: Service,
) -> None:
    match = accepted_match()
    async with TestKafkaBroker(sessions_service.broker) as broker:
        event_id = await publish_event(broker, match)
        await publish_event(broker, match, event_id=event_id)  # a redelivery
        await publish_event(broker, match)  # announced again under a new id

    [pairing] = await pairings(sessions_service, match.pairing_id)
    assert pairing.status == "active"
    assert (pairing.learner_person_id, pairing.mentor_person_id) == ("E-100", "E-200")
    assert pairing.learner_id == match.learner_id
    assert pairing.opened_at == match.accepted_at
    assert pairing.ends_on == (match.accepted_at + timedelta(days=180)).date()
    async with sessions_service.sessions() as session:
        handled = await session.scalar(select(func.count()).select_from(InboxRecord))
    assert handled == 2


async def test_an_ended_pairing_is_marked_ended_and_its_upcoming_sessions_cancelled(
    sessions_service: Service,
    pairing: MatchAccepted,
    schedule: Schedule,
    move_session: MoveSession,
    deliver: Deliver,
) -> None:
    earlier = await schedule(pairing)
    await move_session(earlier["id"], datetime.now(UTC) - timedelta(days=2))
    upcoming = await schedule(pairing, who="E-200")
    end = ended(pairing, datetime.now(UTC) - timedelta(days=1))
    await deliver(end)

    [found] = await pairings(sessions_service, pairing.pairing_id)
    assert (found.status, found.ended_at) == ("ended", end.ended_at)
    # a session before the end may still be marked held or missed; one after it is off
    assert await statuses(sessions_service) == {
        earlier["id"]: "scheduled",
        upcoming["id"]: "cancelled",
    }
    [cancelled] = await cancellations(sessions_service)
    assert str(cancelled.session_id) == upcoming["id"]
    assert cancelled.cancelled_by == NOBODY
    assert cancelled.reason == "the pairing ended: mentor left the company"


async def test_a_pairing_ended_before_sessions_knows_it_is_retried_not_lost(
    sessions_service: Service,
) -> None:
    match = accepted_match()
    end = ended(match)
    event_id = str(uuid4())
    async with TestKafkaBroker(sessions_service.broker) as broker:
        with pytest.raises(NotReady):  # not acknowledged: Kafka delivers it again
            await publish_event(broker, end, event_id=event_id)
        assert await pairings(sessions_service, match.pairing_id) == []

        await publish_event(broker, match)
        await publish_event(broker, end, event_id=event_id)

    [pairing] = await pairings(sessions_service, match.pairing_id)
    assert pairing.status == "ended"


async def test_a_participant_who_leaves_has_their_upcoming_sessions_cancelled(
    sessions_service: Service,
    open_pairing: OpenPairing,
    schedule: Schedule,
    move_session: MoveSession,
) -> None:
    leaving = await open_pairing("E-100", "E-200")
    other_pairing_of_the_mentor = await open_pairing("E-300", "E-200")
    elsewhere = await open_pairing("E-100", "E-400")
    past = await schedule(leaving)
    await move_session(past["id"], datetime.now(UTC) - timedelta(days=3))
    upcoming = await schedule(leaving)
    not_theirs = await schedule(
        other_pairing_of_the_mentor, who="E-300", starts_at=datetime.now(UTC) + timedelta(days=20)
    )
    other_role = await schedule(elsewhere, starts_at=datetime.now(UTC) + timedelta(days=9))

    left = ParticipantLeft(
        participant_id=leaving.learner_id,
        program_id=leaving.program_id,
        reason="left the company",
        left_at=datetime.now(UTC) - timedelta(days=1),
    )
    async with TestKafkaBroker(sessions_service.broker) as broker:
        event_id = await publish_event(broker, left)
        await publish_event(broker, left, event_id=event_id)  # a redelivery

    # E-100's participant id in `elsewhere` is another one: each program enrolment has its own
    assert await statuses(sessions_service) == {
        past["id"]: "scheduled",
        upcoming["id"]: "cancelled",
        not_theirs["id"]: "scheduled",
        other_role["id"]: "scheduled",
    }
    [cancelled] = await cancellations(sessions_service)
    assert str(cancelled.session_id) == upcoming["id"]
    assert (cancelled.cancelled_by, cancelled.reason) == (leaving.learner_id, "participant left")
    assert cancelled.pairing_id == leaving.pairing_id


async def test_someone_who_leaves_before_being_paired_changes_nothing(
    sessions_service: Service, pairing: MatchAccepted, deliver: Deliver
) -> None:
    stranger = ParticipantLeft(
        participant_id=uuid4(),
        program_id=pairing.program_id,
        reason="moved",
        left_at=datetime.now(UTC),
    )
    await deliver(stranger)
    assert await outbox(sessions_service.sessions) == []


async def test_an_invalid_record_is_dead_lettered_and_the_consumer_goes_on(
    sessions_service: Service,
) -> None:
    match = accepted_match()
    async with TestKafkaBroker(sessions_service.broker) as broker:
        await broker.publish(
            b"\xff\x00 not json",
            topics.PAIRINGS,
            key=b"k",
            headers={
                "ce_id": "garbage-1",
                "ce_type": MatchAccepted.event_type(),
                "ce_source": "/test",
                "ce_specversion": "1.0",
            },
        )
        await publish_event(broker, match)

    [letter] = await parked(sessions_service.sessions)
    assert "not a CloudEvent" in letter.headers["dlq_reason"]
    assert letter.headers["dlq_origin_topic"] == topics.PAIRINGS
    assert letter.headers["ce_id"] == "garbage-1"
    assert await pairings(sessions_service, match.pairing_id) != []


async def test_data_the_database_refuses_is_dead_lettered_at_once_not_retried(
    sessions_service: Service,
) -> None:
    too_long = accepted_match().model_copy(update={"learner_person_id": "E" * 300})
    match = accepted_match()
    async with TestKafkaBroker(sessions_service.broker) as broker:
        await publish_event(broker, too_long)  # raised for a retry before the fix
        await publish_event(broker, match)

    [letter] = await parked(sessions_service.sessions)
    assert "data refused: " in letter.headers["dlq_reason"]
    assert "too long" in letter.headers["dlq_reason"]
    assert await pairings(sessions_service, too_long.pairing_id) == []
    assert await pairings(sessions_service, match.pairing_id) != []
