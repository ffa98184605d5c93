"""Between full runs: local repairs instead of a re-solve.

A learner who joins takes the mentor the program owner pinned them to, if that pin can hold: when
the mentor is full, their weakest mere proposal makes room and its learner is placed again as a
newcomer would be. A pin that cannot hold (the mentor is gone, full with pairings that never
move, or the pair breaks a hard rule) is reported, and the learner joins as if unpinned.

An unpinned learner takes the best mentor with room among everyone who fits them. If all are
full, one learner holding a mere proposal with one of the newcomer's best mentors may move to
their own best mentor with room, when that raises the program's total (a short augmenting
swap). Accepted and pinned pairings never move. A mentor who joins takes the waiting learners
pinned to them first; their other places, and a place freed by someone leaving, go to the best
waiting learners.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .explain import explain_pairs
from .index import BoolArray, Eligibility, Growing, ProgramIndex
from .model import (
    Learner,
    MatchResult,
    Mentor,
    Pair,
    Pairing,
    PersonId,
    PinError,
    Program,
    Unmatched,
)
from .program import why_unmatched
from .scoring import Rules, org_of
from .waiting import Waiting

SWAP_MENTORS = 3  # how many of a newcomer's best (full) mentors a swap may free a place at


@dataclass(frozen=True)
class Repair:
    """What one incremental step changed, for the service to publish."""

    proposed: tuple[Pairing, ...] = ()
    withdrawn: tuple[Pair, ...] = ()  # proposals taken back to make room for a better whole
    ended: tuple[Pair, ...] = ()  # pairings that ended because someone left
    unmatched: tuple[Unmatched, ...] = ()
    unheld_pins: tuple[PinError, ...] = ()  # pins of people who joined, and why they could not hold

    def __add__(self, other: "Repair") -> "Repair":
        return Repair(
            self.proposed + other.proposed,
            self.withdrawn + other.withdrawn,
            self.ended + other.ended,
            self.unmatched + other.unmatched,
            self.unheld_pins + other.unheld_pins,
        )


@dataclass(frozen=True, slots=True)
class _Holding:
    mentor: int  # mentor row
    score: float
    movable: bool  # a proposal that is not pinned


class LiveMatching:
    """The pairings of one program between full runs: its accepted pairings plus the latest
    run's proposals (``result``). ``program.pinned`` may name people who have not joined yet:
    their pins are honoured when they do."""

    def __init__(self, program: Program, result: MatchResult | None = None) -> None:
        org = org_of(program)
        self.index = ProgramIndex(program, org)
        self.rules = Rules(program, org)
        self.learners = {learner.id: learner for learner in program.learners}
        self.pins = {pair.learner_id: pair.mentor_id for pair in program.pinned}
        self._used = Growing.of(np.zeros(len(self.index.mentors), dtype=np.int64))
        self.used = self._used.view()  # each mentor's places taken (written in place)
        self.holding: dict[PersonId, _Holding] = {}
        self.holders: dict[int, set[PersonId]] = defaultdict(set)
        for pair in sorted(program.accepted):
            if pair.mentor_id in self.index.mentor_row:
                self._hold(pair.learner_id, self.index.mentor_row[pair.mentor_id], 0.0, False)
        for p in result.pairings if result else ():
            # A stored proposal does not know it was pinned; the program's pins do.
            pinned = p.pinned or self.pins.get(p.learner_id) == p.mentor_id
            self._hold(p.learner_id, self.index.mentor_row[p.mentor_id], p.score, not pinned)
        waiting = [x for i, x in self.learners.items() if i not in self.holding]
        self.waiting = Waiting(self.index, waiting)

    def mentor_of(self, learner_id: PersonId) -> PersonId | None:
        holding = self.holding.get(learner_id)
        return None if holding is None else self.index.mentors[holding.mentor].id

    def join_learner(self, learner: Learner) -> Repair:
        """Place a learner who joined; one already here must be waiting (read in by a load
        before their own join came)."""
        if learner.id in self.learners and learner.id not in self.waiting:
            raise ValueError(f"{learner.id} is already a learner in this program")
        self.learners[learner.id] = learner
        if learner.id not in self.pins:
            return self._place(learner)
        try:
            return self._pin(learner)
        except PinError as unheld:
            return _despite(unheld, self._place(learner))

    def join_mentor(self, mentor: Mentor) -> Repair:
        """Fill a mentor's places; one already here (read in by a load before their own join
        came) keeps their row."""
        row = self.index.mentor_row.get(mentor.id)
        if row is None:
            row = self.index.add_mentor(mentor)
            self.rules.taught |= mentor.teaches.keys()
            self._used.extend([0])
            self.used = self._used.view()
        elif not self.index.present[row]:
            # Rows are never rewritten in place: a mentor who left comes back with a full run.
            raise ValueError(f"{mentor.id} left this program")
        repair = Repair()
        for learner_id in sorted(i for i, m in self.pins.items() if m == mentor.id):
            if learner_id in self.waiting:
                try:
                    repair += self._pin(self.learners[learner_id])
                except PinError as unheld:
                    repair += Repair(unheld_pins=(unheld,))
        return repair + self._fill(row)

    def leave(self, person_id: PersonId) -> Repair:
        """A learner or mentor (or both) left: their pairings end, partners are re-placed."""
        repair = Repair()
        known = False
        if person_id in self.learners:
            known = True
            del self.learners[person_id]
            self.waiting.discard(person_id)
            if person_id in self.holding:
                freed = self.holding[person_id].mentor
                repair += self._end(person_id) + self._fill(freed)
        row = self.index.mentor_row.get(person_id)
        if row is not None and self.index.present[row]:
            known = True
            self.index.present[row] = False
            for learner_id in sorted(self.holders[row]):
                repair += self._end(learner_id)
                if learner_id in self.learners:  # an accepted pairing may outlive enrolment
                    repair += self._place(self.learners[learner_id])
        if not known:
            raise ValueError(f"{person_id} is not in this program")
        return repair

    def expire(self, pairs: Sequence[Pair]) -> list[Repair]:
        """Proposals nobody answered closed: never proposed again, as a fresh load would read
        them. All end first; then both sides of each are placed anew, the learner first, as if
        they had just joined. One repair a pair, to carry out in order (a later one may move
        what an earlier one proposed)."""
        ended = []
        for pair in pairs:
            holding = self.holding.get(pair.learner_id)
            if holding is None or self._id(holding.mentor) != pair.mentor_id:
                raise ValueError(f"{pair} is not an open proposal in this program")
            self._end(pair.learner_id)
            ended.append((self.learners.pop(pair.learner_id), self.index.mentors[holding.mentor]))
        return [self.join_learner(learner) + self.join_mentor(mentor) for learner, mentor in ended]

    def _id(self, row: int) -> PersonId:
        return self.index.mentors[row].id

    def _place(self, learner: Learner) -> Repair:
        room = self._room()
        # A full program is common (each mentor taken as they join): neither a mentor with room
        # nor a swap, which moves someone to one, is to be found, and looking costs.
        full = not room.any()
        if not full:
            with_room = self.index.eligible(learner, among=room)
            if len(with_room.mentors):
                return Repair(proposed=(self._pair(learner, int(with_room.mentors[0])),))
        fit = self.index.eligible(learner, ranked=not full)
        swap = None if full else self._best_swap(fit, room)
        if swap is None:
            self.waiting.add(learner)
            return Repair(unmatched=(why_unmatched(learner, fit),))
        mover, freed, target = swap
        self._release(mover)
        moved = self._pair(self.learners[mover], target)
        placed = self._pair(learner, freed)
        return Repair(proposed=(placed, moved), withdrawn=(Pair(mover, self._id(freed)),))

    def _pin(self, learner: Learner) -> Repair:
        """Pair ``learner`` with their pinned mentor; raises PinError if the pin cannot hold."""
        pair = Pair(learner.id, self.pins[learner.id])
        row = self.index.mentor_row.get(pair.mentor_id)
        if row is None or not self.index.present[row]:
            raise PinError(pair, f"{pair.mentor_id} is not a mentor in this program")
        rule = self.rules.broken_rule(learner, self.index.mentors[row])
        if rule is not None:
            raise PinError(pair, f"breaks a hard rule: {rule.value}", rule)
        if self.used[row] < self.index.capacity[row]:
            return Repair(proposed=(self._pair(learner, row, pinned=True),))
        movable = sorted(h for h in self.holders[row] if self.holding[h].movable)
        if not movable:
            raise PinError(pair, "the mentor is full with accepted or pinned pairings")
        bumped = min(movable, key=lambda holder: self.holding[holder].score)
        self._release(bumped)
        pinned = self._pair(learner, row, pinned=True)
        made_room = Repair(proposed=(pinned,), withdrawn=(Pair(bumped, pair.mentor_id),))
        return made_room + self._place(self.learners[bumped])

    def _best_swap(self, fit: Eligibility, room: BoolArray) -> tuple[PersonId, int, int] | None:
        """(learner to move, mentor row freed for the newcomer, mentor row with ``room`` they
        move to)."""
        best: tuple[float, PersonId, int, int] | None = None
        for mentor, score in zip(
            fit.mentors[:SWAP_MENTORS], fit.scores[:SWAP_MENTORS], strict=True
        ):
            for holder in sorted(self.holders[int(mentor)]):
                holding = self.holding[holder]
                if not holding.movable:
                    continue
                other = self.index.eligible(self.learners[holder], among=room)
                if not len(other.mentors):
                    continue
                gain = float(score) + float(other.scores[0]) - holding.score
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, holder, int(mentor), int(other.mentors[0]))
        return None if best is None else best[1:]

    def _fill(self, row: int) -> Repair:
        """Give a mentor's free places to the best waiting learners who fit them."""
        mentor = self.index.mentors[row]
        places = int(self.index.capacity[row] - self.used[row])
        if not places:
            return Repair()
        best = self.waiting.best_for(mentor, row, places, self.rules)
        return Repair(proposed=tuple(self._pair(learner, row) for learner in best))

    def _room(self) -> BoolArray:
        return self.used < self.index.capacity

    def _pair(self, learner: Learner, row: int, pinned: bool = False) -> Pairing:
        [(score, explanation)] = explain_pairs(self.index, [learner], [row], pinned=pinned)
        self._hold(learner.id, row, score, not pinned)
        self.waiting.discard(learner.id)
        return Pairing(learner.id, self._id(row), score, explanation, pinned)

    def _hold(self, learner_id: PersonId, row: int, score: float, movable: bool) -> None:
        self.holding[learner_id] = _Holding(row, score, movable)
        self.holders[row].add(learner_id)
        self.used[row] += 1

    def _end(self, learner_id: PersonId) -> Repair:
        """End a pairing because someone left; it is never proposed again."""
        row = self._release(learner_id)
        pair = Pair(learner_id, self._id(row))
        self.rules.ended = self.rules.ended | {pair}
        ended = np.append(self.index.ended.get(learner_id, []), row)
        self.index.ended[learner_id] = ended.astype(np.int64)
        return Repair(ended=(pair,))

    def _release(self, learner_id: PersonId) -> int:
        holding = self.holding.pop(learner_id)
        self.holders[holding.mentor].discard(learner_id)
        self.used[holding.mentor] -= 1
        return holding.mentor


def _despite(unheld: PinError, repair: Repair) -> Repair:
    """``repair`` (the join as if unpinned), with the reason the pin did not hold on the learner's
    new pairing, where the program owner reads it."""
    learner_id, mentor_id = unheld.pair.learner_id, unheld.pair.mentor_id
    note = f"not with {mentor_id}, whom they are pinned to: {unheld.reason}"
    proposed = tuple(
        replace(p, explanation=(*p.explanation, note)) if p.learner_id == learner_id else p
        for p in repair.proposed
    )
    return replace(repair, proposed=proposed, unheld_pins=(*repair.unheld_pins, unheld))
