"""HTTP API of the notifications service: the delivery log, and resending after review."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from crossgen_notifications import delivery_log
from crossgen_shared.auth import Principal, require
from crossgen_shared.paging import Page
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter(tags=["delivery log"])

Status = Literal["pending", "collected", "sending", "sent", "failed", "cancelled", "unconfirmed"]


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    source_event_id: str
    source_event_type: str
    recipient_id: UUID
    channel: str
    template: str
    to_address: str
    subject: str
    body: str
    status: Status
    attempts: int
    last_error: str | None
    digest_id: UUID | None = Field(description="The daily digest this message went out in")
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None


@router.get("/notifications", response_model=list[NotificationOut])
async def the_delivery_log(
    page: Annotated[Page, Query()],
    recipient_id: UUID | None = None,
    status: Status | None = None,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[NotificationOut]:
    async with uow:
        rows = await delivery_log.delivery_log(
            uow, recipient_id=recipient_id, status=status, limit=page.limit, offset=page.offset
        )
        return [NotificationOut.model_validate(n) for n in rows]


@router.post("/notifications/{notification_id}/resend", response_model=NotificationOut)
async def resend(
    notification_id: UUID,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> NotificationOut:
    """Send an unconfirmed or failed message again (409 for any other status)."""
    async with uow:
        row = await delivery_log.resend(uow, notification_id)
        await uow.commit()
        return NotificationOut.model_validate(row)


@router.get("/me/notifications", response_model=list[NotificationOut])
async def my_notifications(
    page: Annotated[Page, Query()],
    status: Status | None = None,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[NotificationOut]:
    async with uow:
        rows = await delivery_log.delivery_log(
            uow, person_id=who.subject, status=status, limit=page.limit, offset=page.offset
        )
        return [NotificationOut.model_validate(n) for n in rows]
