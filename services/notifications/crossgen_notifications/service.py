"""Use cases of the notifications service. Each runs inside a unit of work the caller commits."""

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from crossgen_notifications import rendering
from crossgen_notifications.models import Contact, Notification
from crossgen_shared.consumer import NotReady
from crossgen_shared.envelope import Envelope
from crossgen_shared.events import (
    MatchAccepted,
    MatchProposed,
    ParticipantJoined,
    ParticipantUpdated,
    SessionCompleted,
)
from crossgen_shared.unit_of_work import UnitOfWork

EMAIL = "email"


async def on_participant_joined(event: ParticipantJoined, _: Envelope, uow: UnitOfWork) -> None:
    values = {
        "participant_id": event.participant_id,
        "person_id": event.person_id,
        "program_id": event.program_id,
        "display_name": event.display_name,
        "email": event.email,
        "updated_at": event.joined_at,
    }
    upsert = insert(Contact).values(values)
    await uow.session.execute(
        upsert.on_conflict_do_update(
            index_elements=[Contact.participant_id],
            set_={k: upsert.excluded[k] for k in values if k != "participant_id"},
            where=Contact.updated_at <= upsert.excluded.updated_at,
        )
    )


async def on_participant_updated(event: ParticipantUpdated, _: Envelope, uow: UnitOfWork) -> None:
    contact = await _contact(uow, event.participant_id, for_update=True)
    if contact.updated_at <= event.updated_at:
        contact.display_name = event.display_name
        contact.email = event.email
        contact.updated_at = event.updated_at


async def on_match_proposed(event: MatchProposed, envelope: Envelope, uow: UnitOfWork) -> None:
    await _notify_pair(
        uow,
        envelope,
        event.learner_id,
        event.mentor_id,
        "match-proposed",
        explanation=event.explanation,
    )


async def on_match_accepted(event: MatchAccepted, envelope: Envelope, uow: UnitOfWork) -> None:
    await _notify_pair(uow, envelope, event.learner_id, event.mentor_id, "match-accepted")


async def on_session_completed(
    event: SessionCompleted, envelope: Envelope, uow: UnitOfWork
) -> None:
    await _notify_pair(
        uow,
        envelope,
        event.learner_id,
        event.mentor_id,
        "session-follow-up",
        held_minutes=event.held_minutes,
    )


async def _notify_pair(
    uow: UnitOfWork,
    envelope: Envelope,
    learner_id: UUID,
    mentor_id: UUID,
    template: str,
    **facts: Any,
) -> None:
    """Queue one email to the learner and one to the mentor, each naming the other."""
    learner = await _contact(uow, learner_id)
    mentor = await _contact(uow, mentor_id)
    for recipient, partner, role in ((learner, mentor, "learner"), (mentor, learner, "mentor")):
        message = rendering.render(
            template,
            recipient=recipient.display_name,
            partner=partner.display_name,
            role=role,
            **facts,
        )
        # The unique (event, recipient, channel) is the last guard against a second message.
        await uow.session.execute(
            insert(Notification)
            .values(
                source_event_id=envelope.id,
                source_event_type=envelope.type,
                recipient_id=recipient.participant_id,
                channel=EMAIL,
                template=template,
                to_address=recipient.email,
                subject=message.subject,
                body=message.body,
            )
            .on_conflict_do_nothing(constraint="uq_notifications_once")
        )


async def _contact(uow: UnitOfWork, participant_id: UUID, *, for_update: bool = False) -> Contact:
    contact = await uow.session.get(Contact, participant_id, with_for_update=for_update)
    if contact is None:
        # Participants and pairings are different topics: the contact may simply not be here yet.
        raise NotReady(f"participant {participant_id} is not known yet")
    return contact


async def delivery_log(
    uow: UnitOfWork,
    *,
    recipient_id: UUID | None = None,
    person_id: str | None = None,
    status: str | None = None,
    limit: int,
    offset: int,
) -> list[Notification]:
    """Notifications newest first, optionally for one recipient, one person or one status."""
    query = select(Notification)
    if recipient_id is not None:
        query = query.where(Notification.recipient_id == recipient_id)
    if person_id is not None:
        mine = select(Contact.participant_id).where(Contact.person_id == person_id)
        query = query.where(Notification.recipient_id.in_(mine))
    if status is not None:
        query = query.where(Notification.status == status)
    rows = await uow.session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id).limit(limit).offset(offset)
    )
    return list(rows)
