"""The delivery worker: sends each due message once, and records what happened.

Each message goes through three steps, each its own transaction or none:

1. claim: the first due rows, up to ``delivery_batch``, are locked with ``FOR UPDATE SKIP LOCKED``
   (replicas and loops never pick the same one), each marked ``sending`` with a fresh attempt id,
   and committed;
2. send them all at once, holding no lock and no transaction;
3. record each outcome on the rows carrying its attempt id, all in one transaction: ``sent``,
   ``pending`` again after a backoff with jitter, or ``failed``, with a notification-sent /
   -failed event in the outbox. An email the SMTP relay could not even be asked to take is
   ``pending`` again as it was: no email is claimed until the relay answers again.

A process that dies between 1 and 3 leaves ``sending`` rows whose messages may or may not have
arrived: every message of a claim is in flight from step 2 on, so none is marked so wrongly.
After ``sending_timeout`` they become ``unconfirmed`` and are never sent again by themselves: an
admin looks at them in the delivery log and resends them if needed. See the README for why.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

from opentelemetry import trace
from prometheus_client import Counter, Gauge
from sqlalchemy import DateTime, Row, bindparam, select, update

from crossgen_notifications.channels import Channel, ChannelName, DeliveryError, Outgoing
from crossgen_notifications.channels.chat import ChatChannel
from crossgen_notifications.channels.email import EmailChannel, RelayUnavailable
from crossgen_notifications.channels.http import HttpPoster
from crossgen_notifications.channels.urls import UrlPolicy
from crossgen_notifications.channels.webhook import WebhookChannel
from crossgen_notifications.messages import DIGEST, Messages, Recipient
from crossgen_notifications.models import Notification, Preferences, Status
from crossgen_notifications.preferences.store import enabled
from crossgen_notifications.scheduling.timing import Clock, system_clock
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared import observability
from crossgen_shared.db import any_of_uuids, unavailable
from crossgen_shared.events import NotificationFailed, NotificationSent
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "crossgen_notifications_deliveries_total", "Delivery outcomes", ["channel", "outcome"]
)
RELAY_UP = Gauge("crossgen_notifications_smtp_relay_up", "1 unless the SMTP relay was found down")
IDLE_BACKOFF_START = 0.02  # seconds after a first look found nothing due
UNCONFIRMED_REASON = (
    "the sender stopped before confirming the outcome: maybe delivered, so not resent"
    " automatically; review and resend from the delivery log if needed"
)


# The rows of some attempts, locked to record their outcome; built once, prepared once a
# connection (the ids as one array).
_ATTEMPTED = (
    select(Notification)
    .where(Notification.attempt_id == any_of_uuids("attempt_ids"))
    .order_by(Notification.id)  # one order for every locker: no deadlock
    .with_for_update()
)


@dataclass(frozen=True)
class Claim:
    message: Outgoing
    attempt_id: UUID
    trace_context: Mapping[str, str]  # of the event that caused the message


class Delivery:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        settings: NotificationsSettings,
        *,
        clock: Clock = system_clock,
        channels: Mapping[ChannelName, Channel] | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._settings = settings
        self._clock = clock
        self._messages = Messages(settings, clock)
        self._poster = HttpPoster(UrlPolicy.of(settings), settings.webhook_timeout)
        self._email = EmailChannel(settings)
        self._channels: Mapping[ChannelName, Channel] = channels or {
            "email": self._email,
            "chat": ChatChannel(self._poster),
            "webhook": WebhookChannel(self._poster),
        }
        self._expired_at: datetime | None = None  # when unconfirmed sends were last looked for
        # Since when the relay cannot be reached (None: it can), and when it was last asked.
        self._relay_down_since: datetime | None = None
        self._relay_asked_at: datetime | None = None
        RELAY_UP.set(1)
        # Built once, as every claim runs it: the first due messages, with their preferences;
        # and the same without emails, for while the relay is down.
        self._due = (
            select(Notification, Preferences)
            .outerjoin(Preferences, Preferences.person_id == Notification.person_id)
            .where(
                Notification.status == Status.PENDING,
                Notification.next_attempt_at <= bindparam("now"),
            )
            .order_by(Notification.next_attempt_at)
            .limit(settings.delivery_batch)
            .with_for_update(skip_locked=True, of=Notification)
        )
        self._due_but_email = self._due.where(Notification.channel != "email")
        # A wake-up for one loop, kept until a loop takes it: one message wakes one loop, not
        # all of them to find it taken by the first.
        self._woken: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._smtp_turns = asyncio.Semaphore(settings.smtp_connections)

    async def run(self) -> None:
        """Deliver until cancelled, with ``delivery_concurrency`` loops sharing the work."""
        try:
            async with asyncio.TaskGroup() as loops:
                for _ in range(self._settings.delivery_concurrency):
                    loops.create_task(self._loop())
        finally:
            await self._poster.aclose()
            await self._email.aclose()

    async def _loop(self) -> None:
        failures = idle = 0
        while True:
            # Taken before looking: a message committed after this look wakes a wait below.
            with contextlib.suppress(asyncio.QueueEmpty):
                self._woken.get_nowait()
            cycle = asyncio.ensure_future(self.deliver_next())
            try:
                delivered = await asyncio.shield(cycle)
            except asyncio.CancelledError:
                # Shutting down: let the message in flight finish and be recorded, so a deploy
                # does not leave a "maybe sent" message behind.
                with contextlib.suppress(Exception):
                    await cycle
                raise
            except Exception as exc:  # a database outage pauses delivery, it does not end it
                failures += 1
                await observability.wait_to_retry(log, "delivery", exc, failures)
                continue
            failures = 0
            # A full claim may have left more due: look again at once. Anything else took all
            # that was due when it looked, and what was queued here since has woken a loop:
            # so look again soon (a loop that just missed one to another loop would otherwise
            # leave the next waiting a whole interval), then less and less often, down to the
            # poll interval, unless woken (a replica's message, or one due later, is found by
            # looking). At a low rate that saves an empty claim after each message sent.
            if delivered >= self._settings.delivery_batch:
                idle = 0
            else:
                idle = 1 if delivered else min(idle + 1, 16)
            if idle:
                delay = IDLE_BACKOFF_START * 2 ** (idle - 1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._woken.get(), min(delay, self._settings.delivery_poll_interval)
                    )

    def wake(self) -> None:
        """A message due now was committed: a loop looks at once (one that is busy, once done)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._woken.put_nowait(None)

    async def deliver_next(self) -> int:
        """Handle the due messages one claim takes; how many (0: nothing was due)."""
        if self._relay_down_since is not None:
            await self._ask_relay()
        due, claims = await self._claim()
        if not due:
            # Idle: a good moment to look for sends that died. Not at each idle poll of each
            # loop, though: a send is only declared dead after ``sending_timeout``.
            now = self._clock()
            every = timedelta(seconds=self._settings.sending_timeout / 10)
            if self._expired_at is None or now - self._expired_at >= every:
                self._expired_at = now
                await self.expire_unconfirmed()
        elif claims:
            outcomes = await asyncio.gather(*(self._send(claim) for claim in claims))
            # The messages are out (or refused): a database blip must not leave them "maybe sent".
            failures = 0
            while True:
                try:
                    await self._record(list(zip(claims, outcomes, strict=True)))
                    break
                except Exception as exc:
                    if not unavailable(exc):
                        raise
                    failures += 1
                    await observability.wait_to_retry(log, "recording deliveries", exc, failures)
        return due

    async def deliver_due(self) -> int:
        """Handle every message due now (for tests and one-off runs); returns how many."""
        handled = 0
        while taken := await self.deliver_next():
            handled += taken
        return handled

    async def expire_unconfirmed(self) -> int:
        cutoff = self._clock() - timedelta(seconds=self._settings.sending_timeout)
        async with self._unit_of_work() as uow:
            expired = (
                await uow.session.scalars(
                    update(Notification)
                    .where(Notification.status == Status.SENDING, Notification.claimed_at < cutoff)
                    .values(status=Status.UNCONFIRMED, last_error=UNCONFIRMED_REASON)
                    .returning(Notification.channel)
                )
            ).all()
            await uow.commit()
        for channel in expired:
            log.warning("a %s message was left mid-send: marked unconfirmed", channel)
            DELIVERIES.labels(channel, "unconfirmed").inc()
        return len(expired)

    async def _claim(self) -> tuple[int, list[Claim]]:
        """How many due messages were taken, and the claims to send (the others were settled
        without sending)."""
        now = self._clock()
        query = self._due if self._relay_down_since is None else self._due_but_email
        async with self._unit_of_work() as uow:
            due = (await uow.session.execute(query, {"now": now})).all()
            claims = [
                claim
                for row, preferences in due
                if (claim := await self._claim_one(uow, row, preferences, now)) is not None
            ]
            await uow.commit()  # the claims are durable before anything is said to the outside
        return len(due), claims

    async def _claim_one(
        self, uow: UnitOfWork, row: Notification, preferences: Preferences | None, now: datetime
    ) -> Claim | None:
        """Mark ``row`` (and a digest's items) ``sending``; None if it was settled instead."""
        channel = cast(ChannelName, row.channel)
        items = await self._digest_items(uow, row) if row.template == DIGEST else []
        unwanted = None
        if not enabled(preferences, channel):
            unwanted = f"{channel} turned off"
        elif row.template == DIGEST and not items:
            unwanted = "nothing left to send"
        if unwanted:
            _settle(row, items, Status.CANCELLED, unwanted)
            DELIVERIES.labels(channel, "cancelled").inc()
            return None
        message = self._outgoing(row, channel, items, preferences)
        if channel == "email":
            link = await self._messages.unsubscribe_url(uow, row.person_id)
            message = replace(message, unsubscribe_url=link)
        if row.template == DIGEST:
            recipient = await self._messages.recipient(uow, row.recipient_id)
            try:
                message = self._compose_digest(recipient, message, items)
            except Exception as exc:  # a broken digest template: record, go on
                await self._fail(uow, row, items, f"digest failed to render: {exc!r}")
                return None
            row.subject, row.body, row.html = message.subject, message.text, message.html
        attempt_id = uuid4()
        for claimed in (row, *items):
            claimed.status, claimed.attempt_id = Status.SENDING, attempt_id
            claimed.claimed_at = now
        row.attempts += 1
        return Claim(message, attempt_id, row.trace_context)

    async def _digest_items(self, uow: UnitOfWork, digest: Notification) -> list[Notification]:
        return list(
            await uow.session.scalars(
                select(Notification)
                .where(Notification.digest_id == digest.id, Notification.status == Status.COLLECTED)
                .order_by(Notification.created_at, Notification.id)
                .with_for_update()
            )
        )

    def _outgoing(
        self,
        row: Notification,
        channel: ChannelName,
        items: list[Notification],
        preferences: Preferences | None,
    ) -> Outgoing:
        calendars = tuple(c for c in (row.calendar, *(i.calendar for i in items)) if c)
        return Outgoing(
            notification_id=row.id,
            channel=channel,
            to_address=row.to_address,
            template=row.template,
            source_event_id=row.source_event_id,
            source_event_type=row.source_event_type,
            recipient_id=row.recipient_id,
            person_id=row.person_id,
            subject=row.subject,
            text=row.body,
            html=row.html,
            calendars=calendars,
            created_at=row.created_at,
            chat_kind=preferences.chat_kind if preferences else None,
            webhook_secret=preferences.webhook_secret if preferences else None,
        )

    def _compose_digest(
        self, recipient: Recipient, message: Outgoing, items: list[Notification]
    ) -> Outgoing:
        """The digest's text is made when it goes out: that is when its content is known."""
        facts = {"items": [{"subject": item.subject, "text": item.body} for item in items]}
        rendered = self._messages.render(
            recipient, message.channel, DIGEST, facts, message.unsubscribe_url
        )
        text = rendered.text if message.channel == "email" else rendered.excerpt
        return replace(message, subject=rendered.subject, text=text, html=rendered.html)

    async def _send(self, claim: Claim) -> DeliveryError | None:
        message = claim.message
        timeout = (
            self._settings.smtp_timeout
            if message.channel == "email"
            else self._settings.webhook_timeout
        )
        # An email waits for a free SMTP connection before its timeout starts.
        turn = self._smtp_turns if message.channel == "email" else contextlib.nullcontext()
        try:
            # In the trace of the event that caused the message: the send is part of its story.
            with observability.continuing(
                claim.trace_context, f"{message.channel} send", kind=trace.SpanKind.CLIENT
            ):
                async with turn, asyncio.timeout(timeout):
                    await self._channels[message.channel].send(message)
        except DeliveryError as exc:
            return exc
        except TimeoutError:
            return DeliveryError(f"timed out after {timeout:g} s", permanent=False)
        except Exception as exc:  # resets and the like: the remote side's trouble, worth a retry
            return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)
        return None

    async def _record(self, outcomes: list[tuple[Claim, DeliveryError | None]]) -> None:
        """Record how each claim's send went, in one transaction."""
        arrived: list[Claim] = []  # single messages that went out: the common case
        others: list[tuple[Claim, DeliveryError | None]] = []
        for claim, error in outcomes:
            if error is None and claim.message.template != DIGEST:
                arrived.append(claim)
            else:
                others.append((claim, error))
        async with self._unit_of_work() as uow:
            if arrived:
                await self._record_arrived(uow, arrived)
            if others:
                rows = await uow.session.scalars(
                    _ATTEMPTED, {"attempt_ids": [claim.attempt_id for claim, _ in others]}
                )
                attempts: dict[UUID, list[Notification]] = {}
                for row in rows:
                    assert row.attempt_id is not None  # selected by it
                    attempts.setdefault(row.attempt_id, []).append(row)
                for claim, error in others:
                    await self._record_one(uow, claim, error, attempts.get(claim.attempt_id, []))
            await uow.commit()

    async def _record_arrived(self, uow: UnitOfWork, claims: list[Claim]) -> None:
        """Single messages that went out, the common case: marked sent in one statement, without
        reading their rows. A row whose attempt an admin reset meanwhile is left as they left it."""
        now = self._clock()
        sent = await uow.session.execute(
            _ARRIVED,
            {"attempt_ids": [claim.attempt_id for claim in claims], "now": now},
            execution_options={"synchronize_session": False},
        )
        by_attempt = {row.attempt_id: row for row in sent}
        for claim in claims:  # the events in the order the messages were claimed
            if (row := by_attempt.get(claim.attempt_id)) is not None:
                await uow.emit(_sent(row, now), trace_context=claim.trace_context)
                DELIVERIES.labels(row.channel, "sent").inc()

    async def _record_one(
        self,
        uow: UnitOfWork,
        claim: Claim,
        error: DeliveryError | None,
        rows: list[Notification],
    ) -> None:
        message = claim.message
        row = next((r for r in rows if r.id == message.notification_id), None)
        if row is None:
            return  # an admin reset the message meanwhile: theirs is the newer decision
        items = sorted((r for r in rows if r is not row), key=lambda r: (r.created_at, r.id))
        now = self._clock()
        if error is None:
            for sent in rows:
                sent.status, sent.sent_at, sent.last_error = Status.SENT, now, None
            for told in items or [row]:
                await uow.emit(_sent(told, now), trace_context=told.trace_context)
            DELIVERIES.labels(message.channel, "sent").inc()
        elif isinstance(error, RelayUnavailable):
            # Not this message's fault: it waits for the relay, its attempt not counted.
            self._relay_lost(now, error.reason)
            row.attempts -= 1
            _pending_again(row, items, error.reason, now)
        elif error.permanent or row.attempts >= self._settings.delivery_max_attempts:
            log.warning("%s %s failed for good: %s", message.channel, row.id, error.reason)
            await self._fail(uow, row, items, error.reason)
        else:
            log.info(
                "%s %s attempt %d failed: %s",
                message.channel,
                row.id,
                row.attempts,
                error.reason,
            )
            due = now + timedelta(seconds=self._backoff(row.attempts, error.retry_after))
            _pending_again(row, items, error.reason, due)
            DELIVERIES.labels(message.channel, "retry").inc()

    def _relay_lost(self, now: datetime, reason: str) -> None:
        if self._relay_down_since is None:
            log.warning(
                "the SMTP relay cannot be reached (%s): emails wait, asking it again every %g s",
                reason,
                self._settings.smtp_probe_interval,
            )
            self._relay_down_since = self._relay_asked_at = now
            RELAY_UP.set(0)

    async def _ask_relay(self) -> None:
        """Once a probe interval, open a session with the relay; if it opens, emails go again."""
        now = self._clock()
        assert self._relay_down_since is not None and self._relay_asked_at is not None
        if now - self._relay_asked_at < timedelta(seconds=self._settings.smtp_probe_interval):
            return
        self._relay_asked_at = now
        try:
            async with self._smtp_turns:
                await self._email.probe()
        except RelayUnavailable:
            return
        log.warning(
            "the SMTP relay answers again after %s: emails go out", now - self._relay_down_since
        )
        self._relay_down_since = None
        RELAY_UP.set(1)

    async def _fail(
        self, uow: UnitOfWork, row: Notification, items: list[Notification], reason: str
    ) -> None:
        _settle(row, items, Status.FAILED, reason)
        for told in items or [row]:
            await uow.emit(_failed(told, reason, self._clock()), trace_context=told.trace_context)
        DELIVERIES.labels(row.channel, "failed").inc()

    def _backoff(self, attempts: int, asked: float | None = None) -> float:
        """Doubling per attempt up to the maximum; the random half spreads retries out. No sooner
        than the receiver ``asked`` (asked sooner, it refuses again and an attempt is used up),
        but no later than the maximum either: a receiver cannot hold a message for ever."""
        most = self._settings.delivery_retry_max_delay
        ceiling = min(self._settings.delivery_retry_delay * 2 ** (attempts - 1), most)
        return max(ceiling / 2 + random.uniform(0, ceiling / 2), min(asked or 0.0, most))


