"""HTTP API of a program owner's matching runs, weights, pins and forbidden pairs, who the
program admits, and the skills it knows."""

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import Literal, Self
from uuid import UUID

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crossgen_matching import admission, automatic_enrolment, optimiser, program_admin
from crossgen_matching.catalogue import SkillName
from crossgen_matching.eligibility import ProgramRules
from crossgen_matching.models import AutomaticEnrolment
from crossgen_shared.auth import Principal, require
from crossgen_shared.errors import NotFound
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter()


class PairIn(BaseModel):
    learner_id: UUID
    mentor_id: UUID


class ProposalOut(BaseModel):
    learner_id: UUID
    mentor_id: UUID
    score: float
    explanation: list[str]
    pinned: bool


class UnmatchedOut(BaseModel):
    learner_id: UUID
    cause: str
    reason: str


class ScoresOut(BaseModel):
    count: int
    total: float
    mean: float
    minimum: float
    p10: float
    median: float
    p90: float
    maximum: float


class RunOut(BaseModel):
    learners: int
    mentors: int
    accepted: int = Field(description="accepted pairings, kept as they are")
    kept: int = Field(description="open proposals the run proposes again")
    withdrawn: int = Field(description="open proposals the run takes back")
    proposed: list[ProposalOut] = Field(description="new proposals")
    scores: ScoresOut = Field(description="of every pairing the run proposes, kept or new")
    unmatched: list[UnmatchedOut]
    free_capacity: dict[UUID, int] = Field(description="mentor -> places left")
    problem: str | None = Field(description="why publishing would be refused")

    @classmethod
    def of(cls, run: program_admin.Run) -> "RunOut":
        program, result, people = run.current.program, run.result, run.current.participants
        return cls(
            learners=len(program.learners),
            mentors=len(program.mentors),
            accepted=len(program.accepted),
            kept=len(run.kept),
            withdrawn=len(run.withdrawn),
            proposed=[
                ProposalOut(
                    learner_id=people[p.learner_id].id,
                    mentor_id=people[p.mentor_id].id,
                    score=p.score,
                    explanation=list(p.explanation),
                    pinned=p.pinned,
                )
                for p in run.new
            ],
            scores=ScoresOut.model_validate(result.stats, from_attributes=True),
            unmatched=[
                UnmatchedOut(
                    learner_id=people[u.learner_id].id, cause=u.cause.value, reason=u.reason
                )
                for u in result.unmatched
            ],
            free_capacity={people[m].id: n for m, n in result.free_capacity.items()},
            problem=run.problem,
        )


class WeightsBody(BaseModel):
    """How the program values each part of a pair's score (the optimiser's Weights)."""

    skills: float = Field(ge=0, le=1)
    cross_department: float = Field(ge=0, le=1)
    cross_generation: float = Field(ge=0, le=1)
    working_hours: float = Field(ge=0, le=1)
    full_tenure_gap: float = Field(gt=0, le=50, description="years for the full generation bonus")
    full_level_gap: float = Field(gt=0, le=20, description="job levels for the full bonus")

    @model_validator(mode="after")
    def some_part_counts(self) -> Self:
        if not self.skills + self.cross_department + self.cross_generation + self.working_hours:
            raise ValueError("the weights must not all be zero")
        return self


