"""Random small programs: the hard rules always hold and the optimisation is really optimal."""

from collections import Counter
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossgen_matching.optimiser.candidates import all_arcs
from crossgen_matching.optimiser.model import Learner, MatchResult, Mentor, Pair, Person, Program
from crossgen_matching.optimiser.program import (
    Tuning,
    candidate_arcs,
    choose,
    match_program,
    prepare,
)
from crossgen_matching.optimiser.scoring import Rules
from crossgen_matching.optimiser.solve import flow, greedy

SKILLS = ("ai", "figma", "excel", "rust")
LANGUAGES = ("en", "de", "ja")
PROPERTIES = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def programs(draw: st.DrawFn, max_learners: int = 9, max_mentors: int = 7) -> Program:
    learner_ids = [f"l{i}" for i in range(draw(st.integers(0, max_learners)))]
    mentor_ids = [f"m{i}" for i in range(draw(st.integers(0, max_mentors)))]
    # An org tree: everyone reports to someone earlier in a random order (or to nobody).
    order = draw(st.permutations(learner_ids + mentor_ids))
    manager = {
        who: draw(st.sampled_from([None, *order[:at]])) if at else None
        for at, who in enumerate(order)
    }

    def person(pid: str) -> Person:
        start = draw(st.sampled_from([7.0, 9.0, 10.0, 22.0]))
        return Person(
            id=pid,
            department=draw(st.sampled_from("abc")),
            languages=frozenset(draw(st.sets(st.sampled_from(LANGUAGES), min_size=1))),
            utc_offset=draw(st.sampled_from([-8.0, 0.0, 1.0, 5.5, 9.0])),
            work_start=start,
            work_end=(start + draw(st.sampled_from([6.0, 8.0]))) % 24,
            tenure_years=draw(st.integers(0, 30)),
            job_level=draw(st.integers(1, 8)),
            manager_id=manager[pid],
        )

    def skills() -> dict[str, int]:
        return draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1))

    learners = tuple(Learner(person(i), skills()) for i in learner_ids)
    mentors = tuple(Mentor(person(i), skills(), draw(st.integers(1, 3))) for i in mentor_ids)
    every_pair = [Pair(a, b) for a in learner_ids for b in mentor_ids]
    some_pairs = st.sets(st.sampled_from(every_pair), max_size=3) if every_pair else st.just(set())
    return Program(
        learners=learners,
        mentors=mentors,
        forbidden=frozenset(draw(some_pairs)),
        ended=frozenset(draw(some_pairs)),
    )


@st.composite
def programs_with_decisions(draw: st.DrawFn) -> Program:
    """A program whose owner pinned some allowed pairs and whose pairs accepted some others,
    each learner in one at most and no mentor beyond capacity: every decision can hold."""
    program = draw(programs())
    rules = Rules(program)
    allowed = [
        Pair(x.id, m.id)
        for x in program.learners
        for m in program.mentors
        if rules.broken_rule(x, m) is None
    ]
    capacity = {m.id: m.capacity for m in program.mentors}
    load: Counter[str] = Counter()
    accepted: set[Pair] = set()
    pinned: set[Pair] = set()
    taken: set[str] = set()
    for pair in draw(st.lists(st.sampled_from(allowed), max_size=5)) if allowed else ():
        if pair.learner_id not in taken and load[pair.mentor_id] < capacity[pair.mentor_id]:
            taken.add(pair.learner_id)
            load[pair.mentor_id] += 1
            (accepted if draw(st.booleans()) else pinned).add(pair)
    return replace(program, accepted=frozenset(accepted), pinned=frozenset(pinned))


def check_hard_rules(program: Program, result: MatchResult) -> None:
    rules = Rules(program)
    learners = {x.id: x for x in program.learners}
    mentors = {m.id: m for m in program.mentors}
    for pairing in result.pairings:
        assert rules.broken_rule(learners[pairing.learner_id], mentors[pairing.mentor_id]) is None
    load = Counter(p.mentor_id for p in result.pairings)
    assert all(load[m.id] <= m.capacity for m in program.mentors)
    assert all(result.free_capacity[m.id] == m.capacity - load[m.id] for m in program.mentors)
    placed = [p.learner_id for p in result.pairings] + [u.learner_id for u in result.unmatched]
    assert sorted(placed) == sorted(learners)  # each learner exactly once: paired or not


def brute_force_best(program: Program) -> float:
    """The best total over every possible assignment (memoised on capacity left)."""
    prepared = prepare(program)
    arcs = all_arcs(prepared.index)
    score = {
        (int(a), int(b)): float(s)
        for a, b, s in zip(arcs.learner, arcs.mentor, arcs.score, strict=True)
    }
    capacity = tuple(m.capacity for m in program.mentors)

    @cache
    def best(learner: int, left: tuple[int, ...]) -> float:
        if learner == len(program.learners):
            return 0.0
        options = [best(learner + 1, left)]
        for m, places in enumerate(left):
            if places and (learner, m) in score:
                fewer = (*left[:m], places - 1, *left[m + 1 :])
                options.append(score[learner, m] + best(learner + 1, fewer))
        return max(options)

    return best(0, capacity)


