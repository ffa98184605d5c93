"""Newcomers' joins as the participant-joined consumer makes them, a batch at a time.

Each join comes out as ``service.match_newcomer`` alone would make it, but the joins of one
program in a batch take the program's lock, read their roster rows and move its revision once,
not once each: about four statements fewer per join. Between two of them the live matching stays
in hand, where one by one it would be kept at a revision and taken back at once: nothing else
writes to the program meanwhile, as the batch's transaction holds its lock and does only joins.
A newcomer who is not the usual one (an earlier join of the batch already proposed them, say) is
matched the usual way, after the joins before them are written.
"""

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select

from crossgen_matching import live_cache, roster, service
from crossgen_matching.models import Participant
from crossgen_shared.db import any_of_uuids
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.unit_of_work import UnitOfWork


@dataclass
class _InHand:
    """One program's joins so far in a batch, under its lock."""

    revision: int  # read under the lock, before the batch's first join wrote
    now: datetime
    reads: dict[UUID, roster.Newcomer]  # the batch's newcomers, as the lock found them
    # Open pairings each participant gained (or lost) by the joins since the reads.
    opened: Counter[UUID] = field(default_factory=Counter)
    matching: live_cache.Matching | None = None


@dataclass
class _Batch:
    # The batch's newcomers, read at once and held here: the session holds loaded rows weakly.
    newcomers: dict[UUID, Participant]
    programs: dict[UUID, _InHand] = field(default_factory=dict)


async def on_participant_joined(event: ParticipantJoined, _: object, uow: UnitOfWork) -> None:
    batch: _Batch | None = uow.memo.get(_BATCH)
    if batch is None:
        await service.match_newcomer(uow, event.participant_id)
    else:
        await _join(uow, batch, event.participant_id)


@asynccontextmanager
async def in_turn(uow: UnitOfWork, events: list[ParticipantJoined]) -> AsyncIterator[None]:
    """The participant-joined consumer's batch: its newcomers read at once, and each program's
    live matching kept (and its revision moved) once, at the end."""
    ids = [event.participant_id for event in events]
    found = await uow.session.scalars(_NEWCOMERS, {"ids": ids})
    uow.memo[_BATCH] = batch = _Batch({p.id: p for p in found})
    yield
    for hand in batch.programs.values():
        await _finish(uow, hand)


_BATCH = "joins in turn"
_NEWCOMERS = select(Participant).where(Participant.id == any_of_uuids("ids"))


async def _join(uow: UnitOfWork, batch: _Batch, participant_id: UUID) -> None:
    session = uow.session
    newcomer = batch.newcomers.get(participant_id)
    if newcomer is None or newcomer.status != "active":
        return
    program_id = newcomer.program_id
    hand = batch.programs.get(program_id) or await _lock(uow, batch, program_id)
    read = hand.reads[participant_id]
    room = newcomer.capacity - read.open_pairings - hand.opened[participant_id]
    if room <= 0:
        return
    if room != newcomer.capacity:  # partnered already: matched afresh, the usual way
        await _finish(uow, batch.programs.pop(program_id))
        await service.match_newcomer(uow, participant_id)
        return
    if hand.matching is None:
        matching = await live_cache.checkout(session, newcomer, hand.revision, read, hand.now)
    else:
        matching = live_cache.take_in(hand.matching, read, hand.now) or await live_cache.load(
            session, newcomer
        )
    made, withdrawn = await service.repair(uow, matching, room)
    for pairing in made.values():
        hand.opened.update((pairing.learner_id, pairing.mentor_id))
    for pairing in withdrawn:
        hand.opened.subtract((pairing.learner_id, pairing.mentor_id))
    live_cache.settle(matching, {pair: p.id for pair, p in made.items()})
    hand.matching = matching


async def _lock(uow: UnitOfWork, batch: _Batch, program_id: UUID) -> _InHand:
    """Take the program's lock and read the batch's newcomers of it."""
    revision = await service.lock_matching(uow, program_id)
    assert revision is not None  # the participants' foreign key
    now = datetime.now(UTC)
    theirs = [p.id for p in batch.newcomers.values() if p.program_id == program_id]
    hand = _InHand(revision, now, await roster.newcomers(uow.session, theirs, now))
    batch.programs[program_id] = hand
    return hand


async def _finish(uow: UnitOfWork, hand: _InHand) -> None:
    if hand.matching is not None:
        await live_cache.keep(uow, hand.matching)
