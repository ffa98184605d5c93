"""Email over SMTP: plain text and HTML alternatives, calendar invites, one-click unsubscribe.

Messages are made of the MIME classes of the compat32 API: the newer EmailMessage parses every
header it is given, which made composing the costliest step of sending a message.
"""

import asyncio
import binascii
import email.policy
import email.utils
import ssl
import time
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from typing import Any

import aiosmtplib
from icalendar import Calendar

from crossgen_notifications.channels import DeliveryError, Outgoing
from crossgen_notifications.settings import NotificationsSettings

# A connection idle longer than this is not reused: servers may drop idle clients after a while
# (RFC 5321 asks them to wait 5 minutes; some do not), and a dropped one would cost a retry.
REUSE_WITHIN = 10.0


class _Wire(email.policy.Compat32):
    """compat32 for SMTP: CRLF, and lines up to 998, so a long URL in List-Unsubscribe stays on
    its line rather than being pushed onto a continuation line. Headers are folded here (the
    Subject's encoded words at 76); one that needs no folding or encoding is written as it is.
    compat32 runs every value through ``Header``, which returns such a value unchanged; with the
    boundaries ``compose`` sets, writing a message out takes half the time it took."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and "\r" not in value
            and "\n" not in value
            and len(name) + len(value) + 2 <= (self.max_line_length or 78)
        ):
            return f"{name}: {value}{self.linesep}".encode()
        return super().fold_binary(name, value)


WIRE = _Wire(linesep="\r\n", max_line_length=998)


class RelayUnavailable(DeliveryError):
    """No session with the SMTP relay: it is down, does not answer, or refuses us (its greeting,
    TLS or our login). The message itself was never tried, and no other email can go either."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=False)


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
        name, self._sender = email.utils.parseaddr(settings.smtp_sender)
        self._from = email.utils.formataddr((name, self._sender), charset="utf-8")

    async def send(self, message: Outgoing) -> None:
        raw = self.compose(message).as_bytes(policy=WIRE)
        # An address beyond ASCII needs the server's SMTPUTF8 (RFC 6531).
        options = [] if message.to_address.isascii() else ["SMTPUTF8"]
        client = await self._connection()
        try:
            await client.sendmail(self._sender, [message.to_address], raw, mail_options=options)
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
            # Within half the send's timeout, so a relay that does not answer at all is told
            # apart from a message that takes too long.
            async with asyncio.timeout(settings.smtp_timeout / 2):
                await client.connect()
        except aiosmtplib.SMTPException as exc:
            raise RelayUnavailable(_describe(exc)) from exc
        except TimeoutError as exc:
            raise RelayUnavailable(f"no answer within {settings.smtp_timeout / 2:g} s") from exc
        return client

    async def probe(self) -> None:
        """Open a session with the relay (kept for the next email); RelayUnavailable if none."""
        self._idle.append((await self._connection(), time.monotonic()))

    def compose(self, message: Outgoing) -> Message:
        parts = [_text(message.text, "plain")]
        if message.html is not None:
            parts.append(_text(message.html, "html"))
        methods = [_method(invite) for invite in message.calendars]  # each parsed once
        if len(message.calendars) == 1:
            # Outlook acts on the text/calendar alternative; others on the attached file.
            parts.append(_text(message.calendars[0], "calendar"))
            parts[-1].set_param("method", methods[0])
        # Boundaries of our own: "=_" never occurs in a quoted-printable or base64 body, so
        # there is no need to make one at random and search every part for it.
        boundary = f"=_{message.notification_id.hex}"
        mail = (
            parts[0]
            if len(parts) == 1
            else MIMEMultipart("alternative", boundary=f"{boundary}_a", _subparts=parts)
        )
        if message.calendars:
            attachments = []
            for number, (invite, method) in enumerate(
                zip(message.calendars, methods, strict=True), start=1
            ):
                name = "invite.ics" if len(message.calendars) == 1 else f"invite-{number}.ics"
                attachment = MIMEApplication(invite.encode(), "ics")
                attachment.set_param("method", method)
                attachment.add_header("Content-Disposition", "attachment", filename=name)
                attachments.append(attachment)
            mail = MIMEMultipart("mixed", boundary=f"{boundary}_m", _subparts=[mail, *attachments])
        mail["From"] = self._from
        mail["To"] = _address(message.to_address)
        # Encoded (RFC 2047) only if it must be, in encoded words of at most 75 characters.
        charset = "us-ascii" if message.subject.isascii() else "utf-8"
        subject = Header(message.subject, charset, header_name="Subject")
        mail["Subject"] = subject.encode(linesep="\r\n")
        mail["Date"] = email.utils.format_datetime(message.created_at)
        mail["Message-ID"] = message_id(message)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to us
        if message.unsubscribe_url:
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs here.
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return mail


def _address(address: str) -> str:
    """An address for a header. One beyond ASCII goes in as UTF-8 itself (RFC 6532; the envelope
    asks for SMTPUTF8): an encoded word is not allowed in an address, and compat32 would make
    one. Bytes carried as surrogate escapes are written out unchanged."""
    return address if address.isascii() else address.encode().decode("ascii", "surrogateescape")


def _text(content: str, subtype: str) -> Message:
    """A text part in quoted-printable UTF-8: readable in the raw, any character allowed. It is
    encoded by ``binascii``, in C: the ``email`` package's encoder, in Python, took four times
    as long."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(content.encode(), istext=True).decode("ascii"))
    return part


def _method(invite: str) -> str:
    return str(Calendar.from_ical(invite)["METHOD"])


def _permanent(exc: aiosmtplib.SMTPException) -> bool:
    """A 5xx refusal of the recipient or of the message: sending it again cannot succeed.

    Anything else (4xx, timeouts, and 5xx to our sender, which is our misconfiguration) is retried,
    so fixing the cause loses nothing; a relay that cannot be reached is waited for.
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
