"""HTTP API of pairings at risk, for the program owner."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from crossgen_sessions.access import Caller, caller
from crossgen_sessions.at_risk import service
from crossgen_sessions.at_risk.rules import Reason
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter(tags=["outcomes"])


class AtRiskOut(BaseModel):
    pairing_id: UUID
    learner_person_id: str
    mentor_person_id: str
    reason: Reason
    detail: str
    since: datetime
    detected_at: datetime


@router.get("/programs/{program_id}/pairings-at-risk", response_model=list[AtRiskOut])
async def pairings_at_risk(
    program_id: UUID,
    who: Caller = Depends(caller("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[AtRiskOut]:
    """Active pairings found at risk that have not met since, newest first."""
    who.ensure_owns(program_id)
    async with uow:
        return [
            AtRiskOut(
                pairing_id=risk.pairing.id,
                learner_person_id=risk.pairing.learner_person_id,
                mentor_person_id=risk.pairing.mentor_person_id,
                reason=Reason(risk.mark.reason),
                detail=risk.mark.detail,
                since=risk.mark.since,
                detected_at=risk.mark.detected_at,
            )
            for risk in await service.open_risks(uow, program_id)
        ]
