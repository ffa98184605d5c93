"""Queueing a message for a recipient: rendered now, on each of their channels, at the right time.

Rendering happens while the event is consumed, so a broken template is recorded as a failed
notification with the reason instead of stalling the consumer. Each (event, message, recipient,
channel) is one row, whatever the redeliveries: the unique key is the last guard.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID, uuid4

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert

from crossgen_notifications.channels import ChannelName
from crossgen_notifications.models import Contact, Notification, Preferences, Status
from crossgen_notifications.preferences import unsubscribe
from crossgen_notifications.preferences.store import Reach, reach
from crossgen_notifications.rendering import Message, render
from crossgen_notifications.scheduling.timing import Clock, after_quiet_hours, next_digest
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared import observability
from crossgen_shared.consumer import NotReady
from crossgen_shared.db import any_of_uuids
from crossgen_shared.envelope import Envelope
from crossgen_shared.events import NotificationFailed
from crossgen_shared.unit_of_work import UnitOfWork

DIGEST = "daily-digest"


@dataclass(frozen=True)
class Recipient:
    contact: Contact
    reach: Reach

    @property
    def name(self) -> str:
        return self.contact.display_name

    @property
    def left(self) -> bool:
        """Someone who left their program gets no further messages about it."""
        return self.contact.left_at is not None


# Built once; the rows' keys give its columns. Rows are held until the commit and inserted
# together (``UnitOfWork.insert_at_commit``): what changes messages in the same transaction
# writes them first. On the table, not the entity: the ORM's bulk path costs more CPU.
_INSERT_ONCE = insert(
    Notification.metadata.tables[Notification.__tablename__]
).on_conflict_do_nothing(constraint="uq_notifications_once")
# A participant's contact with their preferences, if they set any; built once.
_WITH_PREFERENCES = select(Contact, Preferences).outerjoin(
    Preferences, Preferences.person_id == Contact.person_id
)
_RECIPIENT = _WITH_PREFERENCES.where(Contact.participant_id == bindparam("participant_id"))
_RECIPIENTS = _WITH_PREFERENCES.where(Contact.participant_id == any_of_uuids("participant_ids"))
_READ_AHEAD = "recipients read ahead"


class Messages:
    def __init__(
        self,
        settings: NotificationsSettings,
        clock: Clock,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._on_queued = on_queued  # told once a message due now is committed
        self._signing_key: bytes | None = None  # made once by a migration, never changed

    async def read_recipients(self, uow: UnitOfWork, participant_ids: Collection[UUID]) -> None:
        """Read the recipients a batch of events will ask for, at once: ``recipient`` finds them
        for the rest of the unit of work (nothing in a batch of pairing events changes them)."""
        rows = await uow.session.execute(_RECIPIENTS, {"participant_ids": list(participant_ids)})
        uow.memo[_READ_AHEAD] = {
            contact.participant_id: Recipient(contact, reach(contact, preferences))
            for contact, preferences in rows
        }

    async def recipient(self, uow: UnitOfWork, participant_id: UUID) -> Recipient:
        """Who a participant is and how to reach them; NotReady if not known yet."""
        if (known := uow.memo.get(_READ_AHEAD, {}).get(participant_id)) is not None:
            return cast(Recipient, known)
        found = (await uow.session.execute(_RECIPIENT, {"participant_id": participant_id})).first()
        if found is None:
            # Events come on several topics: the participant's own may simply not be here yet.
            raise NotReady(f"participant {participant_id} is not known yet")
        contact, preferences = found
        return Recipient(contact, reach(contact, preferences))

    async def queue(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        recipient: Recipient,
        template: str,
        facts: dict[str, Any],
        *,
        due: datetime | None = None,
        session_id: UUID | None = None,
        calendar: str | None = None,
    ) -> None:
        """One message to ``recipient`` on each of their channels, due at ``due`` (default now)."""
        if recipient.left:
            return
        now = self._clock()
        due = max(due or now, now)
        contact, where = recipient.contact, recipient.reach
        trace_context = observability.trace_headers()
        link = (
            await self.unsubscribe_url(uow, contact.person_id)
            if "email" in where.addresses
            else None
        )
        for channel, address in where.addresses.items():
            row: dict[str, Any] = {
                "source_event_id": envelope.id,
                "source_event_type": envelope.type,
                "recipient_id": contact.participant_id,
                "person_id": contact.person_id,
                "channel": channel,
                "template": template,
                "to_address": address,
                "session_id": session_id,
                "created_at": now,
                "trace_context": trace_context,
            }
            try:
                message = self.render(
                    recipient, channel, template, facts, link if channel == "email" else None
                )
            except Exception as exc:  # a template or its facts are broken: record, go on
                await self._failed(uow, row | {"subject": "", "body": ""}, exc)
                continue
            row |= {
                "subject": message.subject,
                "calendar": calendar if channel == "email" else None,
            }
            if channel != "webhook" and where.digest:
                digest_id, digest_due = await self._digest(uow, row, where, due)
                row |= {
                    "status": Status.COLLECTED,
                    "digest_id": digest_id,
                    "body": message.excerpt,
                    "html": None,
                    "next_attempt_at": digest_due,
                }
            else:
                # Quiet hours are for people; a webhook feeds a system.
                timely = (
                    due if channel == "webhook" else after_quiet_hours(due, where.quiet, where.zone)
                )
                body = message.text if channel == "email" else message.excerpt
                row |= {
                    "status": Status.PENDING,
                    "digest_id": None,
                    "body": body,
                    "html": message.html,
                    "next_attempt_at": timely,
                }
                if timely <= now and self._on_queued is not None:
                    uow.after_commit(self._on_queued)
            # Every row held for this statement has the same keys: one executemany takes them.
            uow.insert_at_commit(_INSERT_ONCE, row)

    async def unsubscribe_url(self, uow: UnitOfWork, person_id: str) -> str:
        if self._signing_key is None:
            self._signing_key = await unsubscribe.signing_key(uow.session)
        key = self._signing_key
        return unsubscribe.link(self._settings.public_url, unsubscribe.token(key, person_id))

    def render(
        self,
        recipient: Recipient,
        channel: ChannelName,
        template: str,
        facts: dict[str, Any],
        unsubscribe_url: str | None = None,
    ) -> Message:
        """The message for one channel: emails get HTML and the unsubscribe link."""
        where = recipient.reach
        extra = {"unsubscribe_url": unsubscribe_url} if unsubscribe_url else {}
        return render(
            template,
            locale=where.locale,
            timezone=where.timezone,
            html=channel == "email",
            recipient=recipient.name,
            **facts,
            **extra,
        )

    async def _failed(self, uow: UnitOfWork, row: dict[str, Any], exc: Exception) -> None:
        reason = f"template {row['template']!r} failed to render: {type(exc).__name__}: {exc}"
        inserted = await uow.session.scalar(
            insert(Notification)
            .values(
                row
                | {
                    "status": Status.FAILED,
                    "last_error": reason,
                    "next_attempt_at": row["created_at"],
                }
            )
            .on_conflict_do_nothing(constraint="uq_notifications_once")
            .returning(Notification.id)
        )
        if inserted is not None:
            await uow.emit(
                NotificationFailed(
                    notification_id=inserted,
                    recipient_id=row["recipient_id"],
                    channel=row["channel"],
                    template=row["template"],
                    source_event_id=row["source_event_id"],
                    reason=reason,
                    failed_at=row["created_at"],
                )
            )

    async def _digest(
        self, uow: UnitOfWork, row: dict[str, Any], where: Reach, due: datetime
    ) -> tuple[UUID, datetime]:
        """The pending digest this message joins: the first one after ``due``.

        The upsert locks the digest row until this transaction commits, so the worker cannot
        send it with this message half added; if that day's digest is already out, the next.
        """
        after = due
        while True:
            slot = next_digest(after, self._settings.digest_hour, where.quiet, where.zone)
            upsert = insert(Notification).values(
                id=uuid4(),
                source_event_id=f"digest:{slot.day.isoformat()}",
                source_event_type="digest",
                recipient_id=row["recipient_id"],
                person_id=row["person_id"],
                channel=row["channel"],
                template=DIGEST,
                to_address=row["to_address"],
                subject="",
                body="",
                next_attempt_at=slot.due,
                created_at=row["created_at"],
            )
            digest = (
                await uow.session.execute(
                    upsert.on_conflict_do_update(
                        constraint="uq_notifications_once",
                        set_={"to_address": upsert.excluded.to_address},
                    ).returning(Notification.id, Notification.status, Notification.next_attempt_at)
                )
            ).one()
            if digest.status == Status.PENDING:
                return digest.id, digest.next_attempt_at
            after = slot.due
