"""Between full runs: local repairs instead of a re-solve.

A learner who joins takes the best mentor with room among everyone who fits them. If all are
full, one learner holding a mere proposal with one of the newcomer's best mentors may move to
their own best mentor with room, when that raises the program's total (a short augmenting
swap). Accepted and pinned pairings never move. A mentor who joins, or a place freed by someone
leaving, goes to the best waiting learners.
"""

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .explain import explain_pairs
from .index import BoolArray, Eligibility, ProgramIndex
from .model import Learner, MatchResult, Mentor, Pair, Pairing, PersonId, Program, Unmatched
from .program import why_unmatched
from .scoring import Rules, org_of

SWAP_MENTORS = 3  # how many of a newcomer's best (full) mentors a swap may free a place at


@dataclass(frozen=True)
class Repair:
    """What one incremental step changed, for the service to publish."""

    proposed: tuple[Pairing, ...] = ()
    withdrawn: tuple[Pair, ...] = ()  # proposals taken back to make room for a better whole
    ended: tuple[Pair, ...] = ()  # pairings that ended because someone left
    unmatched: tuple[Unmatched, ...] = ()

    def __add__(self, other: "Repair") -> "Repair":
        return Repair(
            self.proposed + other.proposed,
            self.withdrawn + other.withdrawn,
            self.ended + other.ended,
            self.unmatched + other.unmatched,
        )


@dataclass(frozen=True)
class _Holding:
    mentor: int  # mentor row
    score: float
    movable: bool  # a proposal that is not pinned


class LiveMatching:
    """The pairings of one program between full runs: its accepted pairings plus the latest
    run's proposals (``result``)."""

    def __init__(self, program: Program, result: MatchResult | None = None) -> None:
        org = org_of(program)
        self.index = ProgramIndex(program, org)
        self.rules = Rules(program, org)
        self.learners = {learner.id: learner for learner in program.learners}
        self.used = np.zeros(len(self.index.mentors), dtype=np.int64)
        self.holding: dict[PersonId, _Holding] = {}
        self.holders: dict[int, set[PersonId]] = defaultdict(set)
        for pair in sorted(program.accepted):
            if pair.mentor_id in self.index.mentor_row:
                self._hold(pair.learner_id, self.index.mentor_row[pair.mentor_id], 0.0, False)
        for p in result.pairings if result else ():
            self._hold(p.learner_id, self.index.mentor_row[p.mentor_id], p.score, not p.pinned)
        self.waiting = {i for i in self.learners if i not in self.holding}

    def mentor_of(self, learner_id: PersonId) -> PersonId | None:
        holding = self.holding.get(learner_id)
        return None if holding is None else self.index.mentors[holding.mentor].id

    def join_learner(self, learner: Learner) -> Repair:
        if learner.id in self.learners:
            raise ValueError(f"{learner.id} is already a learner in this program")
        self.learners[learner.id] = learner
        return self._place(learner)

    def join_mentor(self, mentor: Mentor) -> Repair:
        if mentor.id in self.index.mentor_row:
            # Rows are never rewritten in place: a mentor who left comes back with a full run.
            raise ValueError(f"{mentor.id} is already a mentor in this program (or left it)")
        row = self.index.add_mentor(mentor)
        self.rules.taught |= mentor.teaches.keys()
        self.used = np.append(self.used, 0)
        return self._fill(row)

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

    def _id(self, row: int) -> PersonId:
        return self.index.mentors[row].id

    def _place(self, learner: Learner) -> Repair:
        with_room = self.index.eligible(learner, among=self._room())
        if len(with_room.mentors):
            return Repair(proposed=(self._pair(learner, int(with_room.mentors[0])),))
        fit = self.index.eligible(learner)
        swap = self._best_swap(fit)
        if swap is None:
            self.waiting.add(learner.id)
            return Repair(unmatched=(why_unmatched(learner, fit),))
        mover, freed, target = swap
        self._release(mover)
        moved = self._pair(self.learners[mover], target)
        placed = self._pair(learner, freed)
        return Repair(proposed=(placed, moved), withdrawn=(Pair(mover, self._id(freed)),))

    def _best_swap(self, fit: Eligibility) -> tuple[PersonId, int, int] | None:
        """(learner to move, mentor row freed for the newcomer, mentor row they move to)."""
        best: tuple[float, PersonId, int, int] | None = None
        for mentor, score in zip(
            fit.mentors[:SWAP_MENTORS], fit.scores[:SWAP_MENTORS], strict=True
        ):
            for holder in sorted(self.holders[int(mentor)]):
                holding = self.holding[holder]
                if not holding.movable:
                    continue
                other = self.index.eligible(self.learners[holder], among=self._room())
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
        fits = [
            self.learners[i]
            for i in sorted(self.waiting)
            if self.rules.broken_rule(self.learners[i], mentor) is None
        ]
        if not fits:
            return Repair()
        index = self.index
        people, wants = index.encode_people([x.person for x in fits]), index.encode_wants(fits)
        scores = index.parts(people, wants, np.full(len(fits), row)).score(index.weights)
        best = np.argsort(-scores, kind="stable")[:places]
        return Repair(proposed=tuple(self._pair(fits[i], row) for i in best))

    def _room(self) -> BoolArray:
        return self.used < self.index.capacity

    def _pair(self, learner: Learner, row: int) -> Pairing:
        [(score, explanation)] = explain_pairs(self.index, [learner], [row])
        self._hold(learner.id, row, score, True)
        self.waiting.discard(learner.id)
        return Pairing(learner.id, self._id(row), score, explanation)

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
