"""Each program's live matching, kept in memory from one newcomer's join to the next.

Matching a newcomer read the whole program and built its ``LiveMatching`` (numpy index, org chart)
afresh every time: 150-370 ms at 1,000 participants, for a join that takes a few. Now the usual
newcomer, one who just joined, is taken into the live matching the program's last join left, as
long as the program's revision is still the one it was kept at: the database's triggers move it
in the transaction of every change a decision reads (migrations 0009, 0015; a run of changes
once, 0016), so an equal revision means nothing has changed since. Any other decision loads
afresh, as before; its writes move the revision past the kept one.

- An entry is taken out before it is changed and put back at once, at the revision the join's
  own writes moved the program to. Revisions come from a sequence and an entry is kept at one its
  own transaction took: until that transaction commits nobody else can read that revision (the
  program's lock), and should it (or a savepoint) roll back, the entry names a state that never
  was and is never taken. So the next join, in the same transaction or the next one to get the
  lock, finds it without waiting for a commit callback.
- Each replica keeps its own; another replica's writes move the revision.
- Proposals that expire are re-matched in it too, taken out whole (``current``, no newcomer) and
  kept again: a launch's backlog, expiring a few to a transaction, reads its program once.
- Enrolment does not move it: someone enrolled whose own join has not run yet is not in the kept
  matching until that join takes them in, unless a fresh load read them as waiting (a learner
  without a mentor, a mentor with free places); their join then places them in it as it stands.
- Tenure and UTC offsets are computed as of a day: an entry serves the UTC day it was built on.
- A newcomer whose manager the org chart does not know (both came into the directory after the
  build) is loaded afresh: the chart would not see the chain above them.
- After a mentor joins, skill rarity is fixed again at the index's supply, which counts them, as
  the next fresh load would count it (the kept index has seen only joins since its build).
"""

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from uuid import UUID

from sqlalchemy import bindparam, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from crossgen_matching import optimiser, roster
from crossgen_matching.models import Participant, Program
from crossgen_shared.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Matching:
    """A program's live matching as a newcomer's join repairs it, and what proposing needs."""

    program_id: UUID
    live: optimiser.LiveMatching
    members: dict[str, roster.Member]  # by person id
    proposals: dict[optimiser.Pair, UUID]  # open, not accepted: their pairings' ids
    day: date
    newcomer: roster.Member | None = None  # whom it is taken out for, if anyone
    person: optimiser.Person | None = None  # the newcomer's
    revision: int | None = None  # the program's, once kept

    def join(self, room: int) -> optimiser.Repair:
        assert self.newcomer is not None and self.person is not None
        if self.newcomer.role == "learner":
            return self.live.join_learner(optimiser.Learner(self.person, self.newcomer.skills))
        return self.live.join_mentor(optimiser.Mentor(self.person, self.newcomer.skills, room))


_kept: dict[UUID, Matching] = {}  # by program id


async def load(
    session: AsyncSession, newcomer: Participant, forbidden: Collection[optimiser.Pair] = ()
) -> Matching:
    """The program's live matching without ``newcomer`` (and their partners), read afresh."""
    current = await roster.load(
        session, newcomer.program_id, leaving_out=newcomer, forbidden=forbidden
    )
    return replace(
        await _read(newcomer.program_id, current),
        newcomer=current.participants[newcomer.person_id],
        person=current.people[newcomer.person_id],
    )


async def current(
    session: AsyncSession, program_id: UUID, revision: int, now: datetime
) -> Matching:
    """The program's live matching as it stands (under its lock, at ``revision``, as of ``now``):
    the kept one if nothing has changed since, else read afresh."""
    kept = _kept.pop(program_id, None)
    if kept is not None and kept.revision == revision and kept.day == now.date():
        return replace(kept, newcomer=None, person=None, revision=None)
    return await _read(program_id, await roster.load(session, program_id))


async def _read(program_id: UUID, current: roster.Roster) -> Matching:
    # Built in a thread: at 20,000 learners it takes 0.6 s of CPU, which the event loop would
    # otherwise wait for.
    live = await asyncio.to_thread(
        lambda: optimiser.LiveMatching(current.program, current.last_result())
    )
    return Matching(
        program_id=program_id,
        live=live,
        members=current.participants,
        proposals={pair: pairing.id for pair, pairing in current.proposals.items()},
        day=datetime.now(UTC).date(),
    )


async def checkout(
    session: AsyncSession,
    newcomer: Participant,
    revision: int,
    read: roster.Newcomer,
    now: datetime,
) -> Matching:
    """The program's live matching for a newcomer who just joined (``read`` under the program's
    lock, ``now``): the kept one if the program is still at its ``revision``, else read afresh.
    The caller holds the program's lock."""
    kept = _kept.pop(newcomer.program_id, None)
    taken = take_in(kept, read, now) if kept is not None and kept.revision == revision else None
    return taken or await load(session, newcomer)


def take_in(kept: Matching, read: roster.Newcomer, now: datetime) -> Matching | None:
    """``kept``, with the program unchanged since, for the newcomer ``read`` (as of ``now``);
    None if it cannot take them in as a fresh load would."""
    if kept.day != now.date() or not _takes_in(kept.live, read.person):
        return None
    kept.members[read.member.person_id] = read.member
    return replace(kept, newcomer=read.member, person=read.person, revision=None)


def settle(matching: Matching, proposed: Mapping[optimiser.Pair, UUID]) -> None:
    """Bring ``matching``, its join done and ``proposed``, up to date for the next newcomer."""
    if matching.newcomer is not None and matching.newcomer.role == "mentor":
        matching.live.index.count_rarity()
    matching.proposals.update(proposed)


async def keep(uow: UnitOfWork, matching: Matching) -> None:
    """Keep ``matching``, settled after its last join, for the program's next newcomer."""
    await uow.session.flush()  # the joins' own writes move the revision first
    # Kept at a revision of this transaction's own, even when the join wrote nothing: should it
    # roll back (a savepoint too), the entry names a state that never was and is never taken.
    revision = await uow.session.scalar(_NEXT_REVISION, {"program_id": matching.program_id})
    _put(replace(matching, revision=revision))


# Built once (every join runs it). The session is not told the new revision: nothing reads one
# from a loaded Program.
_NEXT_REVISION = (
    update(Program)
    .where(Program.id == bindparam("program_id"))
    .values(revision=func.nextval("program_revisions"))
    .returning(Program.revision)
    .execution_options(synchronize_session=False)
)


def _put(matching: Matching) -> None:
    # Keep the later revision (a sequence's): the other entry's transaction has ended by now.
    held = _kept.get(matching.program_id)
    if held is None or (held.revision or 0) < (matching.revision or 0):
        _kept[matching.program_id] = matching


def _takes_in(live: optimiser.LiveMatching, person: optimiser.Person) -> bool:
    """Whether ``live`` can take ``person`` in as a fresh load would: not in it already (or in it
    as a fresh load read them: waiting, or a mentor still present), and their place in the org
    chart known, or at least their manager's."""
    if person.id in live.learners and person.id not in live.waiting:
        return False
    row = live.index.mentor_row.get(person.id)
    if row is not None and not live.index.present[row]:
        return False
    chart = live.index.org
    return person.id in chart.entry or person.manager_id is None or person.manager_id in chart.entry
