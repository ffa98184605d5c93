"""The optimiser's vocabulary: who takes part, what the program owner decided, what came out.

Everything is a frozen dataclass so that a program can be handed between threads and cached
without anyone changing it underneath the solver. What there is one of per participant has slots:
a program's live matching keeps them all between joins.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

PersonId = str
Skills = Mapping[str, int]  # skill name -> level 1..5
MAX_CAPACITY = 3


@dataclass(frozen=True, slots=True)
class Person:
    """What matching may know about an employee: no birth date, ever (seniority comes from tenure
    and job level). Working hours are local; ``utc_offset`` puts them on one clock."""

    id: PersonId
    department: str
    languages: frozenset[str]
    utc_offset: float = 0.0
    work_start: float = 9.0
    work_end: float = 17.0
    tenure_years: float = 0.0
    job_level: int = 0
    manager_id: PersonId | None = None


def _check_levels(who: PersonId, skills: Skills) -> None:
    for skill, level in skills.items():
        if not 1 <= level <= 5:
            raise ValueError(f"{who}: level of {skill!r} must be 1..5, got {level}")


@dataclass(frozen=True, slots=True)
class Learner:
    """The senior side: ``wants`` says how much they want each skill (5 = most)."""

    person: Person
    wants: Skills

    def __post_init__(self) -> None:
        _check_levels(self.person.id, self.wants)

    @property
    def id(self) -> PersonId:
        return self.person.id


@dataclass(frozen=True, slots=True)
class Mentor:
    """The junior side: ``teaches`` says how well they know each skill (5 = expert)."""

    person: Person
    teaches: Skills
    capacity: int = 1

    def __post_init__(self) -> None:
        _check_levels(self.person.id, self.teaches)
        if not 1 <= self.capacity <= MAX_CAPACITY:
            raise ValueError(f"{self.id}: capacity must be 1..{MAX_CAPACITY}, got {self.capacity}")

    @property
    def id(self) -> PersonId:
        return self.person.id


@dataclass(frozen=True)
class Weights:
    """How a program values each part of the score; each part is in [0, 1] before weighting."""

    skills: float = 0.6
    cross_department: float = 0.1
    cross_generation: float = 0.15
    working_hours: float = 0.15
    # The gap at which the cross-generation bonus is full, by tenure or by job level.
    full_tenure_gap: float = 15.0
    full_level_gap: float = 4.0

    def __post_init__(self) -> None:
        parts = (self.skills, self.cross_department, self.cross_generation, self.working_hours)
        if min(parts) < 0 or sum(parts) <= 0:
            raise ValueError("weights must be >= 0 and not all zero")
        if self.full_tenure_gap <= 0 or self.full_level_gap <= 0:
            raise ValueError("full generation gaps must be > 0")


@dataclass(frozen=True, order=True, slots=True)
class Pair:
    learner_id: PersonId
    mentor_id: PersonId


@dataclass(frozen=True)
class Program:
    """One matching run's input.

    ``org`` maps every employee to their manager (the whole directory, not only participants, so
    that a chain through a non-participant is still seen); a participant's own ``manager_id``
    wins over it. ``accepted`` pairings are kept as they are: they use mentor capacity and their
    learners are not matched again. ``ended`` pairings are never proposed again. ``proposed``
    pairings (open proposals) are free to move, and move only where that raises the total:
    among equally good pairings, the run keeps the most of them.
    """

    learners: tuple[Learner, ...]
    mentors: tuple[Mentor, ...]
    weights: Weights = field(default_factory=Weights)
    org: Mapping[PersonId, PersonId | None] = field(default_factory=dict)
    pinned: frozenset[Pair] = frozenset()
    forbidden: frozenset[Pair] = frozenset()
    ended: frozenset[Pair] = frozenset()
    accepted: frozenset[Pair] = frozenset()
    proposed: frozenset[Pair] = frozenset()


class Rule(Enum):
    """Hard rules; the value is how a sentence about a broken rule reads."""

    SAME_PERSON = "a person cannot mentor themselves"
    NO_SHARED_SKILL = "the mentor teaches none of the skills the learner wants"
    NO_SHARED_LANGUAGE = "they share no language"
    MANAGEMENT_CHAIN = "one is in the other's management chain"
    FORBIDDEN = "the program owner forbade this pair"
    ENDED_BEFORE = "they were paired before and the pairing ended"


class PinError(ValueError):
    """A pin the optimiser cannot honour; ``rule`` is None when the problem is not a pair rule
    (unknown person, capacity, learner pinned twice)."""

    def __init__(self, pair: Pair, reason: str, rule: Rule | None = None) -> None:
        super().__init__(f"pin {pair.learner_id} -> {pair.mentor_id}: {reason}")
        self.pair = pair
        self.reason = reason
        self.rule = rule


class Cause(Enum):
    """Why a learner stayed unmatched (the main cause; the sentence has the detail)."""

    NO_SKILLS_WANTED = "has listed no skills to learn yet"
    NO_MENTOR_TEACHES = "no mentor teaches a skill they want"
    NO_SHARED_LANGUAGE = "no mentor who teaches what they want shares a language"
    MANAGEMENT_CHAIN = "the mentors who fit are in their management chain"
    FORBIDDEN = "the mentors who fit are forbidden by the program owner"
    ENDED_BEFORE = "they were already paired with every mentor who fits"
    MENTORS_FULL = "every eligible mentor is full"


@dataclass(frozen=True)
class Pairing:
    learner_id: PersonId
    mentor_id: PersonId
    score: float
    explanation: tuple[str, ...]
    pinned: bool = False


@dataclass(frozen=True)
class Unmatched:
    learner_id: PersonId
    cause: Cause
    reason: str


@dataclass(frozen=True)
class ScoreStats:
    count: int
    total: float
    mean: float
    minimum: float
    p10: float
    median: float
    p90: float
    maximum: float


@dataclass(frozen=True)
class MatchResult:
    """New pairings (accepted ones are not repeated here), who stays unmatched and why, and the
    mentors' capacity left over."""

    pairings: tuple[Pairing, ...]
    unmatched: tuple[Unmatched, ...]
    stats: ScoreStats
    free_capacity: Mapping[PersonId, int]
