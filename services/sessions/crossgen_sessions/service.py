"""Use cases of the sessions service. Each runs inside a unit of work the caller commits."""

from datetime import UTC, datetime
from typing import TypedDict
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from crossgen_sessions import rules
from crossgen_sessions.models import Feedback, Pairing, Session
from crossgen_shared.envelope import Envelope
from crossgen_shared.errors import Conflict, NotFound
from crossgen_shared.events import (
    BenefitRatings,
    FeedbackSubmitted,
    MatchAccepted,
    PairingEnded,
    SessionCompleted,
    SessionScheduled,
)
from crossgen_shared.unit_of_work import UnitOfWork

# --- what matching tells us ----------------------------------------------------------------


async def on_match_accepted(event: MatchAccepted, _: Envelope, uow: UnitOfWork) -> None:
    """Open the pairing. The inbox drops redeliveries; a second announcement changes nothing."""
    await uow.session.execute(
        insert(Pairing)
        .values(
            id=event.pairing_id,
            program_id=event.program_id,
            learner_id=event.learner_id,
            mentor_id=event.mentor_id,
            learner_person_id=event.learner_person_id,
            mentor_person_id=event.mentor_person_id,
            status="active",
            opened_at=event.accepted_at,
        )
        .on_conflict_do_nothing(index_elements=[Pairing.id])
    )


async def on_pairing_ended(event: PairingEnded, _: Envelope, uow: UnitOfWork) -> None:
    # No NotReady for an unknown pairing: both events share a topic and key, so MatchAccepted
    # would have come first. Unknown means it ended before it was accepted: nothing to end here.
    await uow.session.execute(
        update(Pairing)
        .where(Pairing.id == event.pairing_id, Pairing.status == "active")
        .values(status="ended", ended_at=event.ended_at)
    )


# --- what participants do ------------------------------------------------------------------


async def schedule(
    uow: UnitOfWork,
    pairing_id: UUID,
    person_id: str,
    *,
    starts_at: datetime,
    duration_minutes: int,
    agenda: str,
) -> Session:
    # Locked so that a pairing ending at the same moment cannot get a new session.
    pairing = await _pairing(uow, pairing_id, lock=True)
    rules.participant_in(pairing.pair, person_id)
    rules.ensure_schedulable(pairing.status, starts_at, datetime.now(UTC))
    session = Session(
        pairing_id=pairing.id,
        starts_at=starts_at,
        duration_minutes=duration_minutes,
        agenda=agenda,
    )
    uow.session.add(session)
    await uow.session.flush()
    await uow.emit(
        SessionScheduled(
            **_about(session, pairing), starts_at=starts_at, duration_minutes=duration_minutes
        )
    )
    return session


async def complete(
    uow: UnitOfWork,
    session_id: UUID,
    person_id: str,
    *,
    held_minutes: int,
    ratings: BenefitRatings,
    comment: str,
) -> Session:
    """Mark a session held, with the caller's feedback on it."""
    session, pairing = await _session(uow, session_id)
    participant_id = rules.participant_in(pairing.pair, person_id)
    rules.ensure_completable(session.status)
    session.status = "completed"
    session.held_minutes = held_minutes
    session.completed_at = datetime.now(UTC)
    await uow.emit(
        SessionCompleted(
            **_about(session, pairing),
            held_minutes=held_minutes,
            completed_at=session.completed_at,
        )
    )
    await _record_feedback(uow, session, pairing, participant_id, ratings, comment)
    return session


async def give_feedback(
    uow: UnitOfWork, session_id: UUID, person_id: str, *, ratings: BenefitRatings, comment: str
) -> Feedback:
    session, pairing = await _session(uow, session_id)
    participant_id = rules.participant_in(pairing.pair, person_id)
    rules.ensure_feedback_open(session.status)
    return await _record_feedback(uow, session, pairing, participant_id, ratings, comment)


async def pairings_of(uow: UnitOfWork, person_id: str) -> list[Pairing]:
    rows = await uow.session.scalars(
        select(Pairing)
        .where(or_(Pairing.learner_person_id == person_id, Pairing.mentor_person_id == person_id))
        .order_by(Pairing.opened_at)
    )
    return list(rows)


async def pairing_with_sessions(
    uow: UnitOfWork, pairing_id: UUID, person_id: str, *, is_admin: bool
) -> tuple[Pairing, list[Session]]:
    pairing = await _pairing(uow, pairing_id)
    rules.ensure_may_read(pairing.pair, person_id, is_admin=is_admin)
    sessions = await uow.session.scalars(
        select(Session).where(Session.pairing_id == pairing_id).order_by(Session.starts_at)
    )
    return pairing, list(sessions)


# --- helpers -------------------------------------------------------------------------------


async def _pairing(uow: UnitOfWork, pairing_id: UUID, *, lock: bool = False) -> Pairing:
    pairing = await uow.session.get(Pairing, pairing_id, with_for_update=lock)
    if pairing is None:
        raise NotFound(
            f"pairing {pairing_id} is not known to sessions (yet): "
            "it arrives shortly after both sides accept the match"
        )
    return pairing


async def _session(uow: UnitOfWork, session_id: UUID) -> tuple[Session, Pairing]:
    # Locked so that two participants completing at once cannot both succeed.
    session = await uow.session.get(Session, session_id, with_for_update=True)
    if session is None:
        raise NotFound(f"session {session_id} does not exist")
    pairing = await uow.session.get(Pairing, session.pairing_id)
    assert pairing is not None  # foreign key
    return session, pairing


async def _record_feedback(
    uow: UnitOfWork,
    session: Session,
    pairing: Pairing,
    participant_id: UUID,
    ratings: BenefitRatings,
    comment: str,
) -> Feedback:
    feedback = Feedback(
        session_id=session.id,
        participant_id=participant_id,
        ratings=ratings.model_dump(),
        comment=comment,
    )
    uow.session.add(feedback)
    try:
        await uow.session.flush()
    except IntegrityError as exc:
        raise Conflict("you have already given feedback on this session") from exc
    await uow.emit(
        FeedbackSubmitted(
            **_about(session, pairing),
            participant_id=participant_id,
            ratings=ratings,
            comment=comment,
            submitted_at=feedback.submitted_at,
        )
    )
    return feedback


class _About(TypedDict):
    """What every session event says it is about."""

    session_id: UUID
    pairing_id: UUID
    program_id: UUID
    learner_id: UUID
    mentor_id: UUID


def _about(session: Session, pairing: Pairing) -> _About:
    return _About(
        session_id=session.id,
        pairing_id=pairing.id,
        program_id=pairing.program_id,
        learner_id=pairing.learner_id,
        mentor_id=pairing.mentor_id,
    )
