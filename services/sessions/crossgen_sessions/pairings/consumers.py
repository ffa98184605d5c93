"""What sessions does with matching's events about pairings and participants."""

from datetime import UTC, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert

from crossgen_sessions.models import Feedback, Goal, Pairing, Session
from crossgen_sessions.sessions.service import NOBODY, cancel_upcoming
from crossgen_shared.consumer import Handler, NotReady
from crossgen_shared.envelope import Envelope
from crossgen_shared.events import (
    Event,
    MatchAccepted,
    PairingEnded,
    ParticipantErased,
    ParticipantLeft,
)
from crossgen_shared.unit_of_work import UnitOfWork

# Stands in for erased text and person ids; no employee number or JWT subject looks like it.
ERASED = "(erased)"


def pairing_events(term: timedelta) -> dict[type[Event], Handler]:
    """Handlers of the pairings topic; a pairing opens planned to last ``term``."""

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
                ends_on=(event.accepted_at + term).astimezone(UTC).date(),
                learner_department=event.learner_department,
                mentor_department=event.mentor_department,
            )
            .on_conflict_do_nothing(index_elements=[Pairing.id])
        )

    return {MatchAccepted: on_match_accepted, PairingEnded: on_pairing_ended}


async def on_pairing_ended(event: PairingEnded, _: Envelope, uow: UnitOfWork) -> None:
    pairing = await uow.session.get(Pairing, event.pairing_id, with_for_update=True)
    if pairing is None:
        # Its MatchAccepted comes first on the same partition, unless that one is still failing
        # or was dead-lettered: retry, and rather be parked next to it than be dropped.
        raise NotReady(f"pairing {event.pairing_id} is not known to sessions yet")
    if pairing.status == "active":
        pairing.status, pairing.ended_at = "ended", event.ended_at
    await cancel_upcoming(
        uow, pairing, after=event.ended_at, by=NOBODY, reason=f"the pairing ended: {event.reason}"
    )


async def on_participant_left(event: ParticipantLeft, _: Envelope, uow: UnitOfWork) -> None:
    """Cancel what the person had planned. Their pairings end by PairingEnded, from matching.

    A participant in no pairing known here has no sessions here: there is nothing to wait for.
    """
    pairings = await uow.session.scalars(
        select(Pairing)
        .where(
            or_(
                Pairing.learner_id == event.participant_id,
                Pairing.mentor_id == event.participant_id,
            )
        )
        .order_by(Pairing.id)
        .with_for_update()
    )
    for pairing in pairings:
        await cancel_upcoming(
            uow, pairing, after=event.left_at, by=event.participant_id, reason="participant left"
        )


async def on_participant_erased(event: ParticipantErased, _: Envelope, uow: UnitOfWork) -> None:
    """Forget what identifies the person or was written by or about them; keep what is counted.

    Gone: their feedback comments; their employee number on their pairings; and the pair's shared
    free text (goal titles, session agendas, video links, cancellation reasons), since a
    two-person record speaks of both. Kept: ids, statuses, dates, minutes, ratings and goal
    progress, which the outcomes report aggregates anonymously (it never reads a person id or
    text). The partner's own feedback comments stay: they are the partner's record.
    """
    participant = event.participant_id
    await uow.session.execute(
        update(Feedback).where(Feedback.participant_id == participant).values(comment="")
    )
    pairings = list(
        await uow.session.scalars(
            select(Pairing)
            .where(or_(Pairing.learner_id == participant, Pairing.mentor_id == participant))
            .order_by(Pairing.id)
            .with_for_update()
        )
    )
    for pairing in pairings:
        if pairing.learner_id == participant:
            pairing.learner_person_id = ERASED
        if pairing.mentor_id == participant:
            pairing.mentor_person_id = ERASED
    theirs = [p.id for p in pairings]
    await uow.session.execute(update(Goal).where(Goal.pairing_id.in_(theirs)).values(title=ERASED))
    their_sessions = Session.pairing_id.in_(theirs)
    await uow.session.execute(
        update(Session).where(their_sessions).values(agenda="", video_link=None)
    )
    await uow.session.execute(
        update(Session)
        .where(their_sessions, Session.cancellation_reason.is_not(None))
        .values(cancellation_reason=ERASED)
    )
