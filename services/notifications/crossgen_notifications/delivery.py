"""Email delivery: a worker that sends pending notifications over SMTP and records each outcome.

Due rows are claimed with FOR UPDATE SKIP LOCKED, so replicas share the work without sending a row
twice. Sending and recording the outcome share one transaction: a crash in between sends the same
message again, with the same Message-ID, so the receiving side can recognise it. Never lost, and
never sent twice to a system that deduplicates on Message-ID.
"""

import asyncio
import email.utils
import logging
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
from prometheus_client import Counter
from sqlalchemy import select

from crossgen_notifications.models import Notification
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared.db import utcnow
from crossgen_shared.events import NotificationFailed, NotificationSent
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "crossgen_notifications_deliveries_total", "Delivery attempts", ["channel", "outcome"]
)


class EmailDelivery:
    def __init__(
        self, unit_of_work: Callable[[], UnitOfWork], settings: NotificationsSettings
    ) -> None:
        self._unit_of_work = unit_of_work
        self._settings = settings

    async def run(self) -> None:
        """Deliver until cancelled; a database outage pauses delivery, it does not end it."""
        failures = 0
        while True:
            # Python 3.11's asyncio.wait_for (inside aiosmtplib) can swallow a cancellation that
            # races with a server reply; without this check shutdown would wait forever.
            if (task := asyncio.current_task()) is not None and task.cancelling():
                raise asyncio.CancelledError
            try:
                delivered = await self.deliver_pending()
                failures = 0
            except Exception:
                failures += 1
                log.exception("email delivery failed; retrying")
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
                continue
            if delivered < self._settings.delivery_batch_size:
                await asyncio.sleep(self._settings.delivery_poll_interval)

    async def deliver_pending(self) -> int:
        """Try one batch of due notifications; returns how many were tried."""
        async with self._unit_of_work() as uow:
            due = (
                await uow.session.scalars(
                    select(Notification)
                    .where(
                        Notification.status == "pending", Notification.next_attempt_at <= utcnow()
                    )
                    .order_by(Notification.next_attempt_at)
                    .limit(self._settings.delivery_batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for notification in due:
                await self._deliver(uow, notification)
            await uow.commit()
        return len(due)

    async def _deliver(self, uow: UnitOfWork, notification: Notification) -> None:
        settings = self._settings
        try:
            await aiosmtplib.send(
                self._email(notification),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value()
                if settings.smtp_password
                else None,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout,
            )
        except Exception as exc:
            await self._attempt_failed(uow, notification, exc)
            return
        notification.attempts += 1
        notification.status = "sent"
        notification.sent_at = utcnow()
        notification.last_error = None
        await uow.emit(
            NotificationSent(
                notification_id=notification.id,
                recipient_id=notification.recipient_id,
                channel="email",
                template=notification.template,
                source_event_id=notification.source_event_id,
                sent_at=notification.sent_at,
            )
        )
        DELIVERIES.labels("email", "sent").inc()

    async def _attempt_failed(
        self, uow: UnitOfWork, notification: Notification, exc: Exception
    ) -> None:
        settings = self._settings
        notification.attempts += 1
        notification.last_error = reason = _describe(exc)
        if _permanent(exc) or notification.attempts >= settings.delivery_max_attempts:
            log.warning("email %s failed for good: %s", notification.id, reason)
            notification.status = "failed"
            await uow.emit(
                NotificationFailed(
                    notification_id=notification.id,
                    recipient_id=notification.recipient_id,
                    channel="email",
                    template=notification.template,
                    source_event_id=notification.source_event_id,
                    reason=reason,
                    failed_at=utcnow(),
                )
            )
            DELIVERIES.labels("email", "failed").inc()
            return
        delay = min(
            settings.delivery_retry_delay * 2 ** (notification.attempts - 1),
            settings.delivery_retry_max_delay,
        )
        log.info("email %s attempt %d failed: %s", notification.id, notification.attempts, reason)
        notification.next_attempt_at = utcnow() + timedelta(seconds=delay)
        DELIVERIES.labels("email", "retry").inc()

    def _email(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.smtp_sender
        message["To"] = notification.to_address
        message["Subject"] = notification.subject
        message["Date"] = email.utils.format_datetime(notification.created_at)
        message["Message-ID"] = f"<{notification.id}@crossgen>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to us
        message.set_content(notification.body)
        return message


def _permanent(exc: Exception) -> bool:
    """A 5xx refusal of the recipient or of the message: sending it again cannot succeed.

    Anything else (4xx, connection refused, timeouts, and 5xx to our own login or sender, which is
    our misconfiguration) is retried, so fixing the cause loses nothing.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError) and (
        exc.code >= 500
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"