def _pending_again(
    row: Notification, items: list[Notification], reason: str, due: datetime
) -> None:
    """Due again at ``due``; a digest's items back in it."""
    row.status, row.last_error, row.next_attempt_at = Status.PENDING, reason, due
    for item in items:
        item.status = Status.COLLECTED


def _settle(row: Notification, items: list[Notification], status: Status, reason: str) -> None:
    for settled in (row, *items):
        settled.status, settled.last_error = status, reason


# What a notification-sent event says of its message.
_SENT_FIELDS = (
    Notification.id,
    Notification.recipient_id,
    Notification.channel,
    Notification.template,
    Notification.source_event_id,
)
# Single messages that went out, by their attempts' ids as one array: one statement for any
# number of them, prepared once a connection.
_ARRIVED = (
    update(Notification)
    .where(Notification.attempt_id == any_of_uuids("attempt_ids"))
    .values(
        status=Status.SENT, sent_at=bindparam("now", type_=DateTime(timezone=True)), last_error=None
    )
    .returning(*_SENT_FIELDS, Notification.attempt_id)
)


def _sent(row: Notification | Row[*tuple[Any, ...]], at: datetime) -> NotificationSent:
    return NotificationSent(
        notification_id=row.id,
        recipient_id=row.recipient_id,
        channel=cast(ChannelName, row.channel),
        template=row.template,
        source_event_id=row.source_event_id,
        sent_at=at,
    )


def _failed(row: Notification, reason: str, at: datetime) -> NotificationFailed:
    return NotificationFailed(
        notification_id=row.id,
        recipient_id=row.recipient_id,
        channel=cast(ChannelName, row.channel),
        template=row.template,
        source_event_id=row.source_event_id,
        reason=reason,
        failed_at=at,
    )
