"""Proposals nobody answers expire: after ``max_age`` they close and both sides are matched anew."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from crossgen_matching import service
from crossgen_matching.models import Pairing, Program
from crossgen_shared.periodic import every
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


async def expire_due(uow: UnitOfWork, now: datetime, max_age: timedelta) -> int:
    """Expire every proposal older than ``max_age`` and re-match both sides; returns how many.

    The caller commits. Replicas share the work: each takes the programs and pairings no other
    one holds (SKIP LOCKED), so every proposal expires once. The program row is taken first, as
    matching a newcomer and publishing do, so a program is never repaired by two at once.
    """
    due = (Pairing.status == "proposed") & (Pairing.proposed_at < now - max_age)
    programs = await uow.session.scalars(
        select(Program.id)
        .where(Program.id.in_(select(Pairing.program_id).where(due)))
        .order_by(Program.id)
        .with_for_update(skip_locked=True)
    )
    expired = 0
    for program_id in list(programs):
        pairings = list(
            await uow.session.scalars(
                select(Pairing)
                .where(due, Pairing.program_id == program_id)
                .order_by(Pairing.proposed_at, Pairing.id)
                .with_for_update(skip_locked=True)
            )
        )
        for pairing in pairings:
            reason = f"expired after {max_age.days} days"
            await service.withdraw(uow, pairing, None, reason, status="expired")
        await uow.session.flush()
        for pairing in pairings:
            for side in (pairing.learner_id, pairing.mentor_id):
                await service.match_newcomer(uow, side)
        expired += len(pairings)
    return expired


async def watch(
    unit_of_work: Callable[[], UnitOfWork], max_age: timedelta, interval: float
) -> None:
    """The background worker: expire what is due every ``interval`` seconds until cancelled."""

    async def run() -> None:
        async with unit_of_work() as uow:
            expired = await expire_due(uow, datetime.now(UTC), max_age)
            await uow.commit()
        if expired:
            log.info("expired %d unanswered proposal(s)", expired)

    await every(interval, "expiring proposals", run, log)
