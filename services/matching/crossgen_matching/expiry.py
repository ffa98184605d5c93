"""Proposals nobody answers expire: after ``max_age`` they close and both sides are matched anew."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select

from crossgen_matching import live_cache, service
from crossgen_matching.models import Pairing, Program
from crossgen_shared.periodic import every
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
# Proposals expired in one transaction. A launch's proposals, made within minutes of each other,
# expire together: 2,000 of them re-matched in one transaction took 150 s, the program locked for
# its joins meanwhile, and any failure would have undone it all (services/matching/README.md).
EXPIRED_AT_A_TIME = 20


async def expire_due(
    uow: UnitOfWork, now: datetime, max_age: timedelta, limit: int = EXPIRED_AT_A_TIME
) -> int:
    """Expire up to ``limit`` proposals older than ``max_age`` and re-match both sides; returns
    how many.

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
        if expired == limit:
            break
        pairings = list(
            await uow.session.scalars(
                select(Pairing)
                .where(due, Pairing.program_id == program_id)
                .order_by(Pairing.proposed_at, Pairing.id)
                .limit(limit - expired)
                .with_for_update(skip_locked=True)
            )
        )
        if pairings:
            await _expire(uow, program_id, pairings, f"expired after {max_age.days} days", now)
        expired += len(pairings)
    return expired


async def _expire(
    uow: UnitOfWork, program_id: UUID, pairings: list[Pairing], reason: str, now: datetime
) -> None:
    """Close ``pairings`` and re-match both sides in the program's live matching: the one kept
    since the last transaction's expiries when nothing else has changed, so a launch's backlog
    reads its program once, not once a transaction (a read of the whole program: seconds at
    launch size)."""
    revision = await service.lock_matching(uow, program_id)
    assert revision is not None  # locked above
    matching = await live_cache.current(uow.session, program_id, revision, now)
    pair_of = {pairing_id: pair for pair, pairing_id in matching.proposals.items()}
    await service.withdraw(uow, pairings, None, reason, status="expired")
    for pairing in pairings:
        del matching.proposals[pair_of[pairing.id]]
    for repaired in matching.live.expire([pair_of[pairing.id] for pairing in pairings]):
        made, _ = await service.carry_out(uow, matching, repaired)
        live_cache.settle(matching, {pair: pairing.id for pair, pairing in made.items()})
    await live_cache.keep(uow, matching)


async def expire_backlog(unit_of_work: Callable[[], UnitOfWork], max_age: timedelta) -> int:
    """Expire what is due, ``EXPIRED_AT_A_TIME`` a transaction, until nothing is; returns how
    many. Each transaction's work stays once committed, and the programs' locks are let go between
    two, for their joins and answers."""
    total = 0
    while True:
        async with unit_of_work() as uow:
            expired = await expire_due(uow, datetime.now(UTC), max_age, EXPIRED_AT_A_TIME)
            await uow.commit()
        total += expired
        if expired < EXPIRED_AT_A_TIME:
            return total


async def watch(
    unit_of_work: Callable[[], UnitOfWork], max_age: timedelta, interval: float
) -> None:
    """The background worker: expire what is due every ``interval`` seconds until cancelled."""

    async def run() -> None:
        expired = await expire_backlog(unit_of_work, max_age)
        if expired:
            log.info("expired %d unanswered proposal(s)", expired)

    await every(interval, "expiring proposals", run, log)
