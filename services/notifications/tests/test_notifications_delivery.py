"""Delivering pending emails to a real SMTP server, and what each kind of refusal leads to."""

import asyncio
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from crossgen_local.smtp import SmtpSink
from crossgen_notifications.app import build
from crossgen_notifications.delivery import EmailDelivery
from crossgen_notifications.models import Notification
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared.db import utcnow
from crossgen_shared.events import NotificationFailed, NotificationSent
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


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


def delivery(
    notifications: Service, settings: NotificationsSettings, port: int, **overrides: Any
) -> EmailDelivery:
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout": 5.0}
    return EmailDelivery(notifications.unit_of_work, settings.model_copy(update=smtp | overrides))


async def notifications_of(notifications: Service) -> list[Notification]:
    async with notifications.sessions() as session:
        return list(await session.scalars(select(Notification).order_by(Notification.to_address)))


async def emitted(notifications: Service) -> list[Any]:
    return [
        e.event
        for e in await outbox(notifications.sessions)
        if isinstance(e.event, NotificationSent | NotificationFailed)
    ]


async def test_each_pending_email_is_sent_once_with_its_message_id(
    notifications: Service, settings: NotificationsSettings, smtp: SmtpSink, proposed: str
) -> None:
    mailer = delivery(notifications, settings, smtp.port)
    assert await mailer.deliver_pending() == 2
    assert await mailer.deliver_pending() == 0

    rows = await notifications_of(notifications)
    mails = sorted(smtp.messages, key=lambda m: m.rcpt_tos)
    assert [m.rcpt_tos for m in mails] == [["linda@example.com"], ["max@example.com"]]
    assert [m.message["Message-ID"] for m in mails] == [f"<{n.id}@crossgen>" for n in rows]
    assert mails[0].message["Subject"] == "You have a proposed match: Max"
    assert mails[0].message["From"] == "Crossgen <no-reply@crossgen.example>"
    assert "mentor teaches ai tools" in mails[0].message.get_content()
    assert [(n.status, n.attempts, n.sent_at is not None) for n in rows] == [("sent", 1, True)] * 2

    events = await emitted(notifications)
    assert all(isinstance(e, NotificationSent) for e in events)
    assert sorted((e.notification_id, e.recipient_id, e.template) for e in events) == sorted(
        (n.id, n.recipient_id, "match-proposed") for n in rows
    )
    assert {e.source_event_id for e in events} == {proposed}


async def test_a_refused_recipient_fails_for_good(
    notifications: Service, settings: NotificationsSettings, refusing_smtp_port: int, proposed: str
) -> None:
    mailer = delivery(notifications, settings, refusing_smtp_port)
    assert await mailer.deliver_pending() == 2
    assert await mailer.deliver_pending() == 0  # nothing left to retry

    rows = await notifications_of(notifications)
    assert [(n.status, n.attempts) for n in rows] == [("failed", 1)] * 2
    assert all("550 5.1.1 No such mailbox" in (n.last_error or "") for n in rows)
    events = await emitted(notifications)
    assert [type(e) for e in events] == [NotificationFailed] * 2
    assert all("550" in e.reason for e in events)


async def test_a_temporary_refusal_is_retried_after_a_backoff(
    notifications: Service, settings: NotificationsSettings, smtp: SmtpSink, proposed: str
) -> None:
    smtp.fail_next(2, code=451)
    mailer = delivery(notifications, settings, smtp.port, delivery_retry_delay=60.0)
    assert await mailer.deliver_pending() == 2

    rows = await notifications_of(notifications)
    assert [(n.status, n.attempts) for n in rows] == [("pending", 1)] * 2
    assert all(n.next_attempt_at > utcnow() + timedelta(seconds=50) for n in rows)
    assert all((n.last_error or "").startswith("451") for n in rows)
    assert await emitted(notifications) == []
    assert await mailer.deliver_pending() == 0  # not due yet

    async with notifications.sessions() as session, session.begin():
        await session.execute(update(Notification).values(next_attempt_at=utcnow()))
    assert await mailer.deliver_pending() == 2
    assert len(smtp.messages) == 2
    assert [(n.status, n.attempts) for n in await notifications_of(notifications)] == [
        ("sent", 2)
    ] * 2


async def test_an_unreachable_server_is_retried_then_the_email_fails(
    notifications: Service, settings: NotificationsSettings, proposed: str
) -> None:
    mailer = delivery(
        notifications, settings, free_port(), delivery_max_attempts=2, delivery_retry_delay=0.0
    )
    assert await mailer.deliver_pending() == 2
    assert [(n.status, n.attempts) for n in await notifications_of(notifications)] == [
        ("pending", 1)
    ] * 2
    assert await mailer.deliver_pending() == 2

    rows = await notifications_of(notifications)
    assert [(n.status, n.attempts) for n in rows] == [("failed", 2)] * 2
    events = await emitted(notifications)
    assert [type(e) for e in events] == [NotificationFailed] * 2
    assert all("SMTPConnectError" in e.reason for e in events)


async def test_the_service_worker_delivers_in_the_background(
    settings: NotificationsSettings, smtp: SmtpSink, notifications: Service, proposed: str
) -> None:
    service = build(settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port}))
    [worker] = service.workers
    task = asyncio.create_task(worker())
    try:
        mails = await asyncio.to_thread(smtp.wait_for, 2)
    finally:
        task.cancel()
        stopped, _ = await asyncio.wait([task], timeout=5)
        await service.engine.dispose()
    assert len(mails) == 2
    assert task in stopped, "a cancelled worker must stop, or shutdown hangs"
