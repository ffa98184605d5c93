import numpy as np
import pytest

from crossgen_matching.optimiser.explain import explain_pairs
from crossgen_matching.optimiser.index import ProgramIndex
from crossgen_matching.optimiser.model import (
    Learner,
    Mentor,
    Pair,
    Person,
    Program,
    Rule,
    Weights,
)
from crossgen_matching.optimiser.scoring import (
    OrgChart,
    Rules,
    generation_gap,
    hours_overlap,
    org_of,
    skill_idf,
    utc_window,
)


def person(pid: str, **fields: object) -> Person:
    defaults: dict[str, object] = {"department": "sales", "languages": frozenset({"en"})}
    return Person(id=pid, **{**defaults, **fields})  # type: ignore[arg-type]


def learner(pid: str, wants: dict[str, int], **fields: object) -> Learner:
    return Learner(person(pid, **fields), wants)


def mentor(pid: str, teaches: dict[str, int], capacity: int = 1, **fields: object) -> Mentor:
    return Mentor(person(pid, **fields), teaches, capacity)


def scored(program: Program) -> dict[tuple[str, str], tuple[float, tuple[str, ...]]]:
    """(score, explanation) of every learner with every mentor in a small program."""
    index = ProgramIndex(program, org_of(program))
    out = {}
    for x in program.learners:
        rows = list(range(len(program.mentors)))
        for row, result in zip(rows, explain_pairs(index, [x] * len(rows), rows), strict=True):
            out[x.id, program.mentors[row].id] = result
    return out


def test_a_mentor_teaching_every_wanted_skill_at_level_5_scores_full_skills() -> None:
    weights = Weights(skills=1, cross_department=0, cross_generation=0, working_hours=0)
    program = Program(
        learners=(learner("l", {"figma": 5, "tiktok": 2}),),
        mentors=(mentor("full", {"figma": 5, "tiktok": 5}), mentor("half", {"figma": 3})),
        weights=weights,
    )
    scores = scored(program)
    assert scores["l", "full"][0] == pytest.approx(1.0)
    # Want-points weighted by rarity: figma (2 of 2 mentors) counts less than tiktok (1 of 2).
    figma, tiktok = 5 * skill_idf(2, 2), 2 * skill_idf(1, 2)
    assert scores["l", "half"][0] == pytest.approx(figma / (figma + tiktok) * 3 / 5)


def test_a_rare_skill_weighs_more_than_a_common_one() -> None:
    program = Program(
        learners=(learner("l", {"excel": 3, "rust": 3}),),
        mentors=(
            mentor("excel-1", {"excel": 5}),
            mentor("excel-2", {"excel": 5}),
            mentor("excel-3", {"excel": 5}),
            mentor("rust-1", {"rust": 5}),
        ),
    )
    scores = scored(program)
    assert scores["l", "rust-1"][0] > scores["l", "excel-1"][0]


def test_crossing_departments_adds_exactly_its_weight() -> None:
    program = Program(
        learners=(learner("l", {"ai": 4}, department="finance"),),
        mentors=(
            mentor("same", {"ai": 4}, department="finance"),
            mentor("other", {"ai": 4}, department="marketing"),
        ),
    )
    scores = scored(program)
    gap = scores["l", "other"][0] - scores["l", "same"][0]
    assert gap == pytest.approx(program.weights.cross_department)


def test_generation_gap_comes_from_tenure_or_job_level_and_only_counts_a_senior_learner() -> None:
    w = Weights(full_tenure_gap=15, full_level_gap=4)
    assert generation_gap(w, 20, 5, 3, 3) == pytest.approx(1.0)
    assert generation_gap(w, 10, 5, 3, 3) == pytest.approx(5 / 15)
    assert generation_gap(w, 10, 10, 7, 5) == pytest.approx(2 / 4)
    assert generation_gap(w, 2, 10, 1, 5) == 0.0  # a more senior mentor is no reverse mentoring


@pytest.mark.parametrize(
    ("a", "b", "hours"),
    [
        ((0.0, 9, 17), (0.0, 9, 17), 8.0),
        ((0.0, 9, 17), (1.0, 9, 17), 7.0),  # Berlin starts an hour earlier in UTC
        ((9.0, 9, 17), (-5.0, 9, 17), 0.0),  # Tokyo and New York never overlap
        ((0.0, 22, 6), (0.0, 5, 13), 1.0),  # a night shift wraps around midnight
        ((5.5, 9, 18), (1.0, 9, 17), 4.5),  # India 03:30-12:30 UTC, Berlin 08:00-16:00
    ],
)
def test_working_hours_overlap_on_one_clock(
    a: tuple[float, float, float], b: tuple[float, float, float], hours: float
) -> None:
    assert hours_overlap(*utc_window(*a), *utc_window(*b)) == pytest.approx(hours)


def test_management_chain_covers_managers_of_managers_in_both_directions() -> None:
    org = OrgChart({"ceo": None, "vp": "ceo", "lead": "vp", "dev": "lead", "peer": "vp"})
    dev, ceo, peer = person("dev"), person("ceo"), person("peer")
    assert org.in_chain(dev, ceo) and org.in_chain(ceo, dev)
    assert org.in_chain(dev, person("lead")) and org.in_chain(peer, person("vp"))
    assert not org.in_chain(dev, peer)  # a cousin in the tree is not a manager


