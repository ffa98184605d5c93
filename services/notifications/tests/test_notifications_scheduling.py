"""When messages go out: quiet hours, daily digests, reminders and feedback requests, on a clock
the tests move."""

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from faststream.kafka import KafkaBroker

from crossgen_local.smtp import SmtpSink
from crossgen_notifications.channels.urls import UrlPolicy
from crossgen_notifications.preferences import store
from crossgen_notifications.preferences.model import PreferencesIn, QuietHoursIn
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.scheduling.timing import QuietHours, after_quiet_hours, next_digest
from crossgen_notifications.settings import NotificationsSettings
from crossgen_notifications.testing import START, Clock, emitted, notifications_of
from crossgen_shared.events import (
    MatchAccepted,
    MatchProposed,
    NotificationSent,
    ParticipantJoined,
    SessionScheduled,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

BERLIN = ZoneInfo("Europe/Berlin")  # UTC+1 in March until the 28th
NIGHT = QuietHours(time(22), time(7))


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, tzinfo=UTC)


# --- the rules, as pure functions ----------------------------------------------------------


def test_quiet_hours_over_midnight_hold_messages_until_they_end() -> None:
    assert after_quiet_hours(utc(1, 21, 30), NIGHT, BERLIN) == utc(2, 6)  # 22:30 → 07:00 Berlin
    assert after_quiet_hours(utc(2, 4), NIGHT, BERLIN) == utc(2, 6)  # 05:00 → 07:00 Berlin
    assert after_quiet_hours(utc(2, 6), NIGHT, BERLIN) == utc(2, 6)  # 07:00: the end is not quiet
    assert after_quiet_hours(utc(2, 12), NIGHT, BERLIN) == utc(2, 12)
    assert after_quiet_hours(utc(2, 12), None, BERLIN) == utc(2, 12)


def test_quiet_hours_within_a_day() -> None:
    lunch = QuietHours(time(12), time(13, 30))
    assert after_quiet_hours(utc(1, 12, 10), lunch, ZoneInfo("UTC")) == utc(1, 13, 30)
    assert after_quiet_hours(utc(1, 11, 59), lunch, ZoneInfo("UTC")) == utc(1, 11, 59)


def test_a_digest_goes_out_at_the_next_digest_hour_in_the_person_s_timezone() -> None:
    assert next_digest(utc(1, 6), 8, None, BERLIN).due == utc(1, 7)  # 07:00 → 08:00 Berlin
    tomorrow = next_digest(utc(1, 7), 8, None, BERLIN)  # exactly 08:00: that one is going out
    assert (tomorrow.day.isoformat(), tomorrow.due) == ("2027-03-02", utc(2, 7))
    # A digest hour inside quiet hours waits for their end; it keeps its day.
    late = next_digest(utc(1, 12), 8, QuietHours(time(6), time(9)), BERLIN)
    assert (late.day.isoformat(), late.due) == ("2027-03-02", utc(2, 8))


# --- the service, on a moving clock --------------------------------------------------------


async def prefer(notifications: Service, person_id: str, **chosen: Any) -> None:
    async with notifications.unit_of_work() as uow:
        await store.save(uow.session, person_id, PreferencesIn(**chosen), UrlPolicy(()))
        await uow.commit()


def pair_of(proposal: MatchProposed) -> dict[str, Any]:
    return proposal.model_dump(exclude={"score", "explanation", "proposed_at"})


