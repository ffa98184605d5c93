"""Delivering due emails to a real SMTP server: each once, each refusal leading where it should,
and a sender that dies mid-send never sending the message a second time by itself."""

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import uuid4

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import REGISTRY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from crossgen_local.processes import free_port
from crossgen_local.smtp import SmtpSink
from crossgen_notifications import delivery_log
from crossgen_notifications.app import build
from crossgen_notifications.channels import Outgoing
from crossgen_notifications.scheduling import delivery as delivery_module
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.settings import NotificationsSettings
from crossgen_notifications.testing import START, Clock, SlowSmtp, emitted, notifications_of
from crossgen_shared.events import (
    MatchProposed,
    NotificationFailed,
    NotificationSent,
    ParticipantJoined,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox_records, publish_event

MakeDelivery = Callable[..., Delivery]
EMAIL_RETRIES = (
    "crossgen_notifications_deliveries_total",
    {"channel": "email", "outcome": "retry"},
)


class RefuseEveryRecipient:
    async def handle_RCPT(self, *_: Any) -> str:
        return "550 5.1.1 No such mailbox"


@pytest.fixture
def refusing_smtp_port() -> Iterator[int]:
    controller = Controller(
        RefuseEveryRecipient(), hostname="127.0.0.1", port=free_port(), server_hostname="refuser"
    )
    controller.start()
    yield controller.port
    controller.stop()


async def test_each_due_email_is_sent_once_with_its_message_id_and_unsubscribe_headers(
    notifications: Service, delivery: MakeDelivery, smtp: SmtpSink, proposed: str
) -> None:
    mailer = delivery()
    assert await mailer.deliver_due() == 2
    assert await mailer.deliver_due() == 0

    rows = await notifications_of(notifications)
    mails = sorted(smtp.messages, key=lambda m: m.rcpt_tos)
    assert [m.rcpt_tos for m in mails] == [["linda@example.com"], ["max@example.com"]]
    assert [m.message["Message-ID"] for m in mails] == [f"<{n.id}@crossgen>" for n in rows]
    mail = mails[0].message
    assert mail["Subject"] == "You have a proposed match: Max"
    assert mail["From"] == "Crossgen <no-reply@crossgen.example>"
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://crossgen.example/notifications/unsubscribe?token=")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and "mentor teaches ai tools" in text.get_content()
    assert unsubscribe[1:-1] in text.get_content()
    assert html is not None and "<li>mentor teaches ai tools</li>" in html.get_content()
    assert [(n.status, n.attempts, n.sent_at) for n in rows] == [("sent", 1, START)] * 2

    events = await emitted(notifications)
    assert all(isinstance(e, NotificationSent) for e in events)
    assert sorted((e.notification_id, e.recipient_id, e.template) for e in events) == sorted(
        (n.id, n.recipient_id, "match-proposed") for n in rows
    )
    assert {e.source_event_id for e in events} == {proposed}


async def test_a_session_email_carries_its_calendar_invite(
    broker: KafkaBroker,
    both_known: None,
    proposal: MatchProposed,
    delivery: MakeDelivery,
    smtp: SmtpSink,
) -> None:
    from crossgen_shared.events import SessionScheduled

    await publish_event(
        broker,
        SessionScheduled(
            **proposal.model_dump(include={"pairing_id", "program_id", "learner_id", "mentor_id"}),
            session_id=proposal.pairing_id,
            starts_at=START + timedelta(days=7),
            duration_minutes=45,
        ),
    )
    assert await delivery().deliver_due() == 2  # now: the invites; reminders come later

    mail = next(m.message for m in smtp.messages if m.rcpt_tos == ["linda@example.com"])
    assert mail.get_content_type() == "multipart/mixed"
    calendar = mail.get_body(("calendar",))
    assert calendar is not None and calendar.get_param("method") == "REQUEST"
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "invite.ics"
    assert b"SEQUENCE:0" in attachment.get_content()


async def test_one_claim_sends_its_messages_at_once_and_records_each_outcome(
    notifications: Service, delivery: MakeDelivery, smtp: SmtpSink, proposed: str
) -> None:
    smtp.fail_next(1, code=550)  # one of the two is refused for good, the other arrives
    mailer = delivery(delivery_batch=2)
    assert await mailer.deliver_next() == 2  # both in one claim
    assert await mailer.deliver_next() == 0

    rows = await notifications_of(notifications)
    assert sorted((n.status, n.attempts) for n in rows) == [("failed", 1), ("sent", 1)]
    [sent] = [n for n in rows if n.status == "sent"]
    assert [m.message["Message-ID"] for m in smtp.messages] == [f"<{sent.id}@crossgen>"]
    events = await emitted(notifications)
    assert sorted(type(e).__name__ for e in events) == ["NotificationFailed", "NotificationSent"]


class AdminShutdown(Exception):
    sqlstate = "57P01"  # what asyncpg raises when PostgreSQL is stopped under a connection


async def test_outcomes_the_database_cannot_take_yet_are_recorded_once_it_can(
    notifications: Service,
    delivery: MakeDelivery,
    smtp: SmtpSink,
    proposed: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailer = delivery(delivery_batch=2)
    record = mailer._record
    troubles = iter(
        [PoolTimeout("every connection busy"), DBAPIError("update", {}, AdminShutdown())]
    )

    async def after_troubles(outcomes: Any) -> None:
        if (trouble := next(troubles, None)) is not None:
            raise trouble
        await record(outcomes)

    monkeypatch.setattr(mailer, "_record", after_troubles)
    assert await mailer.deliver_next() == 2
    # Sent once, and recorded as sent: not left "sending", which would make them unconfirmed.
    assert len(smtp.messages) == 2
    assert [(n.status, n.attempts) for n in await notifications_of(notifications)] == [
        ("sent", 1)
    ] * 2


async def test_a_claim_s_emails_take_turns_on_the_smtp_connections(
    delivery: MakeDelivery, smtp: SmtpSink, proposed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[aiosmtplib.SMTP] = []
    connect = aiosmtplib.SMTP.connect

    async def counted(client: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        opened.append(client)
        return await connect(client, *args, **kwargs)

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", counted)
    assert await delivery(delivery_batch=2, smtp_connections=1).deliver_next() == 2
    assert len(smtp.messages) == 2 and len(opened) == 1  # the second waited for the first's
    assert await delivery(delivery_batch=2, smtp_connections=2).deliver_next() == 0


async def test_a_refused_recipient_fails_for_good(
    notifications: Service, delivery: MakeDelivery, refusing_smtp_port: int, proposed: str
) -> None:
    mailer = delivery(smtp_port=refusing_smtp_port)
    assert await mailer.deliver_due() == 2
    assert await mailer.deliver_due() == 0  # nothing left to retry

    rows = await notifications_of(notifications)
    assert [(n.status, n.attempts) for n in rows] == [("failed", 1)] * 2
    assert all("550 5.1.1 No such mailbox" in (n.last_error or "") for n in rows)
    events = await emitted(notifications)
    assert [type(e) for e in events] == [NotificationFailed] * 2
    assert all(isinstance(e, NotificationFailed) and "550" in e.reason for e in events)


CAUSE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("refused", [False, True], ids=["sent", "failed"])
async def test_sending_a_message_and_the_event_saying_so_continue_the_trace_of_its_cause(
    notifications: Service,
    broker: KafkaBroker,
    both_known: None,
    proposal: MatchProposed,
    delivery: MakeDelivery,
    refusing_smtp_port: int,
    refused: bool,
) -> None:
    """The message is sent later, by another loop: the trace goes with it in its row."""
    cause = f"00-{CAUSE_TRACE}-00f067aa0ba902b7-01"
    await publish_event(broker, proposal, traceparent=cause)
    mailer = delivery(smtp_port=refusing_smtp_port) if refused else delivery()
    assert await mailer.deliver_due() == 2

    said = [r.headers for r in await outbox_records(notifications.sessions)]
    told = NotificationFailed if refused else NotificationSent
    assert [h["ce_type"] for h in said] == [told.event_type()] * 2
    assert [h["traceparent"].split("-")[1] for h in said] == [CAUSE_TRACE] * 2


async def test_a_temporary_refusal_is_retried_after_a_backoff_with_jitter(
    notifications: Service, delivery: MakeDelivery, smtp: SmtpSink, clock: Clock, proposed: str
) -> None:
    smtp.fail_next(2, code=451)
    mailer = delivery(delivery_retry_delay=60.0)
    retries = REGISTRY.get_sample_value(*EMAIL_RETRIES) or 0
    assert await mailer.deliver_due() == 2
    assert REGISTRY.get_sample_value(*EMAIL_RETRIES) == retries + 2  # counted, for the dashboards

    rows = await notifications_of(notifications)
    assert [(n.status, n.attempts) for n in rows] == [("pending", 1)] * 2
    # Equal jitter: somewhere in the second half of the delay, so retries spread out.
    assert all(
        START + timedelta(seconds=30) <= n.next_attempt_at <= START + timedelta(seconds=60)
        for n in rows
    )
    assert all((n.last_error or "").startswith("451") for n in rows)
    assert await emitted(notifications) == []
    assert await mailer.deliver_due() == 0  # not due yet

    clock.advance(seconds=60)
    assert await mailer.deliver_due() == 2
    assert len(smtp.messages) == 2
    assert [(n.status, n.attempts) for n in await notifications_of(notifications)] == [
        ("sent", 2)
    ] * 2


async def test_emails_wait_for_an_unreachable_relay_and_go_once_it_answers(
    notifications: Service, delivery: MakeDelivery, smtp: SmtpSink, clock: Clock, proposed: str
) -> None:
    smtp.stop()
    mailer = delivery(delivery_max_attempts=1, smtp_probe_interval=5.0)
    assert await mailer.deliver_due() == 2  # tried, and the relay refused the connections

    rows = await notifications_of(notifications)
    # Waiting, not failed, although one attempt was all they had: none of them was tried.
    assert [(n.status, n.attempts) for n in rows] == [("pending", 0)] * 2
    assert all("SMTPConnectError" in (n.last_error or "") for n in rows)
    assert REGISTRY.get_sample_value("crossgen_notifications_smtp_relay_up") == 0
    assert await mailer.deliver_due() == 0  # not claimed again while the relay is down

    smtp.start()
    assert await mailer.deliver_due() == 0  # the relay is asked again once a probe interval
    clock.advance(seconds=5)
    assert await mailer.deliver_due() == 2
    assert len(smtp.messages) == 2
    assert REGISTRY.get_sample_value("crossgen_notifications_smtp_relay_up") == 1
    rows = await notifications_of(notifications)
    assert [(n.status, n.attempts, n.last_error) for n in rows] == [("sent", 1, None)] * 2
    assert [type(e) for e in await emitted(notifications)] == [NotificationSent] * 2


async def test_a_relay_that_does_not_answer_is_waited_for_like_one_that_refuses(
    notifications: Service, delivery: MakeDelivery, proposed: str
) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=0) as silent:  # accepts, never greets
        mailer = delivery(smtp_port=silent.getsockname()[1], smtp_timeout=0.4)
        assert await mailer.deliver_due() == 2

    rows = await notifications_of(notifications)
    assert [(n.status, n.attempts) for n in rows] == [("pending", 0)] * 2
    assert [n.last_error for n in rows] == ["no answer within 0.2 s"] * 2  # half the timeout


async def test_two_workers_share_the_due_messages_and_send_each_once(
    broker: KafkaBroker,
    notifications: Service,
    both_known: None,
    proposal: MatchProposed,
    delivery: MakeDelivery,
    smtp: SmtpSink,
) -> None:
    for _ in range(10):  # ten events: twenty due emails
        await publish_event(broker, proposal)
    # Claims smaller than what is due, so that the second finds some left.
    first, second = delivery(delivery_batch=8), delivery(delivery_batch=8)
    counts = await asyncio.gather(first.deliver_due(), second.deliver_due())

    assert sum(counts) == 20 and min(counts) > 0, counts  # both worked, neither twice
    ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    assert len(ids) == 20 and set(ids.values()) == {1}
    rows = await notifications_of(notifications)
    assert {(n.status, n.attempts) for n in rows} == {("sent", 1)}


class Crash(BaseException):
    """The process dies: nothing after this line runs."""


class DyingChannel:
    """Delivers to the SMTP sink, then the process dies before it can record that."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def send(self, message: Outgoing) -> None:
        await self._inner.send(message)
        raise Crash


async def test_a_message_its_sender_died_sending_is_marked_unconfirmed_not_sent_again(
    notifications: Service,
    settings: NotificationsSettings,
    delivery: MakeDelivery,
    smtp: SmtpSink,
    clock: Clock,
    proposed: str,
) -> None:
    from crossgen_notifications.channels.email import EmailChannel

    # One message a claim: the other is still due when this sender dies.
    mail_settings = settings.model_copy(update={"smtp_port": smtp.port, "delivery_batch": 1})
    dying = Delivery(
        notifications.unit_of_work,
        mail_settings,
        clock=clock,
        channels={"email": DyingChannel(EmailChannel(mail_settings))},
    )
    with pytest.raises(Crash):
        await dying.deliver_next()
    [claimed] = await notifications_of(notifications, status="sending")
    assert len(smtp.messages) == 1  # it did arrive

    survivor = delivery()
    assert await survivor.deliver_due() == 1  # the other one; the claimed one is left alone
    clock.advance(seconds=settings.sending_timeout - 1)
    assert await survivor.expire_unconfirmed() == 0  # could still be a slow send in progress
    clock.advance(seconds=2)
    assert await survivor.expire_unconfirmed() == 1
    assert await survivor.deliver_due() == 0
    [unconfirmed] = await notifications_of(notifications, status="unconfirmed")
    assert unconfirmed.id == claimed.id and "maybe delivered" in (unconfirmed.last_error or "")
    assert len(smtp.messages) == 2  # never sent twice by itself
    assert not any(e.notification_id == claimed.id for e in await emitted(notifications))

    # After review, an admin resends it: same Message-ID, so a receiver can recognise it.
    async with notifications.unit_of_work() as uow:
        await delivery_log.resend(uow, claimed.id)
        await uow.commit()
    assert await survivor.deliver_due() == 1
    ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    assert ids[f"<{claimed.id}@crossgen>"] == 2


async def test_a_send_that_ends_after_an_admin_resent_its_message_leaves_it_to_them(
    notifications: Service,
    settings: NotificationsSettings,
    delivery: MakeDelivery,
    clock: Clock,
    proposed: str,
) -> None:
    """A send slower than ``sending_timeout``: the message is declared unconfirmed and an admin
    resends it before the first send's 250 comes. That late success is not recorded over the
    admin's decision: the message stays queued for its resend, and no sent event is told."""
    with SlowSmtp(free_port(), delay=1.0) as slow:
        slow_settings = {"smtp_port": slow.port, "delivery_batch": 1}
        sending = asyncio.create_task(delivery(**slow_settings).deliver_next())
        await asyncio.to_thread(slow.storing.wait, 10)
        [claimed] = await notifications_of(notifications, status="sending")
        clock.advance(seconds=settings.sending_timeout + 1)
        assert await delivery().expire_unconfirmed() == 1
        async with notifications.unit_of_work() as uow:
            await delivery_log.resend(uow, claimed.id)
            await uow.commit()
        assert await sending == 1
    [resent] = [n for n in await notifications_of(notifications) if n.id == claimed.id]
    assert (resent.status, resent.attempt_id) == ("pending", None)
    assert not any(e.notification_id == claimed.id for e in await emitted(notifications))


async def test_shutdown_waits_for_the_message_in_flight_and_records_it(
    settings: NotificationsSettings, notifications: Service, clock: Clock, proposed: str
) -> None:
    with SlowSmtp(free_port(), delay=1.0) as slow:
        service = build(
            settings.model_copy(
                update={"smtp_port": slow.port, "delivery_concurrency": 1, "delivery_batch": 1}
            ),
            clock,
        )
        _, worker = service.workers  # the retention sweep, the delivery
        task = asyncio.create_task(worker())
        try:
            await asyncio.to_thread(slow.storing.wait, 10)
            task.cancel()  # mid-send: the server has the message, we await its reply
            stopped, _ = await asyncio.wait([task], timeout=10)
        finally:
            await service.engine.dispose()
    assert task in stopped, "a cancelled worker must stop, or shutdown hangs"
    statuses = Counter(n.status for n in await notifications_of(notifications))
    assert statuses == {"sent": 1, "pending": 1}  # none left "sending"


async def test_the_service_worker_delivers_in_the_background(
    settings: NotificationsSettings,
    smtp: SmtpSink,
    notifications: Service,
    clock: Clock,
    proposed: str,
) -> None:
    service = build(settings.model_copy(update={"smtp_port": smtp.port}), clock)
    _, worker = service.workers  # the retention sweep, the delivery
    task = asyncio.create_task(worker())
    try:
        mails = await asyncio.to_thread(smtp.wait_for, 2)
    finally:
        task.cancel()
        stopped, _ = await asyncio.wait([task], timeout=5)
        await service.engine.dispose()
    assert len(mails) == 2
    assert task in stopped, "a cancelled worker must stop, or shutdown hangs"


async def test_a_message_due_now_wakes_the_idle_delivery_loops_once_committed(
    settings: NotificationsSettings,
    smtp: SmtpSink,
    notifications: Service,
    clock: Clock,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Idle loops would next look in 60 s: only the wake-up can bring the mails sooner.
    monkeypatch.setattr(delivery_module, "IDLE_BACKOFF_START", 60.0)
    changed = {"smtp_port": smtp.port, "delivery_poll_interval": 60.0}
    service = build(settings.model_copy(update=changed), clock)
    _, worker = service.workers  # the retention sweep, the delivery
    task = asyncio.create_task(worker())
    try:
        await asyncio.sleep(0.5)  # every loop has looked once, found nothing, and waits
        async with TestKafkaBroker(service.broker) as broker:
            for event in (learner, mentor, proposal):
                await publish_event(broker, event)
        mails = await asyncio.to_thread(smtp.wait_for, 2, 20.0)
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)
        await service.engine.dispose()
    assert len(mails) == 2


@asynccontextmanager
async def loops_looking(
    settings: NotificationsSettings,
    monkeypatch: pytest.MonkeyPatch,
    claims: Iterable[int] = (),
    **changed: Any,
) -> AsyncIterator[tuple[Delivery, list[int]]]:
    """Running delivery loops without a database: each look takes the next of ``claims`` (then
    nothing) and is listed. Idle loops would next look in 60 s, so a look within a test comes at
    once or by a wake-up."""
    monkeypatch.setattr(delivery_module, "IDLE_BACKOFF_START", 60.0)
    changed = {"delivery_poll_interval": 60.0, **changed}
    delivery = Delivery(
        lambda: pytest.fail("no database here"), settings.model_copy(update=changed)
    )
    taken = iter(claims)
    looks: list[int] = []

    async def deliver_next() -> int:
        looks.append(next(taken, 0))
        return looks[-1]

    monkeypatch.setattr(delivery, "deliver_next", deliver_next)
    running = asyncio.create_task(delivery.run())
    try:
        yield delivery, looks
    finally:
        running.cancel()
        await asyncio.wait([running], timeout=5)


async def test_a_loop_looks_again_at_once_only_after_a_full_claim(
    settings: NotificationsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full claim, then one that took all that was due.
    one_loop = {"delivery_batch": 2, "delivery_concurrency": 1}
    async with loops_looking(settings, monkeypatch, [2, 1], **one_loop) as (delivery, looks):
        await asyncio.sleep(0.3)
        assert looks == [2, 1], "after a full claim at once; after a partial one, no empty look"
        delivery.wake()  # a message was queued
        await asyncio.sleep(0.3)
        assert looks == [2, 1, 0]


async def test_a_message_queued_wakes_one_idle_loop_not_all(
    settings: NotificationsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_loops = {"delivery_concurrency": 2}
    async with loops_looking(settings, monkeypatch, **two_loops) as (delivery, looks):
        await asyncio.sleep(0.3)
        assert len(looks) == 2  # each loop looked once at its start, and waits
        delivery.wake()
        await asyncio.sleep(0.3)
        assert len(looks) == 3, "the second loop would only find the message taken"
        delivery.wake()
        delivery.wake()  # twice before any loop looked: one look covers both
        await asyncio.sleep(0.3)
        assert len(looks) == 4


async def test_an_address_beyond_ascii_is_sent_with_smtputf8_and_written_as_utf8(
    settings: NotificationsSettings, smtp: SmtpSink
) -> None:
    from crossgen_notifications.channels.email import EmailChannel

    channel = EmailChannel(settings.model_copy(update={"smtp_port": smtp.port}))
    to = "jürgen@bücher.example"
    message = Outgoing(
        uuid4(), "email", to, "t", "e", "t", uuid4(), "p", "Hallo", "Text", None, (), START
    )
    try:
        await channel.send(message)
    finally:
        await channel.aclose()
    [mail] = smtp.messages
    assert mail.rcpt_tos == [to]
    # In the header as UTF-8 itself: an encoded word (=?utf-8?...) is no address.
    assert f"\r\nTo: {to}\r\n".encode() in mail.raw
