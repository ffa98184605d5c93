"""HTTP API of learning goals: add, update progress (0 to 100 %), list."""

from datetime import datetime
from typing import Self
from uuid import UUID

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossgen_sessions.access import Caller, caller
from crossgen_sessions.goals import service
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter(tags=["goals"])


class GoalIn(BaseModel):
    title: str = Field(min_length=1, max_length=200, description="What the learner aims for")
    progress: int = Field(default=0, ge=0, le=100, description="How far along, in per cent")


class GoalUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    progress: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.title is None and self.progress is None:
            raise ValueError("give a title, a progress, or both")
        return self


class GoalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    pairing_id: UUID
    title: str
    progress: int
    created_by: UUID
    created_at: datetime
    updated_at: datetime


@router.post(
    "/pairings/{pairing_id}/goals", status_code=status.HTTP_201_CREATED, response_model=GoalOut
)
async def add_goal(
    pairing_id: UUID,
    body: GoalIn,
    who: Caller = Depends(caller("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> GoalOut:
    async with uow:
        goal = await service.add(
            uow, pairing_id, who.person_id, title=body.title, progress=body.progress
        )
        await uow.commit()
        return GoalOut.model_validate(goal)


@router.patch("/goals/{goal_id}", response_model=GoalOut)
async def update_goal(
    goal_id: UUID,
    body: GoalUpdate,
    who: Caller = Depends(caller("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> GoalOut:
    async with uow:
        goal = await service.update(
            uow, goal_id, who.person_id, title=body.title, progress=body.progress
        )
        await uow.commit()
        return GoalOut.model_validate(goal)


@router.get("/pairings/{pairing_id}/goals", response_model=list[GoalOut])
async def goals(
    pairing_id: UUID,
    who: Caller = Depends(caller("participant", "admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[GoalOut]:
    async with uow:
        return [GoalOut.model_validate(g) for g in await service.of_pairing(uow, pairing_id, who)]
