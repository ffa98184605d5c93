"""How good a pair is and whether it is allowed at all.

The score's parts are numpy formulas over batches of pairs (``index.py`` gathers the columns);
the hard rules also exist one pair at a time, for pins and as an independent check in tests.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .model import Learner, Mentor, Pair, Person, PersonId, Program, Rule, Weights

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def skill_idf(mentors_teaching: int, mentors: int) -> float:
    """Rarer skills weigh more: smoothed inverse document frequency over the mentor supply."""
    return math.log((1 + mentors) / (1 + mentors_teaching)) + 1.0


def supply(mentors: Iterable[Mentor]) -> dict[str, int]:
    """How many mentors teach each skill."""
    counts: dict[str, int] = defaultdict(int)
    for mentor in mentors:
        for skill in mentor.teaches:
            counts[skill] += 1
    return dict(counts)


def utc_window(utc_offset: float, work_start: float, work_end: float) -> tuple[float, float]:
    """A working day as (start in UTC hours 0..24, length in hours); a night shift wraps."""
    length = (work_end - work_start) % 24 or 24.0
    return (work_start - utc_offset) % 24, length


def hours_overlap(
    start_a: npt.ArrayLike, len_a: npt.ArrayLike, start_b: npt.ArrayLike, len_b: npt.ArrayLike
) -> FloatArray:
    """Hours a day two working windows share, on a 24-hour clock (so 22-06 meets 05-13)."""
    a0, la, b0, lb = (np.asarray(x, dtype=np.float64) for x in (start_a, len_a, start_b, len_b))
    total = np.zeros(np.broadcast(a0, b0).shape)
    for shift in (-24.0, 0.0, 24.0):
        total += np.clip(np.minimum(a0 + la, b0 + lb + shift) - np.maximum(a0, b0 + shift), 0, None)
    return total


def generation_gap(
    weights: Weights,
    learner_tenure: npt.ArrayLike,
    mentor_tenure: npt.ArrayLike,
    learner_level: npt.ArrayLike,
    mentor_level: npt.ArrayLike,
) -> FloatArray:
    """0..1: how much more senior the learner is, by tenure or by job level, whichever says more.

    Only a learner senior to the mentor counts: that is the reverse in reverse mentoring.
    """
    by_tenure = (np.asarray(learner_tenure) - np.asarray(mentor_tenure)) / weights.full_tenure_gap
    by_level = (np.asarray(learner_level) - np.asarray(mentor_level)) / weights.full_level_gap
    return np.clip(np.maximum(by_tenure, by_level), 0.0, 1.0).astype(np.float64)


@dataclass(frozen=True)
class Parts:
    """A batch of pairs' score parts, each 0..1 (the overlap also in hours, to explain it)."""

    skills: FloatArray
    cross_department: npt.NDArray[np.bool_]
    generation: FloatArray
    overlap_hours: FloatArray
    overlap: FloatArray  # share of the shorter working day

    def score(self, weights: Weights) -> FloatArray:
        return np.asarray(
            weights.skills * self.skills
            + weights.cross_department * self.cross_department
            + weights.cross_generation * self.generation
            + weights.working_hours * self.overlap
        )