@PROPERTIES
@given(programs())
def test_no_hard_rule_is_ever_broken_and_no_capacity_exceeded(program: Program) -> None:
    check_hard_rules(program, match_program(program))


@PROPERTIES
@given(programs())
def test_the_priced_top_k_path_keeps_every_rule_and_stays_near_the_optimum(
    program: Program,
) -> None:
    tuning = Tuning(direct_flow_arcs=0, k=1)
    priced = match_program(program, tuning)
    check_hard_rules(program, priced)
    slack = len(program.learners) * tuning.epsilon
    assert priced.stats.total >= match_program(program).stats.total - slack - 1e-9


@PROPERTIES
@given(programs())
def test_the_flow_is_never_worse_than_greedy(program: Program) -> None:
    prepared = prepare(program)
    arcs = candidate_arcs(prepared, Tuning())
    free = prepared.index.capacity - prepared.load
    learners = len(program.learners)
    best = arcs.score[flow(arcs, learners, free)].sum()
    assert best >= arcs.score[greedy(arcs, learners, free)].sum() - 1e-6
    assert best == pytest.approx(arcs.score[choose(prepared, arcs, Tuning())].sum())


@PROPERTIES
@given(programs(max_learners=6, max_mentors=6))
def test_on_tiny_programs_the_result_is_the_brute_force_optimum(program: Program) -> None:
    assert match_program(program).stats.total == pytest.approx(brute_force_best(program), abs=1e-5)


@PROPERTIES
@given(programs())
def test_the_vector_rules_agree_with_the_one_pair_rules(program: Program) -> None:
    index = prepare(program).index
    arcs = all_arcs(index)
    vector = {
        (program.learners[a].id, program.mentors[b].id)
        for a, b in zip(arcs.learner, arcs.mentor, strict=True)
    }
    rules = Rules(program)
    one_by_one = {
        (x.id, m.id)
        for x in program.learners
        for m in program.mentors
        if rules.broken_rule(x, m) is None
    }
    assert vector == one_by_one


@PROPERTIES
@given(programs())
def test_unranked_eligibility_counts_what_ranked_eligibility_does(program: Program) -> None:
    index = prepare(program).index
    for learner in program.learners:
        ranked, unranked = index.eligible(learner), index.eligible(learner, ranked=False)
        assert sorted(unranked.mentors.tolist()) == sorted(ranked.mentors.tolist())
        assert not len(unranked.scores)
        counts = ("teaching", "speaking", "in_chain", "forbidden", "ended")
        assert [getattr(unranked, c) for c in counts] == [getattr(ranked, c) for c in counts]


@PROPERTIES
@given(programs_with_decisions())
def test_pins_and_accepted_pairings_hold_and_so_does_every_rule(program: Program) -> None:
    result = match_program(program)
    made = {Pair(p.learner_id, p.mentor_id): p for p in result.pairings}
    assert all(made[pin].pinned for pin in program.pinned)
    rules = Rules(program)
    learners = {x.id: x for x in program.learners}
    mentors = {m.id: m for m in program.mentors}
    for pair in made:
        assert rules.broken_rule(learners[pair.learner_id], mentors[pair.mentor_id]) is None
    # Accepted pairings are kept as they are: not made again, and their capacity is used.
    kept = {pair.learner_id for pair in program.accepted}
    placed = [p.learner_id for p in result.pairings] + [u.learner_id for u in result.unmatched]
    assert sorted(placed) == sorted(learners.keys() - kept)
    load = Counter(p.mentor_id for p in [*made, *program.accepted])
    assert all(result.free_capacity[m.id] == m.capacity - load[m.id] >= 0 for m in mentors.values())


@PROPERTIES
@given(programs(max_learners=6, max_mentors=6), st.data())
def test_open_proposals_never_cost_score_nor_break_a_rule(
    program: Program, data: st.DataObject
) -> None:
    """Any open proposals, even ones that now break a rule or overfill a mentor: the run keeps
    every rule and stays the optimum, however many it keeps."""
    every_pair = [Pair(x.id, m.id) for x in program.learners for m in program.mentors]
    proposed = data.draw(st.sets(st.sampled_from(every_pair))) if every_pair else set()
    with_proposals = replace(program, proposed=frozenset(proposed))
    result = match_program(with_proposals)
    check_hard_rules(program, result)
    assert result.stats.total == pytest.approx(brute_force_best(program), abs=1e-5)
    # Sampled thinly, so that the sample misses proposals and the run adds them.
    priced = match_program(with_proposals, Tuning(sample=1, direct_flow_arcs=0, k=1))
    check_hard_rules(program, priced)