async def test_quiet_hours_delay_an_immediate_message_to_their_end(
    broker: KafkaBroker,
    notifications: Service,
    delivery: Callable[..., Delivery],
    smtp: SmtpSink,
    clock: Clock,
    both_known: None,
    learner: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    await prefer(
        notifications,
        learner.person_id,
        timezone="Europe/Berlin",
        quiet_hours=QuietHoursIn(start=time(22), end=time(7)),
    )
    clock.now = utc(1, 21, 30)  # 22:30 in Berlin
    await publish_event(broker, proposal)
    linda, max_ = await notifications_of(notifications)
    assert (linda.to_address, linda.next_attempt_at) == ("linda@example.com", utc(2, 6))
    assert max_.next_attempt_at == clock.now  # Max has no quiet hours

    mailer = delivery()
    assert await mailer.deliver_due() == 1
    clock.now = utc(2, 5, 59)
    assert await mailer.deliver_due() == 0
    clock.now = utc(2, 6)
    assert await mailer.deliver_due() == 1
    assert [m.rcpt_tos for m in smtp.messages] == [["max@example.com"], ["linda@example.com"]]


async def test_a_digest_collects_a_day_of_messages_into_one_email(
    broker: KafkaBroker,
    notifications: Service,
    delivery: Callable[..., Delivery],
    smtp: SmtpSink,
    clock: Clock,
    both_known: None,
    learner: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    await prefer(notifications, learner.person_id, delivery="daily_digest")
    session = SessionScheduled(
        **proposal.model_dump(include={"pairing_id", "program_id", "learner_id", "mentor_id"}),
        session_id=proposal.pairing_id,
        starts_at=START + timedelta(days=7),
        duration_minutes=45,
    )
    await publish_event(broker, proposal)
    clock.advance(hours=2)
    await publish_event(broker, MatchAccepted(**pair_of(proposal), accepted_at=clock.now))
    await publish_event(broker, session)

    digest, *later = await notifications_of(notifications, template="daily-digest")
    assert (digest.source_event_id, digest.next_attempt_at) == ("digest:2027-03-02", utc(2, 8))
    collected = await notifications_of(notifications, digest_id=digest.id)
    assert {(n.template, n.status) for n in collected} == {
        ("match-proposed", "collected"),
        ("match-accepted", "collected"),
        ("session-scheduled", "collected"),
    }
    # The reminder and the feedback request wait for the digests after they are due.
    assert [d.source_event_id for d in later] == ["digest:2027-03-08", "digest:2027-03-09"]

    mailer = delivery()
    await mailer.deliver_due()  # Max's three, immediately
    assert all(m.rcpt_tos == ["max@example.com"] for m in smtp.messages)
    clock.now = utc(2, 8)
    assert await mailer.deliver_due() == 1

    [mail] = [m.message for m in smtp.messages if m.rcpt_tos == ["linda@example.com"]]
    assert mail["Subject"] == "Your Crossgen digest: 3 updates"
    text = mail.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    for subject in (
        "== You have a proposed match: Max ==",
        "== Your pairing is on: you and Max ==",
        "== Session with Max on Monday, March 8, 2027 ==",
    ):
        assert subject in content
    assert [a.get_filename() for a in mail.iter_attachments()] == ["invite.ics"]

    sent = await notifications_of(notifications, digest_id=digest.id, status="sent")
    assert len(sent) == 3
    assert [n.status for n in await notifications_of(notifications, id=digest.id)] == ["sent"]
    told = {
        e.notification_id for e in await emitted(notifications) if isinstance(e, NotificationSent)
    }
    assert {n.id for n in collected} <= told and digest.id not in told

    # The next message waits for the next day's digest.
    await publish_event(broker, proposal)
    pending = await notifications_of(notifications, template="daily-digest", status="pending")
    assert (pending[0].source_event_id, pending[0].next_attempt_at) == (
        "digest:2027-03-03",
        utc(3, 8),
    )


async def test_the_reminder_and_the_feedback_request_go_out_on_time(
    broker: KafkaBroker,
    notifications: Service,
    settings: NotificationsSettings,
    delivery: Callable[..., Delivery],
    smtp: SmtpSink,
    clock: Clock,
    both_known: None,
    proposal: MatchProposed,
) -> None:
    starts = START + timedelta(days=7)
    await publish_event(
        broker,
        SessionScheduled(
            **proposal.model_dump(include={"pairing_id", "program_id", "learner_id", "mentor_id"}),
            session_id=proposal.pairing_id,
            starts_at=starts,
            duration_minutes=60,
        ),
    )
    mailer = delivery()
    assert await mailer.deliver_due() == 2  # the invites

    clock.now = starts - settings.reminder_lead - timedelta(seconds=1)
    assert await mailer.deliver_due() == 0
    clock.now = starts - settings.reminder_lead
    assert await mailer.deliver_due() == 2
    clock.now = starts + timedelta(minutes=60)
    assert await mailer.deliver_due() == 2
    subjects = [m.message["Subject"] for m in smtp.messages if m.rcpt_tos == ["max@example.com"]]
    assert subjects == [
        "Session with Linda on Monday, March 8, 2027",
        "Reminder: session with Linda at 9:00 AM",
        "How did your session with Linda go?",
    ]
