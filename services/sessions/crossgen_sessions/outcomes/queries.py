"""Reading a program's rows for the report: everything sessions knows of its pairings.

A program of 10,000 pairings has some 100,000 sessions and twice as many ratings, read on the
service's event loop: plain rows of the columns the report reads, not ORM objects, and a few
thousand at a time, so that events and requests (probes too) go on in between."""

from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Select, case, select

from crossgen_sessions.models import Feedback, Pairing, Session
from crossgen_sessions.outcomes.report import (
    BENEFITS,
    UNKNOWN_DEPARTMENT,
    PairingFacts,
    ProgramFacts,
    RatingFacts,
    SessionFacts,
)
from crossgen_shared.db import a_few_at_a_time
from crossgen_shared.unit_of_work import UnitOfWork


async def program_facts(uow: UnitOfWork, program_id: UUID) -> ProgramFacts:
    connection = await uow.session.connection()

    async def rows(query: Select[*tuple[Any, ...]]) -> AsyncIterator[Sequence[Any]]:
        result = await connection.execute(query.where(Pairing.program_id == program_id))
        async for some in a_few_at_a_time(result):
            yield some

    pairings = rows(
        select(
            Pairing.id,
            Pairing.opened_at,
            Pairing.ended_at,
            Pairing.learner_department,
            Pairing.mentor_department,
        )
    )
    sessions = rows(
        select(
            Session.pairing_id,
            Session.status,
            Session.held_at,
            Session.starts_at,
            Session.held_minutes,
        ).join(Pairing)
    )
    side = case((Feedback.participant_id == Pairing.learner_id, "learner"), else_="mentor")
    # Each benefit's rating as a number: decoding each feedback's JSON took longer than the rest.
    ratings = [Feedback.ratings[benefit].as_integer() for benefit in BENEFITS]
    feedback = rows(
        select(Session.pairing_id, side, Session.held_at, *ratings)
        .join(Session, Session.id == Feedback.session_id)
        .join(Pairing, Pairing.id == Session.pairing_id)
    )
    return ProgramFacts(
        pairings=[
            PairingFacts(
                pairing_id,
                opened_at,
                ended_at,
                learner_department or UNKNOWN_DEPARTMENT,
                mentor_department or UNKNOWN_DEPARTMENT,
            )
            async for some in pairings
            for pairing_id, opened_at, ended_at, learner_department, mentor_department in some
        ],
        sessions=[
            SessionFacts(pairing_id, status, held_at or starts_at, held_minutes or 0)
            async for some in sessions
            for pairing_id, status, held_at, starts_at, held_minutes in some
        ],
        ratings=[
            RatingFacts(pairing_id, side, held_at, dict(zip(BENEFITS, ratings, strict=True)))
            async for some in feedback
            for pairing_id, side, held_at, *ratings in some
        ],
    )
