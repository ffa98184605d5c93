"""Consuming participants, pairings and sessions into contacts and pending notifications.

FastStream's test broker runs the real consumers (inbox, unit of work) over a real PostgreSQL.
"""

from datetime import timedelta
from uuid import uuid4

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy import select

from crossgen_notifications import service
from crossgen_notifications.models import Contact, Notification
from crossgen_shared.consumer import NotReady
from crossgen_shared.envelope import Envelope
from crossgen_shared.events import (
    MatchAccepted,
    MatchProposed,
    ParticipantJoined,
    ParticipantUpdated,
    SessionCompleted,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event


async def notifications_of(notifications: Service) -> list[Notification]:
    async with notifications.sessions() as session:
        rows = await session.scalars(select(Notification).order_by(Notification.to_address))
        return list(rows)


async def test_participant_events_keep_the_contact_up_to_date(
    broker: KafkaBroker, notifications: Service, learner: ParticipantJoined
) -> None:
    await publish_event(broker, learner)
    later = learner.joined_at + timedelta(days=1)
    update = ParticipantUpdated(
        participant_id=learner.participant_id,
        program_id=learner.program_id,
        display_name="Linda L.",
        email="linda.l@example.com",
        skills=learner.skills,
        updated_at=later,
    )
    await publish_event(broker, update)
    # An older fact arriving late (a replay) does not overwrite a newer one.
    await publish_event(
        broker,
        update.model_copy(update={"email": "old@example.com", "updated_at": learner.joined_at}),
    )
    await publish_event(broker, learner)

    async with notifications.sessions() as session:
        contact = await session.get(Contact, learner.participant_id)
    assert contact is not None
    assert (contact.person_id, contact.display_name, contact.email) == (
        learner.person_id,
        "Linda L.",
        "linda.l@example.com",
    )


async def test_a_proposed_match_queues_one_email_to_each_side_once(
    broker: KafkaBroker,
    notifications: Service,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    await publish_event(broker, learner)
    await publish_event(broker, mentor)
    event_id = await publish_event(broker, proposal)
    await publish_event(broker, proposal, event_id=event_id)  # a redelivery

    rows = await notifications_of(notifications)
    assert [(n.to_address, n.recipient_id, n.status, n.attempts) for n in rows] == [
        ("linda@example.com", learner.participant_id, "pending", 0),
        ("max@example.com", mentor.participant_id, "pending", 0),
    ]
    assert {(n.source_event_id, n.source_event_type, n.channel, n.template) for n in rows} == {
        (event_id, MatchProposed.event_type(), "email", "match-proposed")
    }
    assert rows[0].subject == "You have a proposed match: Max"
    assert rows[1].subject == "You have a proposed match: Linda"
    assert all("mentor teaches ai tools" in n.body for n in rows)


async def test_a_proposal_before_its_contacts_is_retried_not_lost(
    broker: KafkaBroker,
    notifications: Service,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    event_id = str(uuid4())
    with pytest.raises(NotReady):  # the consumer does not ack: Kafka delivers the record again
        await publish_event(broker, proposal, event_id=event_id)
    assert await notifications_of(notifications) == []

    await publish_event(broker, learner)
    with pytest.raises(NotReady):
        await publish_event(broker, proposal, event_id=event_id)
    await publish_event(broker, mentor)
    await publish_event(broker, proposal, event_id=event_id)
    assert len(await notifications_of(notifications)) == 2


async def test_accepted_match_and_completed_session_notify_both(
    broker: KafkaBroker,
    notifications: Service,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    for contact in (learner, mentor):
        await publish_event(broker, contact)
    pair = proposal.model_dump(include=set(MatchAccepted.model_fields) - {"accepted_at"})
    await publish_event(broker, MatchAccepted(**pair, accepted_at=proposal.proposed_at))
    await publish_event(
        broker,
        SessionCompleted(
            session_id=uuid4(),
            pairing_id=proposal.pairing_id,
            program_id=proposal.program_id,
            learner_id=proposal.learner_id,
            mentor_id=proposal.mentor_id,
            held_minutes=50,
            completed_at=proposal.proposed_at,
        ),
    )

    rows = await notifications_of(notifications)
    by_template = sorted((n.template, n.to_address, n.subject) for n in rows)
    assert by_template == [
        ("match-accepted", "linda@example.com", "Your pairing is on: you and Max"),
        ("match-accepted", "max@example.com", "Your pairing is on: you and Linda"),
        ("session-follow-up", "linda@example.com", "How did your session go?"),
        ("session-follow-up", "max@example.com", "How did your session go?"),
    ]


async def test_the_unique_constraint_stops_a_second_message_even_past_the_inbox(
    notifications: Service,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    envelope = Envelope(
        "e-1",
        "/test",
        MatchProposed.event_type(),
        proposal.proposed_at,
        str(proposal.pairing_id),
        proposal,
    )
    for _ in range(2):
        async with notifications.unit_of_work() as uow:
            for contact in (learner, mentor):
                await service.on_participant_joined(contact, envelope, uow)
            await service.on_match_proposed(proposal, envelope, uow)
            await uow.commit()
    assert len(await notifications_of(notifications)) == 2


async def test_an_update_for_an_unknown_participant_waits_for_the_join(
    broker: KafkaBroker, learner: ParticipantJoined
) -> None:
    update = ParticipantUpdated(
        **learner.model_dump(include={"participant_id", "program_id", "display_name", "email"}),
        skills=learner.skills,
        updated_at=learner.joined_at,
    )
    with pytest.raises(NotReady):
        await publish_event(broker, update)
