"""HTTP API of the matching service."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from crossgen_matching import service
from crossgen_shared.auth import Principal, require
from crossgen_shared.events import Role
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter()


class ProgramIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ProgramOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    name: str
    created_at: datetime


class EnrolmentIn(BaseModel):
    role: Role
    display_name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    skills: list[str] = Field(min_length=1, max_length=50, description="to learn or to teach")
    capacity: int = Field(default=1, ge=1, le=3, description="mentors: how many learners at once")


class ParticipantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    program_id: UUID
    person_id: str
    role: Role
    display_name: str
    skills: list[str]
    capacity: int
    status: str


class PairingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    program_id: UUID
    learner_id: UUID
    mentor_id: UUID
    status: str
    score: float
    explanation: list[str]
    learner_accepted: bool
    mentor_accepted: bool


@router.post("/programs", status_code=status.HTTP_201_CREATED, response_model=ProgramOut)
async def create_program(
    body: ProgramIn,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> ProgramOut:
    async with uow:
        program = await service.create_program(uow, body.name)
        await uow.commit()
        return ProgramOut.model_validate(program)


@router.post(
    "/programs/{program_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    response_model=ParticipantOut,
)
async def enrol(
    program_id: UUID,
    body: EnrolmentIn,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> ParticipantOut:
    async with uow:
        participant = await service.enrol(
            uow,
            program_id=program_id,
            person_id=who.subject,
            role=body.role,
            display_name=body.display_name,
            email=str(body.email),
            skills=body.skills,
            capacity=body.capacity,
        )
        await uow.commit()
        return ParticipantOut.model_validate(participant)


@router.get("/programs/{program_id}/pairings", response_model=list[PairingOut])
async def program_pairings(
    program_id: UUID,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[PairingOut]:
    async with uow:
        return [PairingOut.model_validate(p) for p in await service.pairings_in(uow, program_id)]


@router.get("/me/pairings", response_model=list[PairingOut])
async def my_pairings(
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[PairingOut]:
    async with uow:
        return [PairingOut.model_validate(p) for p in await service.pairings_of(uow, who.subject)]


@router.post("/pairings/{pairing_id}/accept", response_model=PairingOut)
async def accept(
    pairing_id: UUID,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> PairingOut:
    async with uow:
        pairing = await service.accept(uow, pairing_id, who.subject)
        await uow.commit()
        return PairingOut.model_validate(pairing)
