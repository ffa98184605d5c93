"""Finding the pairing or session a request is about, or saying why it cannot be found.

Locks are taken pairing first, then session, everywhere, so two use cases never wait on each other
in opposite order.
"""

from uuid import UUID

from sqlalchemy import select

from crossgen_sessions import rules
from crossgen_sessions.access import Caller
from crossgen_sessions.models import Pairing, Session
from crossgen_shared.errors import NotFound
from crossgen_shared.unit_of_work import UnitOfWork


async def pairing(uow: UnitOfWork, pairing_id: UUID, *, lock: bool = False) -> Pairing:
    found = await uow.session.get(Pairing, pairing_id, with_for_update=lock)
    if found is None:
        raise NotFound(
            f"pairing {pairing_id} is not known to sessions (yet): "
            "it arrives shortly after both sides accept the match"
        )
    return found


async def readable_pairing(uow: UnitOfWork, pairing_id: UUID, reader: Caller) -> Pairing:
    """The pairing, if the reader is one of its pair or owns its program."""
    found = await pairing(uow, pairing_id)
    rules.ensure_may_read(found.pair, reader.person_id, owns_program=reader.owns(found.program_id))
    return found


async def session(
    uow: UnitOfWork, session_id: UUID, *, lock_pairing: bool = False
) -> tuple[Session, Pairing]:
    """The session, locked so that two people acting on it at once cannot both succeed."""
    pairing_id = await uow.session.scalar(
        select(Session.pairing_id).where(Session.id == session_id)
    )
    if pairing_id is None:
        raise NotFound(f"session {session_id} does not exist")
    found_pairing = await pairing(uow, pairing_id, lock=lock_pairing)
    found = await uow.session.get(Session, session_id, with_for_update=True)
    assert found is not None  # sessions are never deleted
    return found, found_pairing
