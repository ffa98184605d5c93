"""Learners waiting for a mentor, as columns, so that a mentor with free places is fitted
against all of them at once.

A program short of mentors can have thousands waiting, and every mentor who joins (or whose
learner leaves) looks among them. Posting lists by wanted skill and by language narrow them in
numpy; the org chart test and the score run over the rest as arrays; only the best few are
checked against every hard rule one pair at a time, in score order.
"""

from collections import defaultdict
from collections.abc import Iterator, Set
from dataclasses import fields

import numpy as np

from .index import Growing, People, ProgramIndex
from .model import Learner, Mentor, PersonId
from .scoring import FloatArray, IntArray, Rules, in_chain


class Waiting(Set[PersonId]):
    """The waiting learners' ids (a set), and their columns for ``best_for``.

    Rows are never reused: a learner who waits again, perhaps with a changed profile, gets a new
    row and the old one is marked gone. Once the rows gone outnumber those waiting (and
    ``compact_after``), the columns are built again from those waiting: every mentor's look goes
    over all rows, and in a program where each learner waits a moment, they would keep everyone
    who ever waited.
    """

    compact_after = 64  # rows gone, at least: a rebuild costs as much as the learners waiting

    def __init__(self, index: ProgramIndex, learners: list[Learner]) -> None:
        self.index = index
        self._empty()
        self._extend(learners)

    def _empty(self) -> None:
        self.learners: list[Learner] = []  # by row
        self.ids = Growing(np.str_)  # by row: ties go to the lowest id
        self.row_of: dict[PersonId, int] = {}
        self.present = Growing(np.bool_)
        self.people = Growing(np.float64, len(fields(People)))
        # Posting lists: rows of the learners who want a skill (with their want level), and of
        # those who speak a language.
        self.wanting: dict[str, tuple[Growing, Growing]] = {}
        self.speaking: dict[str, Growing] = {}
        self.total = Growing(np.float64)  # sum of rarity x want level over skills taught
        self.idf = self.index.idf  # the rarity ``total`` was summed at

    def __contains__(self, learner_id: object) -> bool:
        return learner_id in self.row_of

    def __iter__(self) -> Iterator[PersonId]:
        return iter(self.row_of)

    def __len__(self) -> int:
        return len(self.row_of)

    def add(self, learner: Learner) -> None:
        self.discard(learner.id)
        self._extend([learner])

    def _extend(self, learners: list[Learner]) -> None:
        first = len(self.learners)
        wanting: dict[str, list[tuple[int, int]]] = defaultdict(list)
        speaking: dict[str, list[int]] = defaultdict(list)
        for row, learner in enumerate(learners, first):
            self.row_of[learner.id] = row
            for skill, level in learner.wants.items():
                wanting[skill].append((row, level))
            for language in learner.person.languages:
                speaking[language].append(row)
        self.learners += learners
        self.ids.extend([learner.id for learner in learners])
        for skill, postings in wanting.items():
            rows, levels = self.wanting.setdefault(skill, (Growing(np.int64), Growing(float)))
            rows.extend([row for row, _ in postings])
            levels.extend([level for _, level in postings])
        for language, rows_of_speakers in speaking.items():
            self.speaking.setdefault(language, Growing(np.int64)).extend(rows_of_speakers)
        self.present.extend(np.ones(len(learners), dtype=bool))
        people = self.index.encode_people([learner.person for learner in learners])
        self.people.extend(np.column_stack(people.columns()).reshape(-1, len(fields(People))))
        fresh = self.idf is self.index.idf  # else ``best_for`` recounts every total
        self.total.extend([self._total(x) if fresh else 0.0 for x in learners])

    def discard(self, learner_id: PersonId) -> None:
        row = self.row_of.pop(learner_id, None)
        if row is None:
            return
        self.present.data[row] = False
        gone = len(self.learners) - len(self.row_of)
        if gone >= max(len(self.row_of), self.compact_after):
            waiting = [self.learners[r] for r in self.row_of.values()]  # in row order
            self._empty()
            self._extend(waiting)

    def best_for(self, mentor: Mentor, row: int, places: int, rules: Rules) -> list[Learner]:
        """Up to ``places`` waiting learners who may be paired with the mentor at index row
        ``row``, best score first (ties by learner id, as one at a time would take them)."""
        if not self.row_of:
            # Nobody waits, often as a mentor joins; the columns keep everyone who ever waited.
            return []
        index, size = self.index, len(self.learners)
        if self.idf is not index.idf:  # a skill got its first teacher, or rarity was recounted
            self._recount()
        # The skill part as ``ProgramIndex.parts`` sums it, term by term in skill order, so that
        # scores (and so ties) come out the same to the last bit.
        shares, skills, total = np.zeros(size, dtype=bool), np.zeros(size), self.total.view()
        for skill in sorted(mentor.teaches.keys() & self.wanting.keys()):
            rows, levels = (column.view() for column in self.wanting[skill])
            shares[rows] = True
            weight = index.idf[index.skill_column[skill]] * levels / total[rows]
            skills[rows] += weight * mentor.teaches[skill]
        speaks = np.zeros(size, dtype=bool)
        for language in mentor.person.languages & self.speaking.keys():
            speaks[self.speaking[language].view()] = True
        rows = np.flatnonzero(shares & speaks & self.present.view())
        table = self.people.view()[rows]
        people, mp = People(*table.T), index.mentor_people
        outside = ~in_chain(people.entry, people.exit, mp.entry[row], mp.exit[row])
        rows, people = rows[outside], People(*table[outside].T)
        parts = index.parts_with(people, skills[rows] / 5.0, np.full(len(rows), row))
        return self._first_fits(rows, parts.score(index.weights), mentor, places, rules)

    def _first_fits(
        self, rows: IntArray, scores: FloatArray, mentor: Mentor, places: int, rules: Rules
    ) -> list[Learner]:
        fits: list[Learner] = []
        # Sorted in numpy, ties too: learners who want the same and fit the mentor alike score
        # the same, thousands of them in a large program, and sorting those in Python took
        # most of a mentor's join (launch_bench.py).
        for row in rows[np.lexsort((self.ids.view()[rows], -scores))]:
            if len(fits) == places:
                break
            if rules.broken_rule(learner := self.learners[row], mentor) is None:
                fits.append(learner)
        return fits

    def _total(self, learner: Learner) -> float:
        columns, idf = self.index.skill_column, self.index.idf
        return sum(idf[columns[s]] * v for s, v in sorted(learner.wants.items()) if s in columns)

    def _recount(self) -> None:
        total = np.zeros(len(self.learners))
        for skill, posting in sorted(self.wanting.items()):
            if skill in self.index.skill_column:
                rows, levels = (column.view() for column in posting)
                total[rows] += self.index.idf[self.index.skill_column[skill]] * levels
        self.total.data[: len(total)] = total
        self.idf = self.index.idf
