"""The sentences a program owner reads next to every pair: what made it, and the rules it met."""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .index import ProgramIndex
from .model import Learner, Mentor
from .scoring import IntArray

RARE_SHARE = 0.05  # a skill taught by at most this share of the mentors is called rare


class _Numbers(NamedTuple):
    """One pair's score and parts as plain floats (numpy scalars format far slower)."""

    score: float
    skills: float
    cross_department: float
    generation: float
    hours: float
    overlap: float


def explain_pairs(
    index: ProgramIndex,
    learners: Sequence[Learner],
    mentor_rows: Sequence[int],
    pinned: bool = False,
    learner_rows: IntArray | None = None,
) -> list[tuple[float, tuple[str, ...]]]:
    """(score, explanation) for each learner with the mentor at the same position; pass the
    learners' ``learner_rows`` when they are indexed, to skip encoding them again."""
    rows = np.asarray(mentor_rows, dtype=np.int64)
    if learner_rows is None:
        people = index.encode_people([x.person for x in learners])
        wants = index.encode_wants(learners)
    else:
        people, wants = index.learner_people.take(learner_rows), index.wants.take(learner_rows)
    parts = index.parts(people, wants, rows)
    columns = (
        parts.score(index.weights),
        parts.skills,
        parts.cross_department,
        parts.generation,
        parts.overlap_hours,
        parts.overlap,
    )
    numbers = [_Numbers(*n) for n in zip(*(c.astype(float).tolist() for c in columns), strict=True)]
    return [
        (n.score, _sentences(index, learner, index.mentors[row], n, pinned))
        for learner, row, n in zip(learners, rows.tolist(), numbers, strict=True)
    ]


def _sentences(
    index: ProgramIndex, learner: Learner, mentor: Mentor, n: _Numbers, pinned: bool
) -> tuple[str, ...]:
    lp, mp, w, rarity = learner.person, mentor.person, index.weights, index.rarity
    shared = sorted(
        (s for s in learner.wants.keys() & mentor.teaches.keys() if s in rarity),
        key=lambda s: (-rarity[s] * learner.wants[s] * mentor.teaches[s], s),
    )
    taught = ", ".join(f"{s} (level {mentor.teaches[s]})" for s in shared)
    lines = [f"teaches {taught}: {len(shared)} of the {len(learner.wants)} skills wanted"]
    for s in shared:
        if index.supply[s] <= RARE_SHARE * index.supply_mentors:
            lines.append(
                f"{s} is rare: taught by {index.supply[s]} of {index.supply_mentors} mentors"
            )
    if n.cross_department:
        lines.append(f"crosses departments: {lp.department} and {mp.department}")
    if n.generation > 0:
        tenure_gap = lp.tenure_years - mp.tenure_years
        level_gap = lp.job_level - mp.job_level
        if tenure_gap / w.full_tenure_gap >= level_gap / w.full_level_gap:
            lines.append(f"crosses generations: {tenure_gap:g} more years at the company")
        else:
            lines.append(f"crosses generations: {level_gap} job levels apart")
    lines.append(
        f"working hours overlap {n.hours:.1f} h a day"
        if n.hours
        else "working hours do not overlap"
    )
    languages = ", ".join(sorted(lp.languages & mp.languages))
    lines.append(f"both speak {languages}; neither is in the other's management chain")
    if pinned:
        lines.append("pinned by the program owner")
    lines.append(
        f"score {n.score:.2f} = skills {w.skills * n.skills:.2f}"
        f" + departments {w.cross_department * n.cross_department:.2f}"
        f" + generations {w.cross_generation * n.generation:.2f}"
        f" + hours {w.working_hours * n.overlap:.2f}"
    )
    return tuple(lines)
