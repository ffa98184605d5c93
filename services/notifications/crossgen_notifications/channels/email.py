"""Email over SMTP: plain text and HTML alternatives, calendar invites, one-click unsubscribe."""

import email.utils
import ssl
import time
from email.message import EmailMessage

import aiosmtplib
from icalendar import Calendar

from crossgen_notifications.channels import DeliveryError, Outgoing
from crossgen_notifications.settings import NotificationsSettings

# A connection idle longer than this is not reused: servers may drop idle clients after a while
# (RFC 5321 asks them to wait 5 minutes; some do not), and a dropped one would cost a retry.
REUSE_WITHIN = 10.0


def message_id(message: Outgoing) -> str:
    """Stable per notification: a resent message is recognisably the same one."""
    return f"<{message.notification_id}@crossgen>"


class EmailChannel:
    """Keeps the connections it opened, one per message in flight, and sends the next messages
    over them: connecting, TLS, EHLO and login per message cost more than the message itself."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._tls = (
            ssl.create_default_context(cadata=settings.smtp_tls_ca)
            if settings.smtp_tls_ca
            else None
        )
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # with when each was last used

    async def send(self, message: Outgoing) -> None:
        mail = self.compose(message)
        client = await self._connection()
        try:
            await client.send_message(mail)
        except aiosmtplib.SMTPException as exc:
            client.close()  # in an unknown state after a refusal or a drop: never reused
            raise DeliveryError(_describe(exc), permanent=_permanent(exc)) from exc
        except BaseException:  # a timeout's cancellation too, possibly mid-command
            client.close()
            raise
        self._idle.append((client, time.monotonic()))

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, used = self._idle.pop()
            if client.is_connected and time.monotonic() - used < REUSE_WITHIN:
                return client
            client.close()
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            use_tls=settings.smtp_implicit_tls,
            start_tls=settings.smtp_starttls,
            tls_context=self._tls,
            timeout=settings.smtp_timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPException as exc:
            raise DeliveryError(_describe(exc), permanent=_permanent(exc)) from exc
        return client

    def compose(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._settings.smtp_sender
        mail["To"] = message.to_address
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.format_datetime(message.created_at)
        mail["Message-ID"] = message_id(message)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to us
        if message.unsubscribe_url:
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs here.
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.text)
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html")
        if len(message.calendars) == 1:
            # Outlook acts on the text/calendar alternative; others on the attached file.
            [invite] = message.calendars
            mail.add_alternative(invite, subtype="calendar", params={"method": _method(invite)})
        for number, invite in enumerate(message.calendars, start=1):
            name = "invite.ics" if len(message.calendars) == 1 else f"invite-{number}.ics"
            mail.add_attachment(
                invite.encode(),
                maintype="application",
                subtype="ics",
                filename=name,
                params={"method": _method(invite)},
            )
        return mail


def _method(invite: str) -> str:
    return str(Calendar.from_ical(invite)["METHOD"])


def _permanent(exc: aiosmtplib.SMTPException) -> bool:
    """A 5xx refusal of the recipient or of the message: sending it again cannot succeed.

    Anything else (4xx, connection refused, timeouts, and 5xx to our own login or sender, which is
    our misconfiguration) is retried, so fixing the cause loses nothing.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError) and (
        exc.code >= 500
    )


def _describe(exc: aiosmtplib.SMTPException) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"
