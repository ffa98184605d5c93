from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from crossgen_matching.rules import Candidate, normalise, propose

SKILLS = ["tiktok", "ai tools", "excel", "gen z slang", "figma"]


def person(*skills: str, capacity: int = 1) -> Candidate:
    return Candidate(uuid4(), frozenset(skills), capacity)


def test_the_mentor_teaching_most_of_what_the_learner_wants_is_proposed() -> None:
    learner = person("tiktok", "ai tools")
    some, most = person("tiktok"), person("tiktok", "ai tools")
    proposal = propose(learner, [some, most])
    assert proposal is not None and proposal.mentor_id == most.participant_id
    assert proposal.score == 1.0
    assert "ai tools, tiktok" in proposal.explanation[0]


def test_ties_go_to_who_joined_first() -> None:
    learner = person("excel")
    first, second = person("excel"), person("excel")
    proposal = propose(learner, [first, second])
    assert proposal is not None and proposal.mentor_id == first.participant_id


def test_no_shared_skill_or_no_capacity_means_no_proposal() -> None:
    learner = person("figma")
    assert propose(learner, [person("excel")]) is None
    assert propose(learner, [person("figma", capacity=0)]) is None


def test_skills_are_compared_case_and_space_insensitively() -> None:
    assert normalise([" TikTok ", "tiktok", ""]) == {"tiktok"}


@given(
    st.frozensets(st.sampled_from(SKILLS), min_size=1),
    st.lists(st.tuples(st.frozensets(st.sampled_from(SKILLS)), st.integers(0, 3)), max_size=8),
)
def test_a_proposal_always_shares_a_skill_with_a_mentor_who_has_room(
    wants: frozenset[str], mentors: list[tuple[frozenset[str], int]]
) -> None:
    candidates = [Candidate(uuid4(), skills, capacity) for skills, capacity in mentors]
    proposal = propose(Candidate(uuid4(), wants, 1), candidates)
    if proposal is None:
        assert all(not (c.skills & wants) or c.free_capacity == 0 for c in candidates)
    else:
        mentor = next(c for c in candidates if c.participant_id == proposal.mentor_id)
        assert mentor.free_capacity > 0 and mentor.skills & wants