class OrgChart:
    """Answers "is one of these two in the other's management chain" in O(1).

    Each person gets a depth-first entry/exit number in the org tree, so an ancestor's interval
    holds all its reports' numbers: no ancestor sets to store, and the test vectorises.
    """

    def __init__(self, managers: Mapping[PersonId, PersonId | None]) -> None:
        boss = {p: m for p, m in managers.items() if m is not None and m != p}
        self.entry: dict[PersonId, int] = {}
        self.exit: dict[PersonId, int] = {}
        self._walk(sorted({*managers, *boss.values()} - boss.keys()), boss)
        # Whoever no root reaches hangs off a reporting cycle (bad HRIS data). Everyone in a
        # cycle manages everyone in it: make it a line, top to bottom, with whoever reports into
        # it below its bottom; then walk those trees too.
        stranded = {p: boss[p] for p in boss if p not in self.entry}
        tops = []
        for cycle in _cycles(stranded):
            members = set(cycle)
            del stranded[cycle[-1]]
            tops.append(cycle[-1])
            for person, manager in stranded.items():
                if manager in members and person not in members:
                    stranded[person] = cycle[0]
        self._walk(sorted(tops), stranded)

    def _walk(self, roots: list[PersonId], boss: Mapping[PersonId, PersonId]) -> None:
        reports: dict[PersonId, list[PersonId]] = defaultdict(list)
        for person, manager in sorted(boss.items()):
            reports[manager].append(person)
        clock = len(self.entry)
        for root in roots:
            self.entry[root] = clock
            clock += 1
            stack: list[tuple[PersonId, int]] = [(root, 0)]
            while stack:
                person, next_report = stack[-1]
                below = reports.get(person, [])
                if next_report < len(below):
                    stack[-1] = (person, next_report + 1)
                    self.entry[below[next_report]] = clock
                    clock += 1
                    stack.append((below[next_report], 0))
                else:
                    self.exit[person] = clock
                    stack.pop()

    def interval(self, person: Person) -> tuple[int, int]:
        """(entry, exit). Someone the chart does not know (a newcomer) gets an empty interval at
        their manager's entry: inside every chain above the manager, with nobody below them."""
        if person.id in self.entry:
            return self.entry[person.id], self.exit[person.id]
        if person.manager_id in self.entry:
            return self.entry[person.manager_id], self.entry[person.manager_id]
        return -1, -1

    def in_chain(self, a: Person, b: Person) -> bool:
        return a.id == b.id or bool(in_chain(*self.interval(a), *self.interval(b)))


def _cycles(boss: Mapping[PersonId, PersonId]) -> list[list[PersonId]]:
    """Reporting cycles, each listed upwards: member i reports to member i + 1, the last to the
    first."""
    done: set[PersonId] = set()
    cycles = []
    for start in sorted(boss):
        path: list[PersonId] = []
        on_path: set[PersonId] = set()
        person: PersonId | None = start
        while person is not None and person not in done and person not in on_path:
            path.append(person)
            on_path.add(person)
            person = boss.get(person)
        if person is not None and person in on_path:
            cycles.append(path[path.index(person) :])
        done |= on_path
    return cycles


def in_chain(
    entry_a: npt.ArrayLike, exit_a: npt.ArrayLike, entry_b: npt.ArrayLike, exit_b: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """True where a is b's (indirect) manager or the other way round, or they are one person."""
    ea, xa, eb, xb = (np.asarray(x) for x in (entry_a, exit_a, entry_b, exit_b))
    return np.asarray(((ea <= eb) & (eb < xa)) | ((eb <= ea) & (ea < xb)))


def org_of(program: Program) -> OrgChart:
    managers: dict[PersonId, PersonId | None] = dict(program.org)
    participants: list[Learner | Mentor] = [*program.learners, *program.mentors]
    for someone in participants:
        if someone.person.manager_id is not None or someone.id not in managers:
            managers[someone.id] = someone.person.manager_id
    return OrgChart(managers)


class Rules:
    """The hard rules for one pair at a time: pins are checked here, so that a refused pin can
    say which rule it breaks."""

    def __init__(self, program: Program, org: OrgChart | None = None) -> None:
        self.taught = set(supply(program.mentors))
        self.org = org if org is not None else org_of(program)
        self.forbidden = program.forbidden
        self.ended = program.ended

    def broken_rule(self, learner: Learner, mentor: Mentor) -> Rule | None:
        """The first hard rule the pair breaks, or None if it may be paired."""
        pair = Pair(learner.id, mentor.id)
        if learner.id == mentor.id:
            return Rule.SAME_PERSON
        if not learner.wants.keys() & mentor.teaches.keys() & self.taught:
            return Rule.NO_SHARED_SKILL
        if not learner.person.languages & mentor.person.languages:
            return Rule.NO_SHARED_LANGUAGE
        if self.org.in_chain(learner.person, mentor.person):
            return Rule.MANAGEMENT_CHAIN
        if pair in self.forbidden:
            return Rule.FORBIDDEN
        if pair in self.ended:
            return Rule.ENDED_BEFORE
        return None