def test_a_reporting_cycle_in_bad_hris_data_still_counts_as_one_chain() -> None:
    org = OrgChart({"a": "b", "b": "c", "c": "a", "d": "c"})
    assert org.in_chain(person("a"), person("c"))
    assert org.in_chain(person("d"), person("b"))


def test_a_newcomer_outside_the_org_chart_is_in_their_managers_chain() -> None:
    org = OrgChart({"ceo": None, "vp": "ceo", "other": None})
    newcomer = person("new", manager_id="vp")
    assert org.in_chain(newcomer, person("ceo")) and org.in_chain(person("vp"), newcomer)
    assert not org.in_chain(newcomer, person("other"))
    assert not org.in_chain(person("stranger"), person("ceo"))


@pytest.mark.parametrize(
    ("the_learner", "the_mentor", "rule"),
    [
        (learner("x", {"ai": 3}), mentor("x", {"ai": 3}), Rule.SAME_PERSON),
        (learner("l", {"ai": 3}), mentor("m", {"excel": 3}), Rule.NO_SHARED_SKILL),
        (
            learner("l", {"ai": 3}, languages=frozenset({"de"})),
            mentor("m", {"ai": 3}, languages=frozenset({"fr"})),
            Rule.NO_SHARED_LANGUAGE,
        ),
        (learner("l", {"ai": 3}), mentor("m", {"ai": 3}, manager_id="l"), Rule.MANAGEMENT_CHAIN),
        (learner("l", {"ai": 3}), mentor("m", {"ai": 3}), None),
    ],
)
def test_each_hard_rule(the_learner: Learner, the_mentor: Mentor, rule: Rule | None) -> None:
    program = Program(learners=(the_learner,), mentors=(the_mentor,))
    assert Rules(program).broken_rule(the_learner, the_mentor) is rule


def test_forbidden_and_ended_pairs_are_refused_by_name() -> None:
    a, b, m = learner("a", {"ai": 3}), learner("b", {"ai": 3}), mentor("m", {"ai": 3})
    program = Program(
        learners=(a, b),
        mentors=(m,),
        forbidden=frozenset({Pair("a", "m")}),
        ended=frozenset({Pair("b", "m")}),
    )
    rules = Rules(program)
    assert rules.broken_rule(a, m) is Rule.FORBIDDEN
    assert rules.broken_rule(b, m) is Rule.ENDED_BEFORE


def test_the_chain_reaches_through_managers_who_are_not_in_the_program() -> None:
    a, m = learner("l", {"ai": 3}, manager_id="boss"), mentor("m", {"ai": 3})
    program = Program(learners=(a,), mentors=(m,), org={"boss": "m", "m": None})
    assert Rules(program).broken_rule(a, m) is Rule.MANAGEMENT_CHAIN


@pytest.mark.parametrize(
    "build",
    [
        lambda: learner("l", {"ai": 6}),
        lambda: mentor("m", {"ai": 0}),
        lambda: mentor("m", {"ai": 3}, capacity=4),
        lambda: mentor("m", {"ai": 3}, capacity=0),
        lambda: Weights(skills=-1),
    ],
)
def test_out_of_range_input_is_refused(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_the_explanation_names_the_skills_bonuses_and_rules() -> None:
    the_learner = learner(
        "l",
        {"figma": 4, "excel": 2, "tiktok": 1},
        department="finance",
        tenure_years=22,
        job_level=7,
        languages=frozenset({"en", "de"}),
    )
    rare = mentor(
        "m",
        {"figma": 5, "excel": 3},
        department="design",
        tenure_years=2,
        job_level=2,
        utc_offset=1.0,
        languages=frozenset({"de"}),
    )
    crowd = tuple(mentor(f"c{i}", {"excel": 3}) for i in range(30))
    program = Program(learners=(the_learner,), mentors=(rare, *crowd))
    score, lines = scored(program)["l", "m"]
    text = "\n".join(lines)
    assert "teaches figma (level 5), excel (level 3): 2 of the 3 skills wanted" in text
    assert "figma is rare: taught by 1 of 31 mentors" in text
    assert "crosses departments: finance and design" in text
    assert "crosses generations: 20 more years at the company" in text
    assert "working hours overlap 7.0 h a day" in text
    assert "both speak de; neither is in the other's management chain" in text
    assert lines[-1].startswith(f"score {score:.2f} = skills ")


def test_vector_scores_match_the_formula_by_hand() -> None:
    w = Weights()
    the_learner = learner("l", {"ai": 5}, tenure_years=16, department="a")
    the_mentor = mentor("m", {"ai": 4}, tenure_years=1, department="b", utc_offset=-2.0)
    score, _ = scored(Program(learners=(the_learner,), mentors=(the_mentor,)))["l", "m"]
    by_hand = w.skills * 4 / 5 + w.cross_department + w.cross_generation + w.working_hours * 6 / 8
    assert score == pytest.approx(by_hand)
    assert np.isfinite(score)
