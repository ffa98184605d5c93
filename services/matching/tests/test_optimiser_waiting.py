"""A mentor with free places takes the best waiting learners: the columnar search must pick
exactly whom checking every waiting learner one pair at a time would."""

from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crossgen_matching.optimiser.incremental import LiveMatching
from crossgen_matching.optimiser.model import Learner, Mentor, Pair, Person, PersonId, Program
from crossgen_matching.optimiser.waiting import Waiting

SKILLS = ["ai", "go", "figma", "sql"]


def one_at_a_time(matching: LiveMatching, waiting: set[PersonId], mentor: Mentor) -> list[str]:
    """The best waiting learners for ``mentor``, each pair checked and scored on its own."""
    index, row = matching.index, matching.index.mentor_row[mentor.id]
    fits = [
        matching.learners[i]
        for i in sorted(waiting)
        if matching.rules.broken_rule(matching.learners[i], mentor) is None
    ]
    if not fits:
        return []
    people, wants = index.encode_people([x.person for x in fits]), index.encode_wants(fits)
    scores = index.parts(people, wants, np.full(len(fits), row)).score(index.weights)
    return [fits[i].id for i in np.argsort(-scores, kind="stable")[: mentor.capacity]]


Drawn = tuple[dict[str, int], frozenset[str], str, int, int]  # wants, languages, dept, level, boss
people = st.tuples(
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1, max_size=3),
    st.frozensets(st.sampled_from(["en", "de"]), min_size=1),
    st.sampled_from(["sales", "it"]),
    st.integers(1, 8),
    st.integers(0, 30),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(people, min_size=2, max_size=30),
    st.lists(st.integers(1, 3), max_size=12),
    st.sampled_from([1, 3, Waiting.compact_after]),
)
def test_a_joining_mentor_takes_whom_pair_by_pair_checks_would(
    drawn: list[Drawn], capacities: list[int], compact_after: int
) -> None:
    """Also once the columns were built again from those still waiting (``compact_after``)."""
    with patch.object(Waiting, "compact_after", compact_after):
        _mentors_join_one_by_one(drawn, capacities)


def _pid(i: int) -> PersonId:
    """Ids out of the learners' order, some longer than those before: ties go by id."""
    return f"p{7 * i % 31}"


def _mentors_join_one_by_one(drawn: list[Drawn], capacities: list[int]) -> None:
    learners = tuple(
        Learner(
            Person(
                _pid(i),
                department,
                languages,
                job_level=level,
                manager_id=_pid(boss) if boss < i else None,
            ),
            wants,
        )
        for i, (wants, languages, department, level, boss) in enumerate(drawn)
    )
    # Some learners were forbidden with the first mentor to join, and some ended with another.
    forbidden = frozenset(Pair(x.id, "m0") for x in learners[::4])
    ended = frozenset(Pair(x.id, "m1") for x in learners[1::5])
    # One learner is there from the start; the others join while no mentor has room.
    matching = LiveMatching(Program(learners[:1], (), forbidden=forbidden, ended=ended))
    for learner in learners[1:]:
        matching.join_learner(learner)
    for n, capacity in enumerate(capacities):
        _, languages, _, _, boss = drawn[n % len(drawn)]
        teaches = drawn[-1 - n % len(drawn)][0]
        # A mentor may report to a waiting learner: that pair is in the management chain.
        under = _pid(boss % len(drawn))
        mentor = Mentor(Person(f"m{n}", "it", languages, manager_id=under), teaches, capacity)
        waiting = set(matching.waiting)
        repair = matching.join_mentor(mentor)
        assert [p.learner_id for p in repair.proposed] == one_at_a_time(matching, waiting, mentor)
        assert matching.waiting == waiting - {p.learner_id for p in repair.proposed}
        # The rows of those gone are dropped once they outnumber those waiting.
        columns = matching.waiting
        gone = len(columns.learners) - len(columns)
        assert gone < max(len(columns), columns.compact_after)
