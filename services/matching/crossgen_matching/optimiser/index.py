"""The program as numpy arrays and inverted indexes, so that millions of pairs score at once.

Learners and mentors are rows; a pair is (learner row, mentor row). Posting lists map
(skill, language) to the rows who want / teach that skill and speak that language, so a pair
drawn from two matching lists already shares a skill and a language. Skill rarity (IDF) is
fixed when the index is built: a mentor who joins later does not change anyone's score.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .model import Learner, Mentor, Pair, Person, PersonId, Program, Skills
from .scoring import (
    FloatArray,
    IntArray,
    OrgChart,
    Parts,
    generation_gap,
    hours_overlap,
    in_chain,
    skill_idf,
    supply,
    utc_window,
)

BoolArray = npt.NDArray[np.bool_]
Column = npt.NDArray[Any]
KEY_SHIFT = 32  # a pair's key is learner row << 32 | mentor row


class Growing:
    """A numpy array that grows at its end, in amortised O(1) per row: its rows past ``size``
    are room. Two-dimensional ones may be column-major and gain columns."""

    def __init__(
        self, dtype: npt.DTypeLike, width: int | None = None, order: Literal["C", "F"] = "C"
    ) -> None:
        self.size = 0
        self.order = order
        shape = (16,) if width is None else (16, width)
        self.data: npt.NDArray[Any] = np.zeros(shape, dtype, order=order)

    @classmethod
    def of(cls, values: npt.NDArray[Any], order: Literal["C", "F"] = "C") -> "Growing":
        """A growing copy of ``values``."""
        grown = cls(values.dtype, values.shape[1] if values.ndim > 1 else None, order)
        grown.extend(values)
        return grown

    def extend(self, values: npt.ArrayLike) -> None:
        if self.data.dtype.kind == "U":  # text: as wide as its longest value yet
            values = np.asarray(values, dtype=np.str_)
            if values.itemsize > self.data.itemsize:
                self.data = self.data.astype(values.dtype)
        values = np.asarray(values, dtype=self.data.dtype)
        end = self.size + len(values)
        if end > len(self.data):
            self._resize(max(end, 2 * len(self.data)), *self.data.shape[1:])
        self.data[self.size : end] = values
        self.size = end

    def widen(self, width: int) -> None:
        self._resize(len(self.data), width)

    def view(self) -> npt.NDArray[Any]:
        return self.data[: self.size]

    def _resize(self, *shape: int) -> None:
        bigger = np.zeros(shape, self.data.dtype, order=self.order)
        bigger[tuple(slice(0, n) for n in self.data.shape)] = self.data
        self.data = bigger


@dataclass(frozen=True)
class People:
    """Per-person columns that scoring needs, for learners or mentors."""

    department: Column
    tenure: Column
    level: Column
    start: Column  # working day start, UTC hours
    length: Column  # working day length, hours
    entry: Column  # org chart interval
    exit: Column

    def columns(self) -> tuple[Column, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def take(self, rows: IntArray) -> "People":
        return People(*(column[rows] for column in self.columns()))


class GrowingPeople:
    """``People`` that gain rows at their end, in amortised O(1) per row (``Growing``)."""

    def __init__(self, people: People) -> None:
        self._columns = [Growing.of(column) for column in people.columns()]

    def extend(self, more: People) -> None:
        for column, values in zip(self._columns, more.columns(), strict=True):
            column.extend(values)

    def view(self) -> People:
        return People(*(column.view() for column in self._columns))


@dataclass(frozen=True)
class Wants:
    """Wanted skills as (skill column, weight) slots per learner; each learner's weights sum
    to 1, a wanted skill weighing want level x rarity."""

    skill: IntArray
    weight: FloatArray

    def take(self, rows: IntArray) -> "Wants":
        return Wants(self.skill[rows], self.weight[rows])


@dataclass(frozen=True)
class Eligibility:
    """One learner against every mentor: who may be paired with them, best first, and how many
    fell at each hard rule on the way (for "why unmatched"). Unranked, ``mentors`` are in row
    order and ``scores`` empty: enough to count them."""

    mentors: IntArray
    scores: FloatArray
    teaching: int
    speaking: int
    in_chain: int
    forbidden: int
    ended: int


class ProgramIndex:
    """A program's people as columns. Built once per full run; between runs the live matching
    adds mentors who join and marks those who leave (``present``). The mentors' columns grow
    by doubling (``Growing``): a join copying each of them would cost as much as the program is
    large."""

    def __init__(self, program: Program, org: OrgChart) -> None:
        self.weights = program.weights
        self.org = org
        self.learners = program.learners
        self.learner_row = {learner.id: i for i, learner in enumerate(self.learners)}
        counts = supply(program.mentors)
        self.supply = counts  # how many mentors teach each skill, those who joined since too
        self.supply_mentors = len(program.mentors)
        self.skills = sorted(counts)
        self.skill_column = {skill: i for i, skill in enumerate(self.skills)}
        self.rarity = {s: skill_idf(counts[s], len(program.mentors)) for s in self.skills}
        self.idf = np.array([self.rarity[s] for s in self.skills])
        self.departments: dict[str, int] = {}
        self.learner_people = self.encode_people([learner.person for learner in self.learners])
        self.wants = self.encode_wants(self.learners)
        self.want_levels = self._levels([learner.wants for learner in self.learners])
        self.learners_by = _postings(
            (learner.wants, learner.person.languages, self.skill_column)
            for learner in self.learners
        )
        self.mentors: list[Mentor] = list(program.mentors)
        self.mentor_row = {mentor.id: i for i, mentor in enumerate(self.mentors)}
        self._capacity = Growing.of(np.array([m.capacity for m in self.mentors], dtype=np.int64))
        self._present = Growing.of(np.ones(len(self.mentors), dtype=bool))
        # Column-major: "who teaches these skills" reads whole columns, 8x faster at 50k mentors.
        self._teach = Growing.of(self._levels([m.teaches for m in self.mentors]), order="F")
        self._mentor_people = GrowingPeople(self.encode_people([m.person for m in self.mentors]))
        postings = _postings(
            (m.teaches, m.person.languages, self.skill_column) for m in self.mentors
        )
        self._mentors_by = {key: Growing.of(rows) for key, rows in postings.items()}
        languages = sorted({g for m in self.mentors for g in m.person.languages})
        self.language_column = {g: i for i, g in enumerate(languages)}
        self._speaks = Growing.of(self._spoken(self.mentors), order="F")
        self._look()
        self.forbidden = self._by_learner(program.forbidden)
        self.ended = self._by_learner(program.ended)
        # The banned pairs of mentors yet to join, by mentor: each join finds its own at once.
        self.banned_later: dict[PersonId, list[tuple[dict[PersonId, IntArray], PersonId]]] = (
            defaultdict(list)
        )
        for pairs, by_learner in ((program.forbidden, self.forbidden), (program.ended, self.ended)):
            for pair in pairs:
                if pair.mentor_id not in self.mentor_row:
                    self.banned_later[pair.mentor_id].append((by_learner, pair.learner_id))
        self.banned_keys = np.sort(
            np.array(
                [
                    (self.learner_row[learner_id] << KEY_SHIFT) | mentor
                    for banned in (self.forbidden, self.ended)
                    for learner_id, mentors in banned.items()
                    if learner_id in self.learner_row
                    for mentor in mentors
                ],
                dtype=np.int64,
            )
        )

    def _look(self) -> None:
        """The mentors' columns as they stand, taken again after each join: a fresh view at
        every read cost a learner's join as much as the copies had."""
        self.teach = self._teach.view()  # each mentor's level (0 for none) in each skill column
        self.capacity = self._capacity.view()
        self.present = self._present.view()  # False once a mentor leaves (written in place)
        self.mentor_people = self._mentor_people.view()
        self.speaks = self._speaks.view()  # whether each speaks each language (language_column)

    @property
    def mentors_by(self) -> dict[tuple[int, str], IntArray]:
        """The mentors' posting lists, as ``_postings`` makes them (a full run's, once)."""
        return {key: rows.view() for key, rows in self._mentors_by.items()}

    def _spoken(self, mentors: Sequence[Mentor]) -> BoolArray:
        spoken = np.zeros((len(mentors), len(self.language_column)), dtype=bool)
        for row, mentor in enumerate(mentors):
            for language in mentor.person.languages:
                spoken[row, self.language_column[language]] = True
        return spoken

    def _by_learner(self, pairs: Iterable[Pair]) -> dict[PersonId, IntArray]:
        rows: dict[PersonId, list[int]] = defaultdict(list)
        for pair in pairs:
            if pair.mentor_id in self.mentor_row:
                rows[pair.learner_id].append(self.mentor_row[pair.mentor_id])
        return {learner_id: np.array(r, dtype=np.int64) for learner_id, r in rows.items()}

    def encode_people(self, people: Sequence[Person]) -> People:
        windows = np.array(
            [utc_window(p.utc_offset, p.work_start, p.work_end) for p in people], dtype=np.float64
        ).reshape(-1, 2)
        intervals = np.array([self.org.interval(p) for p in people], dtype=np.int64)
        intervals = intervals.reshape(-1, 2)
        codes = [self.departments.setdefault(p.department, len(self.departments)) for p in people]
        return People(
            department=np.array(codes, dtype=np.int64),
            tenure=np.array([p.tenure_years for p in people], dtype=np.float64),
            level=np.array([p.job_level for p in people], dtype=np.float64),
            start=windows[:, 0],
            length=windows[:, 1],
            entry=intervals[:, 0],
            exit=intervals[:, 1],
        )

    def _levels(self, skill_sets: Sequence[Skills]) -> npt.NDArray[np.uint8]:
        levels = np.zeros((len(skill_sets), len(self.skills)), dtype=np.uint8)
        for row, skills in enumerate(skill_sets):
            for skill, level in skills.items():
                if skill in self.skill_column:
                    levels[row, self.skill_column[skill]] = level
        return levels

    def encode_wants(self, learners: Sequence[Learner]) -> Wants:
        """Wanted skills nobody teaches are left out, so they do not dilute the rest."""
        known = [
            [
                (self.skill_column[s], w)
                for s, w in sorted(x.wants.items())
                if s in self.skill_column
            ]
            for x in learners
        ]
        width = max(map(len, known), default=1) or 1
        skill = np.zeros((len(learners), width), dtype=np.int64)
        weight = np.zeros((len(learners), width), dtype=np.float64)
        for row, slots in enumerate(known):
            for j, (column, level) in enumerate(slots):
                skill[row, j] = column
                weight[row, j] = self.idf[column] * level
        total = weight.sum(axis=1, keepdims=True)
        return Wants(skill, np.divide(weight, total, out=np.zeros_like(weight), where=total > 0))

    def parts(self, people: People, wants: Wants, mentors: IntArray) -> Parts:
        """Score parts of learners (one row per pair, or one row for all) against mentor rows."""
        levels = self.teach[mentors[:, None], wants.skill]
        return self.parts_with(people, (wants.weight * levels).sum(axis=1) / 5.0, mentors)

    def parts_with(self, people: People, skills: FloatArray, mentors: IntArray) -> Parts:
        """Score parts as ``parts``, with the skill part (0..1) already worked out."""
        mp = self.mentor_people.take(mentors)
        hours = hours_overlap(people.start, people.length, mp.start, mp.length)
        return Parts(
            skills=skills,
            cross_department=people.department != mp.department,
            generation=generation_gap(
                self.weights, people.tenure, mp.tenure, people.level, mp.level
            ),
            overlap_hours=hours,
            overlap=hours / np.minimum(people.length, mp.length),
        )

    def score(
        self, people: People, wants: Wants, mentors: IntArray
    ) -> tuple[FloatArray, BoolArray]:
        """Scores, and whether each pair shares a skill and stays outside the management chain.
        Language and banned pairs are the caller's: posting lists share a language already."""
        parts = self.parts(people, wants, mentors)
        mp = self.mentor_people
        outside = ~in_chain(people.entry, people.exit, mp.entry[mentors], mp.exit[mentors])
        return parts.score(self.weights), (parts.skills > 0) & outside

    def banned(self, learner_rows: IntArray, mentor_rows: IntArray) -> BoolArray:
        if not len(self.banned_keys):
            return np.zeros(len(learner_rows), dtype=bool)
        return np.isin((learner_rows << KEY_SHIFT) | mentor_rows, self.banned_keys)

    def pair_key(self, learner_rows: IntArray, mentor_rows: IntArray) -> IntArray:
        return (learner_rows << KEY_SHIFT) | mentor_rows

    def pair_rows(self, keys: IntArray) -> tuple[IntArray, IntArray]:
        """The learner and mentor rows of pair keys."""
        return keys >> KEY_SHIFT, keys & ((1 << KEY_SHIFT) - 1)

    def eligible(
        self, learner: Learner, among: BoolArray | None = None, *, ranked: bool = True
    ) -> Eligibility:
        """The mentors ``learner`` may be paired with, best first, out of all mentors or only
        those ``among`` marks (mentors with room, say: far fewer to score). The learner need
        not be indexed; the counts describe the mentors looked at. Not ``ranked``, nobody is
        scored: what only says why the learner waits needs no more."""
        people = self.encode_people([learner.person])
        wants = self.encode_wants([learner])
        columns = wants.skill[0][wants.weight[0] > 0]
        looked_at = self.present if among is None else self.present & among
        teaching = np.flatnonzero(self.teach[:, columns].any(axis=1) & looked_at)
        speaks = np.zeros(len(self.mentors), dtype=bool)
        for language in learner.person.languages & self.language_column.keys():
            speaks |= self.speaks[:, self.language_column[language]]  # a column: contiguous
        speaking = teaching[speaks[teaching]]
        mp = self.mentor_people
        chain = in_chain(people.entry, people.exit, mp.entry[speaking], mp.exit[speaking])
        fair = speaking[~chain]
        forbidden = self._among(fair, self.forbidden.get(learner.id))
        ended = self._among(fair, self.ended.get(learner.id)) & ~forbidden
        fit = fair[~forbidden & ~ended]
        scores = np.empty(0)
        if ranked:
            scores = self.parts(people, wants, fit).score(self.weights)
            best_first = np.argsort(-scores, kind="stable")
            fit, scores = fit[best_first], scores[best_first]
        return Eligibility(
            mentors=fit,
            scores=scores,
            teaching=len(teaching),
            speaking=len(speaking),
            in_chain=int(chain.sum()),
            forbidden=int(forbidden.sum()),
            ended=int(ended.sum()),
        )

    @staticmethod
    def _among(rows: IntArray, banned: IntArray | None) -> BoolArray:
        if banned is None:
            return np.zeros(len(rows), dtype=bool)
        return np.isin(rows, banned)

    def add_mentor(self, mentor: Mentor) -> int:
        """Index a mentor who joined after the build; returns their row.

        They are counted in the supply; rarity stays as it was fixed (``count_rarity`` moves it),
        except that a skill nobody taught before gets a column and the rarity of one teacher. The
        learner columns (``wants``, ``want_levels``, ``learners_by``) keep describing the build,
        since only a full run reads them and it builds a new index.
        """
        for skill in sorted(mentor.teaches.keys() - self.skill_column.keys()):
            self.skill_column[skill] = len(self.skills)
            self.skills.append(skill)
            self.supply[skill] = 0  # counted below with their other skills
            self.rarity[skill] = skill_idf(1, self.supply_mentors)
            self.idf = np.append(self.idf, self.rarity[skill])
            self._teach.widen(len(self.skills))
        for skill in mentor.teaches:
            self.supply[skill] += 1
        self.supply_mentors += 1
        for language in sorted(mentor.person.languages - self.language_column.keys()):
            self.language_column[language] = len(self.language_column)
            self._speaks.widen(len(self.language_column))
        row = len(self.mentors)
        self.mentors.append(mentor)
        self.mentor_row[mentor.id] = row
        self._capacity.extend([mentor.capacity])
        self._present.extend([True])
        self._teach.extend(self._levels([mentor.teaches]))
        self._mentor_people.extend(self.encode_people([mentor.person]))
        self._speaks.extend(self._spoken([mentor]))
        for key in _postings([(mentor.teaches, mentor.person.languages, self.skill_column)]):
            self._mentors_by.setdefault(key, Growing(np.int64)).extend([row])
        for by_learner, learner_id in self.banned_later.pop(mentor.id, ()):
            rows = np.append(by_learner.get(learner_id, []), row)
            by_learner[learner_id] = rows.astype(np.int64)
        self._look()
        return row

    def count_rarity(self) -> None:
        """Fix skill rarity at the supply as it stands, mentors who joined since included: as a
        fresh build over the same mentors counts it (only joins change a kept index)."""
        self.rarity = {
            s: skill_idf(self.supply.get(s, 0), self.supply_mentors) for s in self.skills
        }
        self.idf = np.array([self.rarity[s] for s in self.skills])


def _postings(
    rows: Iterable[tuple[Skills, frozenset[str], dict[str, int]]],
) -> dict[tuple[int, str], IntArray]:
    lists: dict[tuple[int, str], list[int]] = defaultdict(list)
    for row, (skills, languages, columns) in enumerate(rows):
        for skill in skills:
            if skill in columns:
                for language in sorted(languages):
                    lists[columns[skill], language].append(row)
    return {key: np.array(lists[key], dtype=np.int64) for key in sorted(lists)}
