"""Consuming participants, pairings and sessions into contacts and queued messages: who hears what.

FastStream's test broker runs the real consumers (inbox, unit of work) over a real PostgreSQL.
"""

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from faststream.kafka import KafkaBroker
from icalendar import Calendar
from sqlalchemy import select

from crossgen_notifications import handlers, messages, people
from crossgen_notifications.models import Contact, Notification, Pairing
from crossgen_notifications.settings import NotificationsSettings
from crossgen_notifications.testing import START, Clock, emitted, notifications_of
from crossgen_shared import topics
from crossgen_shared.consumer import NotReady
from crossgen_shared.envelope import Envelope
from crossgen_shared.events import (
    Benefit,
    BenefitRatings,
    FeedbackSubmitted,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    NotificationFailed,
    PairingAtRisk,
    PairingEnded,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    SessionCancelled,
    SessionCompleted,
    SessionScheduled,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import consumer_record, publish_event

NEXT_WEEK = START + timedelta(days=7)


def pair_of(proposal: MatchProposed) -> dict[str, Any]:
    return proposal.model_dump(
        include={
            "pairing_id",
            "program_id",
            "learner_id",
            "mentor_id",
            "learner_person_id",
            "mentor_person_id",
        }
    )


def scheduled(proposal: MatchProposed, starts_at: datetime = NEXT_WEEK) -> SessionScheduled:
    return SessionScheduled(
        session_id=uuid4(),
        pairing_id=proposal.pairing_id,
        program_id=proposal.program_id,
        learner_id=proposal.learner_id,
        mentor_id=proposal.mentor_id,
        starts_at=starts_at,
        duration_minutes=45,
    )


def cancellation(session: SessionScheduled, by: UUID) -> SessionCancelled:
    return SessionCancelled(
        **session.model_dump(exclude={"starts_at", "duration_minutes"}),
        cancelled_by=by,
        reason="travelling",
        cancelled_at=START,
    )


# A learner's messages, by template and status, once a session of theirs was cancelled.
AFTER_CANCELLATION = [
    ("feedback-request", "cancelled"),
    ("session-cancelled", "pending"),
    ("session-reminder", "cancelled"),
    ("session-scheduled", "pending"),
]


def summary(rows: list[Notification]) -> list[tuple[str, str, str]]:
    return [(n.template, n.to_address, n.status) for n in rows]


def renamed(learner: ParticipantJoined) -> ParticipantUpdated:
    """Linda's new name and email, a day after she joined."""
    return ParticipantUpdated(
        participant_id=learner.participant_id,
        program_id=learner.program_id,
        display_name="Linda L.",
        email="linda.l@example.com",
        skills=learner.skills,
        updated_at=learner.joined_at + timedelta(days=1),
    )


async def test_participant_events_keep_the_contact_up_to_date(
    broker: KafkaBroker, notifications: Service, learner: ParticipantJoined
) -> None:
    await publish_event(broker, learner)
    update = renamed(learner)
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
    assert (contact.person_id, contact.display_name, contact.email, contact.locale) == (
        learner.person_id,
        "Linda L.",
        "linda.l@example.com",
        "en",
    )


async def test_a_batch_of_participant_events_keeps_the_contacts_as_one_by_one(
    notifications: Service,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The joins of a batch are written together; an update in the batch still finds its
    contact, and a join replayed after it, older, still does not undo it."""
    caplog.set_level(logging.INFO)
    update = renamed(learner)
    max_renamed = mentor.model_copy(
        update={"display_name": "Max M.", "joined_at": update.updated_at}
    )
    batch = [learner, mentor, update, learner, mentor, max_renamed, mentor]
    participants = next(c for c in notifications.consumers if c.topic == topics.PARTICIPANTS)
    await participants.handle(
        [consumer_record(event, i, event_id=f"e-{i}") for i, event in enumerate(batch)]
    )

    async with notifications.sessions() as session:
        contacts = {c.participant_id: c for c in (await session.scalars(select(Contact))).all()}
    assert {(c.display_name, c.email) for c in contacts.values()} == {
        ("Linda L.", "linda.l@example.com"),
        ("Max M.", "max@example.com"),
    }
    assert "one at a time" not in caplog.text  # the batch was applied as one


async def test_a_proposed_match_queues_one_email_to_each_side_once(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    event_id = await publish_event(broker, proposal)
    await publish_event(broker, proposal, event_id=event_id)  # a redelivery

    rows = await notifications_of(notifications)
    assert [(n.to_address, n.person_id, n.status, n.attempts) for n in rows] == [
        ("linda@example.com", "E-Linda", "pending", 0),
        ("max@example.com", "E-Max", "pending", 0),
    ]
    assert {(n.source_event_id, n.source_event_type, n.channel, n.template) for n in rows} == {
        (event_id, MatchProposed.event_type(), "email", "match-proposed")
    }
    assert rows[0].subject == "You have a proposed match: Max"
    assert rows[1].subject == "You have a proposed match: Linda"
    assert all("mentor teaches ai tools" in n.body for n in rows)
    assert all(n.html and "<li>mentor teaches ai tools</li>" in n.html for n in rows)
    assert all(n.next_attempt_at == START for n in rows)


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


async def test_accepted_and_at_risk_pairings_notify_both(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    await publish_event(broker, MatchAccepted(**pair_of(proposal), accepted_at=START))
    at_risk = pair_of(proposal)
    del at_risk["learner_person_id"], at_risk["mentor_person_id"]
    await publish_event(
        broker, PairingAtRisk(**at_risk, reason="no session for 6 weeks", detected_at=START)
    )

    rows = await notifications_of(notifications)
    assert sorted((n.template, n.to_address, n.subject) for n in rows) == [
        ("match-accepted", "linda@example.com", "Your pairing is on: you and Max"),
        ("match-accepted", "max@example.com", "Your pairing is on: you and Linda"),
        ("pairing-at-risk", "linda@example.com", "Is your pairing with Max still on track?"),
        ("pairing-at-risk", "max@example.com", "Is your pairing with Linda still on track?"),
    ]
    assert all("no session for 6 weeks" in n.body for n in rows if n.template == "pairing-at-risk")


async def test_a_batch_of_pairing_events_reads_its_pairs_at_once_and_tells_each_as_alone(
    notifications: Service,
    both_known: None,
    proposal: MatchProposed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One batch: a proposal, its acceptance, a second proposal of the same two, declined."""
    caplog.set_level(logging.INFO)
    again = proposal.model_copy(update={"pairing_id": uuid4()})
    batch = [
        proposal,
        MatchAccepted(**pair_of(proposal), accepted_at=START),
        again,
        MatchDeclined(
            **pair_of(again), declined_by=again.learner_id, reason="busy", declined_at=START
        ),
    ]
    pairings = next(c for c in notifications.consumers if c.topic == topics.PAIRINGS)
    await pairings.handle([consumer_record(event, i) for i, event in enumerate(batch)])

    assert sorted(summary(await notifications_of(notifications))) == [
        ("match-accepted", "linda@example.com", "pending"),
        ("match-accepted", "max@example.com", "pending"),
        ("match-declined", "max@example.com", "pending"),
        ("match-proposed", "linda@example.com", "pending"),
        ("match-proposed", "linda@example.com", "pending"),
        ("match-proposed", "max@example.com", "pending"),
        ("match-proposed", "max@example.com", "pending"),
    ]
    async with notifications.sessions() as session:
        statuses = dict((await session.execute(select(Pairing.pairing_id, Pairing.status))).all())
    assert statuses == {proposal.pairing_id: "accepted", again.pairing_id: "declined"}
    assert "one at a time" not in caplog.text  # the batch was applied as one


async def test_a_declined_match_tells_only_the_other_side(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    await publish_event(broker, proposal)
    await publish_event(
        broker,
        MatchDeclined(
            **pair_of(proposal),
            declined_by=proposal.mentor_id,
            reason="no capacity this quarter",
            declined_at=START,
        ),
    )
    declined = await notifications_of(notifications, template="match-declined")
    assert [(n.to_address, n.subject) for n in declined] == [
        ("linda@example.com", "Your proposed match with Max will not go ahead")
    ]
    assert "no capacity this quarter" in declined[0].body


async def test_a_leaver_s_partner_is_told_once_even_when_the_pairing_then_ends(
    broker: KafkaBroker,
    notifications: Service,
    both_known: None,
    proposal: MatchProposed,
    mentor: ParticipantJoined,
) -> None:
    await publish_event(broker, proposal)
    await publish_event(broker, MatchAccepted(**pair_of(proposal), accepted_at=START))
    await publish_event(
        broker,
        ParticipantLeft(
            participant_id=mentor.participant_id,
            program_id=mentor.program_id,
            reason="left the company",
            left_at=START,
        ),
    )
    await publish_event(
        broker, PairingEnded(**pair_of(proposal), reason="participant left", ended_at=START)
    )

    told = await notifications_of(notifications, template="partner-left")
    assert [(n.to_address, n.subject) for n in told] == [
        ("linda@example.com", "Max has left the program")
    ]
    assert await notifications_of(notifications, template="pairing-ended") == []


async def test_a_pairing_that_ends_tells_both(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    await publish_event(broker, MatchAccepted(**pair_of(proposal), accepted_at=START))
    await publish_event(
        broker, PairingEnded(**pair_of(proposal), reason="the program is over", ended_at=START)
    )
    ended = await notifications_of(notifications, template="pairing-ended")
    assert [n.to_address for n in ended] == ["linda@example.com", "max@example.com"]
    assert all("the program is over" in n.body for n in ended)


async def test_a_scheduled_session_queues_an_invite_a_reminder_and_a_feedback_request(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    session = scheduled(proposal)
    await publish_event(broker, session)

    rows = await notifications_of(notifications, to_address="linda@example.com")
    assert [(n.template, n.status, n.next_attempt_at) for n in rows] == [
        ("feedback-request", "pending", NEXT_WEEK + timedelta(minutes=45)),
        ("session-reminder", "pending", NEXT_WEEK - timedelta(hours=24)),
        ("session-scheduled", "pending", START),
    ]
    assert all(n.session_id == session.session_id for n in rows)
    invite = rows[2]
    assert invite.subject == "Session with Max on Monday, March 8, 2027"
    assert "Monday, March 8, 2027 at 9:00\u202fAM\n(UTC), for 45 minutes" in invite.body
    assert invite.calendar is not None
    event = Calendar.from_ical(invite.calendar).walk("VEVENT")[0]
    assert (event["UID"], event["SEQUENCE"]) == (f"{session.session_id}@crossgen", 0)
    # The reminder and the feedback request carry no invite: only the first email updates calendars.
    assert rows[0].calendar is None and rows[1].calendar is None


async def test_a_session_too_close_for_a_reminder_gets_none(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    await publish_event(broker, scheduled(proposal, starts_at=START + timedelta(hours=3)))
    assert await notifications_of(notifications, template="session-reminder") == []


async def test_a_reschedule_sends_an_update_and_moves_the_reminder(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    first = scheduled(proposal)
    await publish_event(broker, first)
    moved = first.model_copy(update={"starts_at": NEXT_WEEK + timedelta(days=1)})
    moved_id = await publish_event(broker, moved)

    rows = await notifications_of(notifications, to_address="max@example.com")
    assert [(n.template, n.status) for n in rows] == [
        ("feedback-request", "cancelled"),
        ("feedback-request", "pending"),
        ("session-reminder", "cancelled"),
        ("session-reminder", "pending"),
        ("session-rescheduled", "pending"),
        ("session-scheduled", "pending"),
    ]
    live = [n for n in rows if n.status == "pending" and n.source_event_id == moved_id]
    assert {n.template for n in live} == {
        "feedback-request",
        "session-reminder",
        "session-rescheduled",
    }
    update = next(n for n in rows if n.template == "session-rescheduled")
    assert update.subject == "Session with Linda moved to Tuesday, March 9, 2027"
    assert "moved from Monday, March 8, 2027 at 9:00\u202fAM" in update.body
    assert update.calendar is not None
    calendar = Calendar.from_ical(update.calendar)
    event = calendar.walk("VEVENT")[0]
    assert (calendar["METHOD"], event["UID"], event["SEQUENCE"]) == (
        "REQUEST",
        f"{first.session_id}@crossgen",
        1,
    )


async def test_a_cancelled_session_withdraws_its_reminders_and_cancels_the_invite(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    session = scheduled(proposal)
    await publish_event(broker, session)
    await publish_event(broker, cancellation(session, proposal.mentor_id))

    rows = await notifications_of(notifications, to_address="linda@example.com")
    assert [(n.template, n.status) for n in rows] == AFTER_CANCELLATION
    cancelled = rows[1]
    assert cancelled.subject == "Cancelled: session with Max on Monday, March 8, 2027"
    assert "travelling" in cancelled.body
    assert cancelled.calendar is not None
    calendar = Calendar.from_ical(cancelled.calendar)
    event = calendar.walk("VEVENT")[0]
    assert (calendar["METHOD"], event["STATUS"], event["SEQUENCE"]) == ("CANCEL", "CANCELLED", 1)


async def test_a_session_scheduled_and_cancelled_in_one_batch_leaves_no_reminder_to_send(
    notifications: Service,
    both_known: None,
    proposal: MatchProposed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The messages a batch queues are inserted at its commit: the cancellation writes those
    queued before it first, so it finds and cancels them."""
    caplog.set_level(logging.INFO)
    session = scheduled(proposal)
    cancelled = cancellation(session, proposal.mentor_id)
    sessions = next(c for c in notifications.consumers if c.topic == topics.SESSIONS)
    await sessions.handle([consumer_record(session, 0), consumer_record(cancelled, 1)])
    assert "one at a time" not in caplog.text  # the batch was applied as one

    rows = await notifications_of(notifications, to_address="linda@example.com")
    assert [(n.template, n.status) for n in rows] == AFTER_CANCELLATION


async def test_completion_withdraws_the_reminder_and_feedback_the_request_of_whoever_gave_it(
    broker: KafkaBroker, notifications: Service, both_known: None, proposal: MatchProposed
) -> None:
    session = scheduled(proposal)
    await publish_event(broker, session)
    about = session.model_dump(exclude={"starts_at", "duration_minutes"})
    await publish_event(broker, SessionCompleted(**about, held_minutes=50, completed_at=START))
    await publish_event(
        broker,
        FeedbackSubmitted(
            **about,
            participant_id=proposal.learner_id,
            ratings=BenefitRatings(**dict.fromkeys(Benefit, 5)),
            submitted_at=START,
        ),
    )
    follow_ups = [
        (n.template, n.to_address, n.status)
        for n in await notifications_of(notifications)
        if n.template != "session-scheduled"
    ]
    assert follow_ups == [
        ("feedback-request", "linda@example.com", "cancelled"),
        ("session-reminder", "linda@example.com", "cancelled"),
        ("feedback-request", "max@example.com", "pending"),
        ("session-reminder", "max@example.com", "cancelled"),
    ]


async def test_a_template_that_fails_to_render_is_recorded_as_failed_and_the_consumer_goes_on(
    broker: KafkaBroker,
    notifications: Service,
    both_known: None,
    proposal: MatchProposed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = messages.render

    def broken(template: str, **kwargs: Any) -> Any:
        if template == "match-proposed":
            kwargs.pop("explanation")  # as if the template wanted a fact the event lacks
        return real(template, **kwargs)

    monkeypatch.setattr(messages, "render", broken)
    event_id = await publish_event(broker, proposal)
    await publish_event(broker, MatchAccepted(**pair_of(proposal), accepted_at=START))

    rows = await notifications_of(notifications)
    assert summary(rows) == [
        ("match-accepted", "linda@example.com", "pending"),
        ("match-proposed", "linda@example.com", "failed"),
        ("match-accepted", "max@example.com", "pending"),
        ("match-proposed", "max@example.com", "failed"),
    ]
    failed = [n for n in rows if n.status == "failed"]
    assert all("'explanation' is undefined" in (n.last_error or "") for n in failed)
    events = await emitted(notifications)
    assert [type(e) for e in events] == [NotificationFailed] * 2
    assert {e.source_event_id for e in events} == {event_id}


async def test_the_unique_key_stops_a_second_message_even_past_the_inbox(
    notifications: Service,
    settings: NotificationsSettings,
    clock: Clock,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    notifier = handlers.Notifier(settings, clock)
    envelope = Envelope(
        "e-1", "/test", MatchProposed.event_type(), START, str(proposal.pairing_id), proposal
    )
    for _ in range(2):
        async with notifications.unit_of_work() as uow:
            for contact in (learner, mentor):
                await people.on_participant_joined(contact, envelope, uow)
            await notifier.on_match_proposed(proposal, envelope, uow)
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
