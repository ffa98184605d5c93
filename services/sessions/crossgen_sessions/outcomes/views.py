"""HTTP API of a program's outcomes, for its owner: the report as JSON or CSV, and an overview.

The report is worked out in a thread of its own: at 10,000 pairings it takes a second or more of
plain Python, which on the event loop would hold up every event and request meanwhile."""

import asyncio
from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from crossgen_sessions.access import Caller, caller
from crossgen_sessions.at_risk.service import open_risks
from crossgen_sessions.outcomes import queries, report
from crossgen_shared.events import Role
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter(tags=["outcomes"])
Owner = Depends(caller("admin"))


class OutcomesOut(BaseModel):
    program_id: UUID
    generated_at: datetime
    rows: list[report.OutcomeRow] = Field(
        description="Per cohort (month opened), department, side and month; "
        "benefit averages are 1 to 5, change is against the group's previous rated month"
    )


class OverviewOut(BaseModel):
    program_id: UUID
    generated_at: datetime
    pairings: report.Funnel
    hours_held: float
    sessions_per_week: list[report.Week]
    benefits: dict[Role, report.Averages] = Field(description="Average rating (1 to 5) by side")


@router.get("/programs/{program_id}/outcomes", response_model=OutcomesOut)
async def outcomes(
    program_id: UUID, who: Caller = Owner, uow: UnitOfWork = Depends(unit_of_work)
) -> OutcomesOut:
    who.ensure_owns(program_id)
    async with uow:
        facts = await queries.program_facts(uow, program_id)
    now = datetime.now(UTC)
    rows = await asyncio.to_thread(report.outcomes, facts, until=now)
    return OutcomesOut(program_id=program_id, generated_at=now, rows=rows)


@router.get(
    "/programs/{program_id}/outcomes.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The report, one row a line"}},
)
async def outcomes_csv(
    program_id: UUID, who: Caller = Owner, uow: UnitOfWork = Depends(unit_of_work)
) -> Response:
    who.ensure_owns(program_id)
    async with uow:
        facts = await queries.program_facts(uow, program_id)
    rows = await asyncio.to_thread(report.outcomes, facts, until=datetime.now(UTC))
    return Response(
        await asyncio.to_thread(report.as_csv, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="outcomes-{program_id}.csv"'},
    )


@router.get("/programs/{program_id}/overview", response_model=OverviewOut)
async def overview(
    program_id: UUID, who: Caller = Owner, uow: UnitOfWork = Depends(unit_of_work)
) -> OverviewOut:
    """What the dashboard draws: the pairings funnel, sessions per week, the six benefits."""
    who.ensure_owns(program_id)
    async with uow:
        facts = await queries.program_facts(uow, program_id)
        at_risk = {risk.pairing.id for risk in await open_risks(uow, program_id)}
    now = datetime.now(UTC)

    def overview() -> OverviewOut:
        return OverviewOut(
            program_id=program_id,
            generated_at=now,
            pairings=report.funnel(facts, at_risk=len(at_risk)),
            hours_held=report.hours_held(facts),
            sessions_per_week=report.sessions_per_week(facts, until=now),
            benefits=report.benefit_profile(facts),
        )

    return await asyncio.to_thread(overview)
