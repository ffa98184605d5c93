"""Use cases on learning goals: the pair adds and updates them; the program owner reads them."""

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select

from crossgen_sessions import lookup, rules
from crossgen_sessions.access import Caller
from crossgen_sessions.models import Goal
from crossgen_shared.errors import NotFound
from crossgen_shared.unit_of_work import UnitOfWork


async def add(
    uow: UnitOfWork, pairing_id: UUID, person_id: str, *, title: str, progress: int
) -> Goal:
    pairing = await lookup.pairing(uow, pairing_id)
    participant_id = rules.participant_in(pairing.pair, person_id)
    goal = Goal(pairing_id=pairing.id, title=title, progress=progress, created_by=participant_id)
    uow.session.add(goal)
    await uow.session.flush()
    return goal


async def update(
    uow: UnitOfWork, goal_id: UUID, person_id: str, *, title: str | None, progress: int | None
) -> Goal:
    goal = await uow.session.get(Goal, goal_id, with_for_update=True)
    if goal is None:
        raise NotFound(f"goal {goal_id} does not exist")
    pairing = await lookup.pairing(uow, goal.pairing_id)
    rules.participant_in(pairing.pair, person_id)
    if title is not None:
        goal.title = title
    if progress is not None:
        goal.progress = progress
    goal.updated_at = datetime.now(UTC)
    return goal


async def of_pairing(uow: UnitOfWork, pairing_id: UUID, reader: Caller) -> list[Goal]:
    await lookup.readable_pairing(uow, pairing_id, reader)
    goals = await uow.session.scalars(
        select(Goal).where(Goal.pairing_id == pairing_id).order_by(Goal.created_at)
    )
    return list(goals)
