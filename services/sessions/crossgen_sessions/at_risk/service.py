"""Finding pairings at risk on a schedule, safely with several replicas; listing those still open.

Every replica runs the check. Each batch of active pairings is taken ``FOR NO KEY UPDATE SKIP
LOCKED``, so replicas share the work instead of repeating it, while participants can still add
sessions to them. A finding is recorded as an at-risk mark, unique per episode, in the same
transaction as its PairingAtRisk in the outbox: however often and wherever the same episode is
found again, it is announced once.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert

from crossgen_sessions.at_risk.rules import History, Outcome, Policy, Risk, risks
from crossgen_sessions.models import AtRiskMark, Pairing, Session
from crossgen_shared.events import PairingAtRisk
from crossgen_shared.periodic import every
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


async def check(
    unit_of_work: Callable[[], UnitOfWork], policy: Policy, now: datetime, *, batch_size: int = 200
) -> int:
    """Look at every active pairing once, as of ``now``; returns how many were announced."""
    announced = 0
    after: UUID | None = None
    while True:
        async with unit_of_work() as uow:
            query = (
                select(Pairing)
                .where(Pairing.status == "active")
                .order_by(Pairing.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True, key_share=True)
            )
            if after is not None:
                query = query.where(Pairing.id > after)
            batch = list(await uow.session.scalars(query))
            outcomes = await _outcomes(uow, [pairing.id for pairing in batch])
            for pairing in batch:
                history = History(pairing.opened_at, pairing.ends_on, outcomes[pairing.id])
                for risk in risks(history, policy, now):
                    if await _mark(uow, pairing, risk, now):
                        await uow.emit(
                            PairingAtRisk(
                                pairing_id=pairing.id,
                                program_id=pairing.program_id,
                                learner_id=pairing.learner_id,
                                mentor_id=pairing.mentor_id,
                                reason=risk.detail,
                                detected_at=now,
                            )
                        )
                        announced += 1
            await uow.commit()
        if len(batch) < batch_size:
            return announced
        after = batch[-1].id


async def watch(unit_of_work: Callable[[], UnitOfWork], policy: Policy, interval: float) -> None:
    """The service's background worker: a check every ``interval`` seconds until cancelled."""

    async def run() -> None:
        if announced := await check(unit_of_work, policy, datetime.now(UTC)):
            log.info("%d pairing(s) newly at risk", announced)

    await every(interval, "at-risk check", run, log)


@dataclass(frozen=True)
class OpenRisk:
    """A pairing found at risk that is still active and has not met since."""

    pairing: Pairing
    mark: AtRiskMark


async def open_risks(uow: UnitOfWork, program_id: UUID) -> list[OpenRisk]:
    met_since = exists().where(
        Session.pairing_id == AtRiskMark.pairing_id, Session.held_at > AtRiskMark.since
    )
    rows = await uow.session.execute(
        select(Pairing, AtRiskMark)
        .join(AtRiskMark, AtRiskMark.pairing_id == Pairing.id)
        .where(Pairing.program_id == program_id, Pairing.status == "active", ~met_since)
        .order_by(AtRiskMark.detected_at.desc(), Pairing.id, AtRiskMark.reason)
    )
    return [OpenRisk(pairing, mark) for pairing, mark in rows]


async def _outcomes(uow: UnitOfWork, pairing_ids: list[UUID]) -> dict[UUID, list[Outcome]]:
    sessions = await uow.session.scalars(
        select(Session).where(
            Session.pairing_id.in_(pairing_ids), Session.status.in_(("completed", "no_show"))
        )
    )
    outcomes: dict[UUID, list[Outcome]] = defaultdict(list)
    for session in sessions:
        held_at = session.held_at
        outcomes[session.pairing_id].append(
            Outcome(at=held_at or session.starts_at, held=held_at is not None)
        )
    return outcomes


async def _mark(uow: UnitOfWork, pairing: Pairing, risk: Risk, now: datetime) -> bool:
    """Record the finding; False if this episode was recorded before."""
    inserted = await uow.session.execute(
        insert(AtRiskMark)
        .values(
            id=uuid4(),
            pairing_id=pairing.id,
            reason=risk.reason.value,
            since=risk.since,
            detail=risk.detail,
            detected_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_at_risk_marks_episode")
        .returning(AtRiskMark.id)
    )
    return inserted.first() is not None
