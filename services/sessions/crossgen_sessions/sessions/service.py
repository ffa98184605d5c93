"""Use cases on sessions: schedule, reschedule, cancel, mark held or missed, rate.

Each runs inside a unit of work the caller commits; the events it causes go out with it.
"""

from datetime import UTC, datetime, timedelta
from typing import TypedDict
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from crossgen_sessions import lookup, rules
from crossgen_sessions.models import Feedback, Pairing, Session
from crossgen_sessions.rules import Booking, Slot
from crossgen_shared.errors import Conflict
from crossgen_shared.events import (
    BenefitRatings,
    FeedbackSubmitted,
    Role,
    SessionCancelled,
    SessionCompleted,
    SessionScheduled,
)
from crossgen_shared.unit_of_work import UnitOfWork

# SessionCancelled names who cancelled; when nobody did (the pairing ended), the nil UUID.
NOBODY = UUID(int=0)


async def schedule(
    uow: UnitOfWork,
    pairing_id: UUID,
    person_id: str,
    *,
    slot: Slot,
    agenda: str,
    video_link: str | None,
) -> Session:
    # Locked so that a pairing ending at the same moment cannot get a new session.
    pairing = await lookup.pairing(uow, pairing_id, lock=True)
    rules.participant_in(pairing.pair, person_id)
    rules.ensure_schedulable(pairing.status, pairing.ends_on, slot, datetime.now(UTC))
    await _ensure_free(uow, pairing, slot)
    session = Session(
        pairing_id=pairing.id,
        starts_at=slot.starts_at,
        duration_minutes=slot.minutes,
        agenda=agenda,
        video_link=video_link,
    )
    uow.session.add(session)
    await uow.session.flush()
    await _announce(uow, session, pairing)
    return session


async def reschedule(
    uow: UnitOfWork,
    session_id: UUID,
    person_id: str,
    *,
    starts_at: datetime,
    duration_minutes: int | None,
) -> Session:
    session, pairing = await lookup.session(uow, session_id, lock_pairing=True)
    rules.participant_in(pairing.pair, person_id)
    rules.ensure_scheduled(session.status, "rescheduled")
    slot = Slot(starts_at, duration_minutes or session.duration_minutes)
    rules.ensure_schedulable(pairing.status, pairing.ends_on, slot, datetime.now(UTC))
    await _ensure_free(uow, pairing, slot, moving=session.id)
    session.starts_at, session.duration_minutes = slot.starts_at, slot.minutes
    # SessionScheduled again, same session id: a subscriber keeps the newest time per session.
    await _announce(uow, session, pairing)
    return session


async def cancel(uow: UnitOfWork, session_id: UUID, person_id: str, *, reason: str) -> Session:
    session, pairing = await lookup.session(uow, session_id)
    participant_id = rules.participant_in(pairing.pair, person_id)
    rules.ensure_scheduled(session.status, "cancelled")
    await _cancel(uow, session, pairing, by=participant_id, reason=reason)
    return session


async def cancel_upcoming(
    uow: UnitOfWork, pairing: Pairing, *, after: datetime, by: UUID, reason: str
) -> None:
    """Cancel the pairing's scheduled sessions that start at or after ``after``."""
    upcoming = await uow.session.scalars(
        select(Session)
        .where(
            Session.pairing_id == pairing.id,
            Session.status == "scheduled",
            Session.starts_at >= after,
        )
        .order_by(Session.starts_at)
        .with_for_update()
    )
    for session in upcoming:
        await _cancel(uow, session, pairing, by=by, reason=reason)


async def mark_held(
    uow: UnitOfWork, session_id: UUID, person_id: str, *, held_minutes: int
) -> Session:
    session, pairing = await lookup.session(uow, session_id)
    rules.participant_in(pairing.pair, person_id)
    await _hold(uow, session, pairing, held_minutes)
    return session


async def mark_no_show(
    uow: UnitOfWork, session_id: UUID, person_id: str, *, absent: Role | None
) -> Session:
    """Record that a session did not take place because someone did not come."""
    session, pairing = await lookup.session(uow, session_id)
    participant_id = rules.participant_in(pairing.pair, person_id)
    rules.ensure_scheduled(session.status, "marked a no-show")
    rules.ensure_started(session.slot, datetime.now(UTC))
    session.status = "no_show"
    # Usually it is the one who came who says so: the other one was absent.
    session.absent = absent or (
        "mentor" if pairing.pair.side_of(participant_id) == "learner" else "learner"
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
    session, pairing = await lookup.session(uow, session_id)
    participant_id = rules.participant_in(pairing.pair, person_id)
    await _hold(uow, session, pairing, held_minutes)
    await _record_feedback(uow, session, pairing, participant_id, ratings, comment)
    return session


async def give_feedback(
    uow: UnitOfWork, session_id: UUID, person_id: str, *, ratings: BenefitRatings, comment: str
) -> Feedback:
    session, pairing = await lookup.session(uow, session_id)
    participant_id = rules.participant_in(pairing.pair, person_id)
    rules.ensure_feedback_open(session.status)
    return await _record_feedback(uow, session, pairing, participant_id, ratings, comment)


# --- helpers -------------------------------------------------------------------------------


async def _ensure_free(
    uow: UnitOfWork, pairing: Pairing, slot: Slot, *, moving: UUID | None = None
) -> None:
    """Check both people's other sessions, holding their calendars until this commits."""
    people = sorted(set(pairing.pair.person_ids))
    for person in people:  # always in the same order, so two bookings never deadlock
        await uow.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"calendar:{person}", 0)))
        )
    query = (
        select(
            Session.starts_at,
            Session.duration_minutes,
            Pairing.learner_person_id,
            Pairing.mentor_person_id,
        )
        .join(Pairing, Pairing.id == Session.pairing_id)
        .where(
            Session.status == "scheduled",
            or_(Pairing.learner_person_id.in_(people), Pairing.mentor_person_id.in_(people)),
            Session.starts_at < slot.ends_at,
            Session.starts_at > slot.starts_at - timedelta(minutes=rules.MAX_DURATION_MINUTES),
        )
    )
    if moving is not None:
        query = query.where(Session.id != moving)
    rows = (await uow.session.execute(query)).all()
    rules.ensure_free(
        slot,
        [
            Booking(person, Slot(row.starts_at, row.duration_minutes))
            for row in rows
            for person in (row.learner_person_id, row.mentor_person_id)
            if person in people
        ],
    )


async def _announce(uow: UnitOfWork, session: Session, pairing: Pairing) -> None:
    await uow.emit(
        SessionScheduled(
            **_about(session, pairing),
            starts_at=session.starts_at,
            duration_minutes=session.duration_minutes,
        )
    )


async def _hold(uow: UnitOfWork, session: Session, pairing: Pairing, held_minutes: int) -> None:
    rules.ensure_scheduled(session.status, "marked held")
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


async def _cancel(
    uow: UnitOfWork, session: Session, pairing: Pairing, *, by: UUID, reason: str
) -> None:
    session.status = "cancelled"
    session.cancelled_by = by
    session.cancellation_reason = reason
    session.cancelled_at = datetime.now(UTC)
    await uow.emit(
        SessionCancelled(
            **_about(session, pairing),
            cancelled_by=by,
            reason=reason,
            cancelled_at=session.cancelled_at,
        )
    )


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
