"""Who to propose to whom. Plain Python, no I/O: the walking skeleton's simplest rule.

A learner is proposed the mentor with free capacity who teaches the most of the skills the learner
wants (ties go to whoever joined first); a pair needs at least one skill in common.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Candidate:
    participant_id: UUID
    skills: frozenset[str]
    free_capacity: int


@dataclass(frozen=True)
class Proposal:
    learner_id: UUID
    mentor_id: UUID
    score: float
    explanation: tuple[str, ...]


def normalise(skills: Sequence[str]) -> frozenset[str]:
    return frozenset(s.strip().lower() for s in skills if s.strip())


def propose(learner: Candidate, mentors: Sequence[Candidate]) -> Proposal | None:
    """The best mentor for ``learner`` among ``mentors`` (in joining order), or None."""
    best: tuple[int, Candidate] | None = None
    for mentor in mentors:
        shared = len(learner.skills & mentor.skills)
        if mentor.free_capacity > 0 and shared and (best is None or shared > best[0]):
            best = (shared, mentor)
    if best is None:
        return None
    shared_count, mentor = best
    skills = sorted(learner.skills & mentor.skills)
    return Proposal(
        learner_id=learner.participant_id,
        mentor_id=mentor.participant_id,
        score=shared_count / len(learner.skills),
        explanation=(f"mentor teaches {', '.join(skills)}", "mentor has free capacity"),
    )
