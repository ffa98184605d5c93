"""Helpers for this service's tests: a clock they set, and what the service stored and emitted."""

import asyncio
import email
import email.policy
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from crossgen_notifications.models import Notification
from crossgen_shared.events import NotificationFailed, NotificationSent
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # a Monday


@dataclass
class Clock:
    """The time as the service under test sees it; tests move it on."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


async def notifications_of(service: Service, **where: Any) -> list[Notification]:
    """Every notification row (optionally filtered by column values), by address, template, time."""
    async with service.sessions() as session:
        order = (
            Notification.to_address,
            Notification.template,
            Notification.channel,
            Notification.next_attempt_at,
        )
        return list(await session.scalars(select(Notification).filter_by(**where).order_by(*order)))


async def emitted(service: Service) -> list[NotificationSent | NotificationFailed]:
    """The notification-sent and -failed events in the service's outbox, in order."""
    return [
        e.event
        for e in await outbox(service.sessions)
        if isinstance(e.event, NotificationSent | NotificationFailed)
    ]


class SlowSmtp:
    """An SMTP server that stores each message, then waits ``delay`` seconds before saying so:
    a sender stopped meanwhile has delivered a message without knowing it."""

    def __init__(self, port: int, delay: float) -> None:
        self.delay = delay
        self.received: list[EmailMessage] = []
        self.storing = threading.Event()  # set while a stored message waits for its 250 reply
        self._lock = threading.Lock()
        self._controller = Controller(
            self, hostname="127.0.0.1", port=port, server_hostname="slow-smtp"
        )

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def message_ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.received]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # policy.default always builds EmailMessage
        with self._lock:
            self.received.append(message)
        self.storing.set()
        await asyncio.sleep(self.delay)
        self.storing.clear()
        return "250 OK"

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
