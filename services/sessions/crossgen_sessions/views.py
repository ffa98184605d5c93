"""HTTP API of the sessions service."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crossgen_sessions import rules, service
from crossgen_shared.auth import Principal, require
from crossgen_shared.events import BenefitRatings
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter()


class ScheduleIn(BaseModel):
    starts_at: AwareDatetime = Field(description="With a time zone, e.g. 2030-05-01T09:00:00+02:00")
    duration_minutes: int = Field(ge=rules.MIN_DURATION_MINUTES, le=rules.MAX_DURATION_MINUTES)
    agenda: str = Field(default="", max_length=2000)


class FeedbackIn(BaseModel):
    ratings: BenefitRatings = Field(description="1 (not at all) to 5 (very much) per benefit")
    comment: str = Field(default="", max_length=4000)


class CompleteIn(BaseModel):
    held_minutes: int = Field(ge=0, le=24 * 60, description="How long the session really took")
    feedback: FeedbackIn = Field(description="The caller's feedback on the session")


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    pairing_id: UUID
    starts_at: datetime
    duration_minutes: int
    agenda: str
    status: str
    held_minutes: int | None
    completed_at: datetime | None


class PairingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    program_id: UUID
    learner_id: UUID
    mentor_id: UUID
    learner_person_id: str
    mentor_person_id: str
    status: str
    opened_at: datetime
    ended_at: datetime | None


class PairingWithSessionsOut(PairingOut):
    sessions: list[SessionOut]


class FeedbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    session_id: UUID
    participant_id: UUID
    ratings: BenefitRatings
    comment: str
    submitted_at: datetime


@router.get("/me/pairings", response_model=list[PairingOut])
async def my_pairings(
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[PairingOut]:
    async with uow:
        return [PairingOut.model_validate(p) for p in await service.pairings_of(uow, who.subject)]


@router.get("/pairings/{pairing_id}", response_model=PairingWithSessionsOut)
async def pairing(
    pairing_id: UUID,
    who: Principal = Depends(require("participant", "admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> PairingWithSessionsOut:
    async with uow:
        found, sessions = await service.pairing_with_sessions(
            uow, pairing_id, who.subject, is_admin="admin" in who.roles
        )
        return PairingWithSessionsOut(
            **PairingOut.model_validate(found).model_dump(),
            sessions=[SessionOut.model_validate(s) for s in sessions],
        )


@router.post(
    "/pairings/{pairing_id}/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
)
async def schedule(
    pairing_id: UUID,
    body: ScheduleIn,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.schedule(
            uow,
            pairing_id,
            who.subject,
            starts_at=body.starts_at,
            duration_minutes=body.duration_minutes,
            agenda=body.agenda,
        )
        await uow.commit()
        return SessionOut.model_validate(session)


@router.post("/sessions/{session_id}/complete", response_model=SessionOut)
async def complete(
    session_id: UUID,
    body: CompleteIn,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> SessionOut:
    async with uow:
        session = await service.complete(
            uow,
            session_id,
            who.subject,
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
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> FeedbackOut:
    async with uow:
        feedback = await service.give_feedback(
            uow, session_id, who.subject, ratings=body.ratings, comment=body.comment
        )
        await uow.commit()
        return FeedbackOut.model_validate(feedback)
