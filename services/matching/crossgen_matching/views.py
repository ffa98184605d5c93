"""HTTP API of the matching service."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, status
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from crossgen_matching import admission, program_admin_views, service
from crossgen_matching.catalogue import SkillName
from crossgen_matching.models import MIDDLE_LEVEL
from crossgen_shared import time_zones
from crossgen_shared.addresses import EmailAddress
from crossgen_shared.auth import Principal, require
from crossgen_shared.events import Role
from crossgen_shared.paging import Page
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter()
router.include_router(program_admin_views.router)


class ProgramIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ProgramOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    name: str
    created_at: datetime


def _plain_name_is_middle_level(value: object) -> object:
    # Enrolments from before skill levels send plain names.
    return {"name": value, "level": MIDDLE_LEVEL} if isinstance(value, str) else value


class SkillIn(BaseModel):
    name: SkillName
    level: int = Field(ge=1, le=5, description="learners: how much wanted; mentors: how well known")


class ProfileIn(BaseModel):
    """What a participant tells matching about themselves, all of it: a field left out takes its
    default, as at enrolment."""

    skills: list[Annotated[SkillIn, BeforeValidator(_plain_name_is_middle_level)]] = Field(
        min_length=1, max_length=50, description="to learn or to teach; a plain name is level 3"
    )
    capacity: int = Field(default=1, ge=1, le=3, description="mentors: how many learners at once")
    languages: list[Annotated[str, Field(min_length=2, max_length=35)]] = Field(
        default_factory=lambda: ["en"], min_length=1, max_length=20
    )
    timezone: str = Field(default="UTC", description="IANA name, e.g. Europe/Berlin")
    work_start: int = Field(default=9, ge=0, le=23, description="local hour the working day starts")
    work_end: int = Field(default=17, ge=0, le=23, description="local hour it ends")
    goals: str = Field(default="", max_length=2000)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        return time_zones.known(name)

    @field_validator("languages")
    @classmethod
    def _lower_case(cls, languages: list[str]) -> list[str]:
        return sorted({language.strip().lower() for language in languages})

    def skill_levels(self) -> dict[str, int]:
        """Name -> level; a skill named twice keeps its higher level."""
        levels: dict[str, int] = {}
        for skill in self.skills:
            levels[skill.name] = max(skill.level, levels.get(skill.name, 0))
        return levels

    def profile(self) -> service.Profile:
        return service.Profile(
            languages=self.languages,
            timezone=self.timezone,
            work_start=self.work_start,
            work_end=self.work_end,
            goals=self.goals,
        )


class EnrolmentIn(ProfileIn):
    role: Role
    display_name: str = Field(min_length=1, max_length=200)
    email: EmailAddress


class SkillOut(BaseModel):
    name: str
    level: int


class ParticipantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    program_id: UUID
    person_id: str
    role: Role
    display_name: str
    skills: list[SkillOut]
    capacity: int
    languages: list[str]
    timezone: str
    work_start: int
    work_end: int
    goals: str
    status: str

    @field_validator("skills", mode="before")
    @classmethod
    def _from_levels(cls, skills: object) -> object:
        if isinstance(skills, dict):
            return [{"name": name, "level": level} for name, level in sorted(skills.items())]
        return skills


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
        employee = await admission.check_self_enrolment(uow, program_id, who.subject, body.role)
        participant = await service.enrol(
            uow,
            program_id=program_id,
            person_id=who.subject,
            role=body.role,
            display_name=body.display_name,
            email=str(body.email),
            skills=body.skill_levels(),
            capacity=body.capacity,
            profile=body.profile(),
            employee=employee,  # locked already: not asked for again
        )
        await uow.commit()
        return ParticipantOut.model_validate(participant)


@router.get("/programs/{program_id}/enrolments/me", response_model=ParticipantOut)
async def my_enrolment(
    program_id: UUID,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> ParticipantOut:
    async with uow:
        participant = await service.participant_of(uow, program_id, who.subject)
        return ParticipantOut.model_validate(participant)


@router.put("/programs/{program_id}/enrolments/me", response_model=ParticipantOut)
async def change_my_profile(
    program_id: UUID,
    body: ProfileIn,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> ParticipantOut:
    async with uow:
        participant = await service.change_profile(
            uow,
            program_id,
            who.subject,
            skills=body.skill_levels(),
            capacity=body.capacity,
            profile=body.profile(),
        )
        await uow.commit()
        return ParticipantOut.model_validate(participant)


@router.get("/programs/{program_id}/pairings", response_model=list[PairingOut])
async def program_pairings(
    program_id: UUID,
    page: Annotated[Page, Query()],
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> list[PairingOut]:
    """The program's pairings, proposed, answered or closed, the oldest proposal first: a page at
    a time (``limit``, ``offset``)."""
    async with uow:
        pairings = await service.pairings_in(uow, program_id, page.limit, page.offset)
        return [PairingOut.model_validate(p) for p in pairings]


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


class DeclineIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/pairings/{pairing_id}/decline", response_model=PairingOut)
async def decline(
    pairing_id: UUID,
    body: DeclineIn,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> PairingOut:
    async with uow:
        pairing = await service.decline(uow, pairing_id, who.subject, body.reason)
        await uow.commit()
        return PairingOut.model_validate(pairing)
