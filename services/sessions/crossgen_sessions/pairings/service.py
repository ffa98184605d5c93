"""Use cases on a whole pairing: the caller's pairings, a pairing's history, its end date."""

from datetime import UTC, date, datetime
from uuid import UUID

from sqlalchemy import or_, select

from crossgen_sessions import lookup, rules
from crossgen_sessions.access import Caller
from crossgen_sessions.models import Pairing, Session
from crossgen_sessions.sessions.service import cancel_upcoming
from crossgen_shared.unit_of_work import UnitOfWork


async def pairings_of(uow: UnitOfWork, person_id: str) -> list[Pairing]:
    rows = await uow.session.scalars(
        select(Pairing)
        .where(or_(Pairing.learner_person_id == person_id, Pairing.mentor_person_id == person_id))
        .order_by(Pairing.opened_at)
    )
    return list(rows)


async def history(
    uow: UnitOfWork, pairing_id: UUID, reader: Caller
) -> tuple[Pairing, list[Session]]:
    """The pairing with every session it had: held, missed, cancelled and upcoming."""
    pairing = await lookup.readable_pairing(uow, pairing_id, reader)
    sessions = await uow.session.scalars(
        select(Session).where(Session.pairing_id == pairing_id).order_by(Session.starts_at)
    )
    return pairing, list(sessions)


async def set_end_date(uow: UnitOfWork, pairing_id: UUID, person_id: str, ends_on: date) -> Pairing:
    """Finish early or extend: sessions planned after the new end date are cancelled."""
    pairing = await lookup.pairing(uow, pairing_id, lock=True)
    participant_id = rules.participant_in(pairing.pair, person_id)
    rules.ensure_end_date(pairing.status, ends_on, datetime.now(UTC).date())
    pairing.ends_on = ends_on
    await cancel_upcoming(
        uow,
        pairing,
        after=rules.end_of(ends_on),
        by=participant_id,
        reason=f"the pairing now ends on {ends_on.isoformat()}",
    )
    return pairing
