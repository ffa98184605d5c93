"""Contact data: kept from the participants topic; erased with everything that names a person."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from crossgen_notifications.models import Contact, Notification, Preferences, SessionInvite, Status
from crossgen_shared.consumer import Handler, NotReady
from crossgen_shared.envelope import Envelope
from crossgen_shared.events import Event, ParticipantJoined, ParticipantUpdated
from crossgen_shared.unit_of_work import UnitOfWork

ERASED = "erased"


_CONTACT_FIELDS = ("person_id", "program_id", "display_name", "email", "updated_at")
_insert_contact = insert(Contact)
# Built once, as every participant who joins runs it: a newer event's data wins.
_UPSERT_CONTACT = _insert_contact.on_conflict_do_update(
    index_elements=[Contact.participant_id],
    set_={field: _insert_contact.excluded[field] for field in _CONTACT_FIELDS},
    where=Contact.updated_at <= _insert_contact.excluded.updated_at,
)


async def on_participant_joined(event: ParticipantJoined, _: Envelope, uow: UnitOfWork) -> None:
    joined: list[ParticipantJoined] | None = uow.memo.get(_JOINED)
    if joined is None:
        await uow.session.execute(_UPSERT_CONTACT, _contact(event))
    else:
        joined.append(event)  # written with the batch's other joins (joins_together)


@asynccontextmanager
async def joins_together(uow: UnitOfWork, _: list[Event]) -> AsyncIterator[None]:
    """The participants topic's batch: the contacts of those who joined are written together, in
    one statement, before any other event of the batch is handled (``after_joins``) and at its
    end. An update, a leave or an erasure reads them as if each had been written alone."""
    uow.memo[_JOINED] = []
    yield
    await _write_joined(uow)


def after_joins(handler: Handler) -> Handler:
    """``handler``, run once the batch's joins so far are written."""

    async def after(event: Any, envelope: Envelope, uow: UnitOfWork) -> None:
        await _write_joined(uow)
        await handler(event, envelope, uow)

    return after


_JOINED = "participants joined, to write"


def _contact(event: ParticipantJoined) -> dict[str, Any]:
    return {
        "participant_id": event.participant_id,
        "person_id": event.person_id,
        "program_id": event.program_id,
        "display_name": event.display_name,
        "email": event.email,
        "updated_at": event.joined_at,
    }


async def _write_joined(uow: UnitOfWork) -> None:
    """Write the contacts of the batch's joins so far, the latest event of each participant's
    (the last of equals): what writing them one by one in order would leave."""
    joined: list[ParticipantJoined] = uow.memo.get(_JOINED) or []
    if not joined:
        return
    latest: dict[UUID, ParticipantJoined] = {}
    for event in joined:
        held = latest.get(event.participant_id)
        if held is None or held.joined_at <= event.joined_at:
            latest[event.participant_id] = event
    joined.clear()
    await uow.session.execute(_UPSERT_CONTACT, [_contact(event) for event in latest.values()])


async def on_participant_updated(event: ParticipantUpdated, _: Envelope, uow: UnitOfWork) -> None:
    contact = await uow.session.get(Contact, event.participant_id, with_for_update=True)
    if contact is None:
        raise NotReady(f"participant {event.participant_id} is not known yet")
    if contact.updated_at <= event.updated_at:
        contact.display_name = event.display_name
        contact.email = event.email
        contact.updated_at = event.updated_at


async def erase_person(uow: UnitOfWork, person_id: str, erased_at: datetime) -> None:
    """Forget a person: their preferences, and every name, address and text in their contacts
    and messages.

    Their undelivered messages are cancelled. A contact stays as a nameless tombstone that has
    left: later events about the pairing still reach the partner, and a replayed older event
    cannot bring the data back. Messages to partners keep their own text (they are the partner's
    record) but lose calendar invites, which list the person's address. Ids stay, so the
    delivery log still counts what happened.
    """
    await uow.write_held()  # messages queued earlier in this transaction are theirs too
    participants = list(
        await uow.session.scalars(
            select(Contact.participant_id).where(Contact.person_id == person_id)
        )
    )
    theirs = or_(Notification.person_id == person_id, Notification.recipient_id.in_(participants))
    await uow.session.execute(
        update(Notification)
        .where(theirs, Notification.status.in_([Status.PENDING, Status.COLLECTED]))
        .values(status=Status.CANCELLED, last_error=f"person erased at {erased_at.isoformat()}")
    )
    await uow.session.execute(
        update(Notification)
        .where(theirs)
        .values(person_id="", to_address=ERASED, subject=ERASED, body="", html=None, calendar=None)
    )
    their_sessions = select(SessionInvite.session_id).where(
        or_(SessionInvite.learner_id.in_(participants), SessionInvite.mentor_id.in_(participants))
    )
    await uow.session.execute(
        update(Notification)
        .where(Notification.session_id.in_(their_sessions))
        .values(calendar=None)
    )
    await uow.session.execute(delete(Preferences).where(Preferences.person_id == person_id))
    await uow.session.execute(
        update(Contact)
        .where(Contact.participant_id.in_(participants))
        .values(
            person_id="",
            display_name="",
            email="",
            left_at=func.coalesce(Contact.left_at, erased_at),
            updated_at=func.greatest(Contact.updated_at, erased_at),
        )
    )
