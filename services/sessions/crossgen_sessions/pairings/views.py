"""HTTP API of pairings: mine, one pairing's history, and its end date."""

from datetime import date, datetime
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from crossgen_sessions.access import Caller, caller
from crossgen_sessions.pairings import service
from crossgen_sessions.sessions.views import SessionOut
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter(tags=["pairings"])


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
    ends_on: date | None = Field(description="The last day the pair plans to meet (UTC)")


class PairingWithSessionsOut(PairingOut):
    sessions: list[SessionOut] = Field(description="Every session, by start time")


class EndDateIn(BaseModel):
    ends_on: date = Field(description="Today or later: earlier finishes early, later extends")


@router.get("/me/pairings", response_model=list[PairingOut])
async def my_pairings(
    who: Caller = Depends(caller("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[PairingOut]:
    async with uow:
        return [PairingOut.model_validate(p) for p in await service.pairings_of(uow, who.person_id)]


@router.get("/pairings/{pairing_id}", response_model=PairingWithSessionsOut)
async def pairing(
    pairing_id: UUID,
    who: Caller = Depends(caller("participant", "admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> PairingWithSessionsOut:
    async with uow:
        found, sessions = await service.history(uow, pairing_id, who)
        return PairingWithSessionsOut(
            **PairingOut.model_validate(found).model_dump(),
            sessions=[SessionOut.model_validate(s) for s in sessions],
        )


@router.put("/pairings/{pairing_id}/end-date", response_model=PairingOut)
async def set_end_date(
    pairing_id: UUID,
    body: EndDateIn,
    who: Caller = Depends(caller("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> PairingOut:
    async with uow:
        found = await service.set_end_date(uow, pairing_id, who.person_id, body.ends_on)
        await uow.commit()
        return PairingOut.model_validate(found)
