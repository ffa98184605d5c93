"""The delivery log: every message and what became of it, and resending one after review."""

from uuid import UUID

from sqlalchemy import select, update

from crossgen_notifications.messages import DIGEST
from crossgen_notifications.models import Notification, Status
from crossgen_shared.db import utcnow
from crossgen_shared.errors import Conflict, NotFound
from crossgen_shared.unit_of_work import UnitOfWork

RESENDABLE = (Status.UNCONFIRMED, Status.FAILED)


async def delivery_log(
    uow: UnitOfWork,
    *,
    recipient_id: UUID | None = None,
    person_id: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int,
) -> list[Notification]:
    """Notifications newest first, optionally for one recipient, one person or one status."""
    query = select(Notification)
    if recipient_id is not None:
        query = query.where(Notification.recipient_id == recipient_id)
    if person_id is not None:
        query = query.where(Notification.person_id == person_id)
    if status is not None:
        query = query.where(Notification.status == status)
    rows = await uow.session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id).limit(limit).offset(offset)
    )
    return list(rows)


async def resend(uow: UnitOfWork, notification_id: UUID) -> Notification:
    """Queue an unconfirmed or failed message again, with the same Message-ID / delivery id,
    so a receiver that got it the first time can recognise it."""
    row = await uow.session.get(Notification, notification_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no notification {notification_id}")
    if row.status not in RESENDABLE:
        raise Conflict(f"only unconfirmed or failed messages are resent; this one is {row.status}")
    if row.digest_id is not None:
        raise Conflict(f"this message went out in digest {row.digest_id}: resend that one")
    if not row.person_id:
        raise Conflict("the person was erased")
    if not row.body and row.template != DIGEST:
        raise Conflict("this message never rendered: there is nothing to resend")
    row.status, row.attempt_id, row.claimed_at = Status.PENDING, None, None
    row.attempts, row.next_attempt_at = 0, utcnow()
    if row.template == DIGEST:
        await uow.session.execute(
            update(Notification)
            .where(Notification.digest_id == row.id, Notification.status.in_(RESENDABLE))
            .values(status=Status.COLLECTED, attempt_id=None, claimed_at=None)
        )
    return row
