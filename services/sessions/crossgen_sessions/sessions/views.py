"""HTTP API of a session's life: schedule, reschedule, cancel, held, no-show, complete, feedback.

Only the pair acts on its sessions; a program owner reads them through the pairing's history.
"""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl

from crossgen_sessions import rules
from crossgen_sessions.access import Caller, caller
from crossgen_sessions.rules import Slot
from crossgen_sessions.sessions import service
from crossgen_shared.events import BenefitRatings, Role
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter(tags=["sessions"])


class ScheduleIn(BaseModel):
    starts_at: AwareDatetime = Field(description="With a time zone, e.g. 2030-05-01T09:00:00+02:00")
    duration_minutes: int = Field(ge=rules.MIN_DURATION_MINUTES, le=rules.MAX_DURATION_MINUTES)
    agenda: str = Field(default="", max_length=2000)
    video_link: HttpUrl | None = Field(default=None, description="Where the pair meets online")


class RescheduleIn(BaseModel):
    starts_at: AwareDatetime
    duration_minutes: int | None = Field(
        default=None,
        ge=rules.MIN_DURATION_MINUTES,
        le=rules.MAX_DURATION_MINUTES,
        description="Unchanged if left out",
    )


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why: the other side sees it")


class HeldIn(BaseModel):
    held_minutes: int = Field(ge=0, le=24 * 60, description="How long the session really took")


class NoShowIn(BaseModel):
    absent: Role | None = Field(
        default=None, description="Who did not come; by default the other side"
    )


class FeedbackIn(BaseModel):
    ratings: BenefitRatings = Field(description="1 (not at all) to 5 (very much) per benefit")
    comment: str = Field(default="", max_length=4000)


class CompleteIn(HeldIn):
    feedback: FeedbackIn = Field(description="The caller's feedback on the session")


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    pairing_id: UUID
    starts_at: datetime
    duration_minutes: int
    agenda: str
    video_link: str | None
    status: str = Field(description="scheduled, completed (held), no_show or cancelled")
    held_minutes: int | None
    completed_at: datetime | None
    absent: Role | None
    cancelled_by: UUID | None
    cancellation_reason: str | None
    cancelled_at: datetime | None


class FeedbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    session_id: UUID
    participant_id: UUID
    ratings: BenefitRatings
    comment: str
    submitted_at: datetime


Participant = Depends(caller("participant"))


@router.post(
    "/pairings/{pairing_id}/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
)
async def schedule(
    pairing_id: UUID,
    body: ScheduleIn,
    who: Caller = Participant,
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.schedule(
            uow,
            pairing_id,
            who.person_id,
            slot=Slot(body.starts_at, body.duration_minutes),
            agenda=body.agenda,
            video_link=str(body.video_link) if body.video_link else None,
        )
        await uow.commit()
        return SessionOut.model_validate(session)


@router.post("/sessions/{session_id}/reschedule", response_model=SessionOut)
async def reschedule(
    session_id: UUID,
    body: RescheduleIn,
    who: Caller = Participant,
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.reschedule(
            uow,
            session_id,
            who.person_id,
            starts_at=body.starts_at,
            duration_minutes=body.duration_minutes,
        )
        await uow.commit()
        return SessionOut.model_validate(session)


@router.post("/sessions/{session_id}/cancel", response_model=SessionOut)
async def cancel(
    session_id: UUID,
    body: CancelIn,
    who: Caller = Participant,
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.cancel(uow, session_id, who.person_id, reason=body.reason)
        await uow.commit()
        return SessionOut.model_validate(session)


@router.post("/sessions/{session_id}/held", response_model=SessionOut)
async def held(
    session_id: UUID,
    body: HeldIn,
    who: Caller = Participant,
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.mark_held(
            uow, session_id, who.person_id, held_minutes=body.held_minutes
        )
        await uow.commit()
        return SessionOut.model_validate(session)


@router.post("/sessions/{session_id}/no-show", response_model=SessionOut)
async def no_show(
    session_id: UUID,
    body: NoShowIn,
    who: Caller = Participant,
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.mark_no_show(uow, session_id, who.person_id, absent=body.absent)
        await uow.commit()
        return SessionOut.model_validate(session)


@router.post("/sessions/{session_id}/complete", response_model=SessionOut)
async def complete(
    session_id: UUID,
    body: CompleteIn,
    who: Caller = Participant,
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.complete(
            uow,
            session_id,
            who.person_id,
            held_minutes=body.held_minutes,
            ratings=body.feedback.ratings,
            comment=body.feedback.comment,
        )
        await uow.commit()
        return SessionOut.model_validate(session)


@router.post(
    "/sessions/{session_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackOut,
)
async def give_feedback(
    session_id: UUID,
    body: FeedbackIn,
    who: Caller = Participant,
    uow: UnitOfWork = Depends(unit_of_work),
) -> FeedbackOut:
    async with uow:
        feedback = await service.give_feedback(
            uow, session_id, who.person_id, ratings=body.ratings, comment=body.comment
        )
        await uow.commit()
        return FeedbackOut.model_validate(feedback)
