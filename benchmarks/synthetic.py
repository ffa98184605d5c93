"""A synthetic reverse-mentoring program, reproducible from a seed.

Shaped like a large company: ~200 skills whose popularity falls off like Zipf (a few skills
everyone wants, a long tail), supply ranked a little differently from demand, 50 departments of
uneven size, an org tree per department (seniors manage juniors, so management-chain conflicts
do happen), regions that tie a timezone to a local language with English as the common one.
"""

import numpy as np

from crossgen_matching.optimiser.model import Learner, Mentor, Pair, Person, Program

SKILLS = 200
DEPARTMENTS = 50
# (UTC offset, local language, share of employees)
REGIONS = [
    (-8.0, "en", 0.08),
    (-5.0, "en", 0.17),
    (-3.0, "pt", 0.05),
    (0.0, "en", 0.15),
    (1.0, "de", 0.14),
    (1.0, "fr", 0.09),
    (2.0, "pl", 0.06),
    (5.5, "hi", 0.12),
    (8.0, "zh", 0.08),
    (9.0, "ja", 0.06),
]


def zipf(n: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return p / p.sum()


def program(size: int, newcomers: int = 0, seed: int = 7) -> tuple[Program, tuple[Learner, ...]]:
    """A program of ``size`` learners and size / 2 mentors, and ``newcomers`` more learners from
    the same population who join after the full run."""
    rng = np.random.default_rng(seed)
    learners = size + newcomers
    mentors = size // 2
    n = learners + mentors
    is_learner = np.arange(n) < learners
    demand = zipf(SKILLS, 1.0)
    supply_rank = np.argsort(np.arange(SKILLS) + rng.normal(0, 15, SKILLS))
    supply = np.empty(SKILLS)
    supply[supply_rank] = zipf(SKILLS, 1.0)

    region = rng.choice(len(REGIONS), size=n, p=[r[2] for r in REGIONS])
    department = rng.choice(DEPARTMENTS, size=n, p=zipf(DEPARTMENTS, 0.7))
    # Learners are the seniors: higher job levels and longer tenure.
    level = np.where(is_learner, rng.integers(4, 9, n), rng.integers(1, 5, n))
    tenure = np.round(np.clip(level * 3.0 + rng.normal(0, 3, n), 0, 40), 1)
    start = rng.choice([7.0, 8.0, 8.5, 9.0, 10.0], size=n)
    hours = rng.choice([7.5, 8.0, 9.0], size=n)
    manager = _org_tree(rng, department, level)

    people = []
    for i in range(n):
        offset, local, _ = REGIONS[region[i]]
        languages = {local}
        if local != "en" and rng.random() < 0.75:
            languages.add("en")
        if rng.random() < 0.08:
            languages.add("es")
        people.append(
            Person(
                id=f"p{i}",
                department=f"dept-{department[i]}",
                languages=frozenset(languages),
                utc_offset=offset,
                work_start=float(start[i]),
                work_end=float(start[i] + hours[i]),
                tenure_years=float(tenure[i]),
                job_level=int(level[i]),
                manager_id=None if manager[i] < 0 else f"p{manager[i]}",
            )
        )
    wanted_count = rng.choice([1, 2, 3, 4], size=learners, p=[0.2, 0.35, 0.3, 0.15])
    taught_count = rng.choice([1, 2, 3, 4, 5], size=mentors, p=[0.15, 0.25, 0.3, 0.2, 0.1])
    wanted = rng.choice(SKILLS, size=(learners, 8), p=demand)
    taught = rng.choice(SKILLS, size=(mentors, 8), p=supply)
    want_level = rng.integers(1, 6, size=(learners, 8))
    teach_level = rng.choice([1, 2, 3, 4, 5], size=(mentors, 8), p=[0.1, 0.2, 0.3, 0.25, 0.15])
    capacity = rng.choice([1, 2, 3], size=mentors, p=[0.25, 0.4, 0.35])  # ~5% places to spare

    def skills(row: np.ndarray, levels: np.ndarray, count: int) -> dict[str, int]:
        chosen: dict[str, int] = {}
        for skill, lvl in zip(row, levels, strict=True):
            chosen.setdefault(f"skill-{skill:03d}", int(lvl))
            if len(chosen) == count:
                break
        return chosen

    learner_list = tuple(
        Learner(people[i], skills(wanted[i], want_level[i], wanted_count[i]))
        for i in range(learners)
    )
    mentor_list = tuple(
        Mentor(
            people[learners + j],
            skills(taught[j], teach_level[j], taught_count[j]),
            int(capacity[j]),
        )
        for j in range(mentors)
    )
    # A few pairs the owner forbade and a few pairings that ended before.
    some = rng.integers(0, mentors, size=learners)
    forbidden = {Pair(f"p{i}", f"p{learners + some[i]}") for i in range(0, learners, 1000)}
    ended = {Pair(f"p{i}", f"p{learners + some[i]}") for i in range(1, learners, 100)}
    program = Program(
        learners=learner_list[:size],
        mentors=mentor_list,
        forbidden=frozenset(forbidden),
        ended=frozenset(ended),
    )
    return program, learner_list[size:]


def _org_tree(rng: np.random.Generator, department: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Each person reports to someone more senior in their department; heads report to no one."""
    manager = np.full(len(level), -1)
    for dept in np.unique(department):
        members = np.flatnonzero(department == dept)
        members = members[np.argsort(-level[members], kind="stable")]
        levels = level[members]
        # How many members are strictly more senior than each one.
        higher = np.searchsorted(-levels, -levels, side="left")
        pick = (rng.random(len(members)) * higher).astype(int)
        manager[members] = np.where(higher > 0, members[pick], -1)
    return manager