@router.get("/programs/{program_id}/weights", response_model=WeightsBody)
async def get_weights(
    program_id: UUID,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> WeightsBody:
    async with uow:
        return WeightsBody(**asdict(await program_admin.weights(uow, program_id)))


@router.put("/programs/{program_id}/weights", response_model=WeightsBody)
async def put_weights(
    program_id: UUID,
    body: WeightsBody,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> WeightsBody:
    async with uow:
        await program_admin.set_weights(uow, program_id, optimiser.Weights(**body.model_dump()))
        await uow.commit()
    return body


class EligibleOut(BaseModel):
    learner: int
    mentor: int


class AutomaticEnrolmentOut(BaseModel):
    """The enrolment of the directory's eligible people since the latest switch to automatic."""

    model_config = ConfigDict(from_attributes=True)

    state: Literal["enrolling", "retrying", "done"] = Field(
        description="retrying: its latest batch failed, and is tried again at next_attempt_at"
    )
    to_check: int = Field(
        description="employees it looks at: present, with an email, not in the program at its start"
    )
    checked: int = Field(description="employees it has looked at so far")
    enrolled: int = Field(description="people it has enrolled so far")
    started_at: datetime
    finished_at: datetime | None
    failures: int = Field(description="its batch's failures in a row; 0 once a batch succeeds")
    last_error: str | None = Field(description="why the latest of those failures happened")
    next_attempt_at: datetime | None = Field(
        validation_alias="retry_at", description="when a failed batch is tried again"
    )


class EligibilityOut(ProgramRules):
    eligible: EligibleOut = Field(description="present employees who meet each role's rules")
    automatic_enrolment: AutomaticEnrolmentOut | None = Field(
        default=None,
        description="an automatic program's enrolment of the directory, in the background;"
        " follow it at GET /programs/{program_id}/automatic-enrolment",
    )


@router.get("/programs/{program_id}/eligibility", response_model=EligibilityOut)
async def get_eligibility(
    program_id: UUID,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> EligibilityOut:
    async with uow:
        rules = admission.rules_of(await admission.program(uow, program_id))
        return await _eligibility(uow, rules, await automatic_enrolment.progress(uow, program_id))


@router.put("/programs/{program_id}/eligibility", response_model=EligibilityOut)
async def put_eligibility(
    program_id: UUID,
    body: ProgramRules,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> EligibilityOut:
    """Set who the program admits in each role; switching to (or staying) automatic starts the
    enrolment of every present, eligible employee with an email who is not in the program yet,
    in the background (``automatic_enrolment`` in the answer)."""
    async with uow:
        run = await automatic_enrolment.set_rules(uow, program_id, body)
        out = await _eligibility(uow, body, run)
        await uow.commit()
        return out


@router.get("/programs/{program_id}/automatic-enrolment", response_model=AutomaticEnrolmentOut)
async def get_automatic_enrolment(
    program_id: UUID,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> AutomaticEnrolmentOut:
    """How far the enrolment started by the latest switch to automatic has got."""
    async with uow:
        run = await automatic_enrolment.progress(uow, program_id)
        if run is None:
            raise NotFound(
                f"program {program_id} does not enrol automatically: PUT"
                f' /programs/{program_id}/eligibility with "enrolment": "automatic" starts it'
            )
        return AutomaticEnrolmentOut.model_validate(run)  # read while the session is open


async def _eligibility(
    uow: UnitOfWork, rules: ProgramRules, run: AutomaticEnrolment | None
) -> EligibilityOut:
    eligible = EligibleOut(**await admission.eligible(uow.session, rules))
    progress = AutomaticEnrolmentOut.model_validate(run) if run else None
    return EligibilityOut(**dict(rules), eligible=eligible, automatic_enrolment=progress)


class SkillCatalogueBody(BaseModel):
    """The skill names people may enrol with, stored as enrolment stores them (lower case, single
    spaces, each once, sorted); null: any."""

    # A misspelt key would otherwise read as no catalogue at all.
    model_config = ConfigDict(extra="forbid")

    skills: list[SkillName] | None = Field(default=None, min_length=1, max_length=1000)

    @field_validator("skills")
    @classmethod
    def _each_once(cls, names: list[str] | None) -> list[str] | None:
        return sorted(set(names)) if names is not None else None


@router.get("/programs/{program_id}/skills", response_model=SkillCatalogueBody)
async def get_skill_catalogue(
    program_id: UUID,
    # Participants too: a refused enrolment sends them here.
    _: Principal = Depends(require("admin", "participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> SkillCatalogueBody:
    async with uow:
        chosen = await admission.program(uow, program_id)
        return SkillCatalogueBody(skills=chosen.skill_catalogue)


@router.put("/programs/{program_id}/skills", response_model=SkillCatalogueBody)
async def put_skill_catalogue(
    program_id: UUID,
    body: SkillCatalogueBody,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> SkillCatalogueBody:
    """Set the skills later enrolments and profile changes may name; participants already in
    keep theirs."""
    async with uow:
        await program_admin.set_skill_catalogue(uow, program_id, body.skills)
        await uow.commit()
    return body


@router.post("/programs/{program_id}/matching/preview", response_model=RunOut)
async def preview_matching(
    program_id: UUID,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    async with uow:
        run = await program_admin.preview(uow, program_id)
    return await _answer(run)


@router.post("/programs/{program_id}/matching/publish", response_model=RunOut)
async def publish_matching(
    program_id: UUID,
    _: Principal = Depends(require("admin")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    async with uow:
        run = await program_admin.publish(uow, program_id)
        await uow.commit()
    return await _answer(run)


async def _answer(run: program_admin.Run) -> Response:
    """``run`` as its ``RunOut``, written in a thread: a run that proposes 20,000 pairings is an
    answer of 11 MB, which held the event loop for 0.2 s."""
    body = await asyncio.to_thread(lambda: RunOut.of(run).model_dump_json().encode())
    return Response(body, media_type="application/json")


def _pair_rule_routes(kind: str, path: str) -> None:
    @router.post(f"/programs/{{program_id}}/{path}", status_code=status.HTTP_204_NO_CONTENT)
    async def add(
        program_id: UUID,
        body: PairIn,
        _: Principal = Depends(require("admin")),
        uow: UnitOfWork = Depends(unit_of_work),
    ) -> None:
        async with uow:
            await program_admin.add_rule(uow, program_id, kind, body.learner_id, body.mentor_id)
            await uow.commit()

    @router.delete(f"/programs/{{program_id}}/{path}", status_code=status.HTTP_204_NO_CONTENT)
    async def remove(
        program_id: UUID,
        body: PairIn,
        _: Principal = Depends(require("admin")),
        uow: UnitOfWork = Depends(unit_of_work),
    ) -> None:
        async with uow:
            await program_admin.remove_rule(uow, program_id, kind, body.learner_id, body.mentor_id)
            await uow.commit()


_pair_rule_routes("pinned", "pins")
_pair_rule_routes("forbidden", "forbidden")
