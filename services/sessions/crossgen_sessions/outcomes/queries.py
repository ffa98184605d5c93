"""Reading a program's rows for the report: everything sessions knows of its pairings."""

from uuid import UUID

from sqlalchemy import select

from crossgen_sessions.models import Feedback, Pairing, Session
from crossgen_sessions.outcomes.report import (
    UNKNOWN_DEPARTMENT,
    PairingFacts,
    ProgramFacts,
    RatingFacts,
    SessionFacts,
)
from crossgen_shared.unit_of_work import UnitOfWork


async def program_facts(uow: UnitOfWork, program_id: UUID) -> ProgramFacts:
    pairings = {
        pairing.id: pairing
        for pairing in await uow.session.scalars(
            select(Pairing).where(Pairing.program_id == program_id)
        )
    }
    sessions = list(
        await uow.session.scalars(
            select(Session).join(Pairing).where(Pairing.program_id == program_id)
        )
    )
    feedback = await uow.session.execute(
        select(Feedback.participant_id, Feedback.ratings, Session.pairing_id, Session.held_at)
        .join(Session, Session.id == Feedback.session_id)
        .join(Pairing, Pairing.id == Session.pairing_id)
        .where(Pairing.program_id == program_id)
    )
    return ProgramFacts(
        pairings=[
            PairingFacts(
                p.id,
                p.opened_at,
                p.ended_at,
                p.learner_department or UNKNOWN_DEPARTMENT,
                p.mentor_department or UNKNOWN_DEPARTMENT,
            )
            for p in pairings.values()
        ],
        sessions=[
            SessionFacts(s.pairing_id, s.status, s.held_at or s.starts_at, s.held_minutes or 0)
            for s in sessions
        ],
        ratings=[
            RatingFacts(
                pairing_id=row.pairing_id,
                side=pairings[row.pairing_id].pair.side_of(row.participant_id),
                at=row.held_at,
                ratings=row.ratings,
            )
            for row in feedback
        ],
    )
