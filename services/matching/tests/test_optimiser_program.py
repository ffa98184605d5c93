import pytest

from crossgen_matching.optimiser.model import (
    Cause,
    Learner,
    MatchResult,
    Mentor,
    Pair,
    Person,
    PinError,
    Program,
    Rule,
)
from crossgen_matching.optimiser.program import Tuning, match_program
from crossgen_matching.optimiser.scoring import Rules


def person(pid: str, **fields: object) -> Person:
    defaults: dict[str, object] = {"department": "sales", "languages": frozenset({"en"})}
    return Person(id=pid, **{**defaults, **fields})  # type: ignore[arg-type]


def learner(pid: str, wants: dict[str, int], **fields: object) -> Learner:
    return Learner(person(pid, **fields), wants)


def mentor(pid: str, teaches: dict[str, int], capacity: int = 1, **fields: object) -> Mentor:
    return Mentor(person(pid, **fields), teaches, capacity)


def pairs(result: MatchResult) -> dict[str, str]:
    return {p.learner_id: p.mentor_id for p in result.pairings}


def causes(result: MatchResult) -> dict[str, Cause]:
    return {u.learner_id: u.cause for u in result.unmatched}


def test_the_whole_program_is_one_optimisation_not_first_come_first_served() -> None:
    # Alice, served first, would take Xavier (her favourite) and leave Bob with nobody.
    program = Program(
        learners=(learner("alice", {"ai": 5}), learner("bob", {"figma": 5})),
        mentors=(mentor("xavier", {"ai": 5, "figma": 5}), mentor("yara", {"ai": 4})),
    )
    result = match_program(program)
    assert pairs(result) == {"alice": "yara", "bob": "xavier"}
    assert result.unmatched == ()
    assert result.stats.count == 2
    assert result.stats.total == pytest.approx(sum(p.score for p in result.pairings))
    assert result.free_capacity == {"xavier": 0, "yara": 0}


def test_capacity_lets_one_mentor_take_several_learners() -> None:
    program = Program(
        learners=tuple(learner(f"l{i}", {"ai": 3}) for i in range(4)),
        mentors=(mentor("m", {"ai": 5}, capacity=3),),
    )
    result = match_program(program)
    assert len(result.pairings) == 3
    assert causes(result) == {"l3": Cause.MENTORS_FULL}
    assert result.unmatched[0].reason == "the one mentor who fits is full"


def test_every_pair_is_explained() -> None:
    program = Program(
        learners=(learner("l", {"ai": 4}, department="finance", tenure_years=20),),
        mentors=(mentor("m", {"ai": 5}, department="design", tenure_years=1),),
    )
    [pairing] = match_program(program).pairings
    assert pairing.explanation[0] == "teaches ai (level 5): 1 of the 1 skills wanted"
    assert "crosses departments: finance and design" in pairing.explanation
    assert not pairing.pinned


def test_a_pin_is_kept_even_when_the_optimum_would_differ() -> None:
    program = Program(
        learners=(learner("l", {"ai": 5}),),
        mentors=(mentor("best", {"ai": 5}), mentor("pinned", {"ai": 1})),
        pinned=frozenset({Pair("l", "pinned")}),
    )
    [pairing] = match_program(program).pairings
    assert (pairing.mentor_id, pairing.pinned) == ("pinned", True)
    assert "pinned by the program owner" in pairing.explanation


def test_a_pin_uses_up_mentor_capacity() -> None:
    program = Program(
        learners=(learner("pinned", {"ai": 1}), learner("other", {"ai": 5})),
        mentors=(mentor("m", {"ai": 5}),),
        pinned=frozenset({Pair("pinned", "m")}),
    )
    result = match_program(program)
    assert pairs(result) == {"pinned": "m"}
    assert causes(result) == {"other": Cause.MENTORS_FULL}


@pytest.mark.parametrize(
    ("the_learner", "the_mentor", "extra", "rule"),
    [
        (learner("l", {"ai": 3}), mentor("m", {"excel": 3}), {}, Rule.NO_SHARED_SKILL),
        (
            learner("l", {"ai": 3}, languages=frozenset({"de"})),
            mentor("m", {"ai": 3}, languages=frozenset({"ja"})),
            {},
            Rule.NO_SHARED_LANGUAGE,
        ),
        (
            learner("l", {"ai": 3}),
            mentor("m", {"ai": 3}, manager_id="boss"),
            {"org": {"boss": "l"}},
            Rule.MANAGEMENT_CHAIN,
        ),
        (
            learner("l", {"ai": 3}),
            mentor("m", {"ai": 3}),
            {"forbidden": frozenset({Pair("l", "m")})},
            Rule.FORBIDDEN,
        ),
        (
            learner("l", {"ai": 3}),
            mentor("m", {"ai": 3}),
            {"ended": frozenset({Pair("l", "m")})},
            Rule.ENDED_BEFORE,
        ),
    ],
)
def test_a_pin_that_breaks_a_hard_rule_is_an_error_naming_the_rule(
    the_learner: Learner, the_mentor: Mentor, extra: dict[str, object], rule: Rule
) -> None:
    program = Program(
        learners=(the_learner,),
        mentors=(the_mentor,),
        pinned=frozenset({Pair("l", "m")}),
        **extra,  # type: ignore[arg-type]
    )
    with pytest.raises(PinError) as error:
        match_program(program)
    assert error.value.rule is rule
    assert error.value.pair == Pair("l", "m")
    assert str(error.value) == f"pin l -> m: breaks a hard rule: {rule.value}"


@pytest.mark.parametrize(
    ("pinned", "message"),
    [
        ({Pair("ghost", "m")}, "pin ghost -> m: ghost is not a learner in this program"),
        ({Pair("a", "ghost")}, "pin a -> ghost: ghost is not a mentor in this program"),
        ({Pair("a", "m"), Pair("b", "m")}, "pin b -> m: the mentor would have 2 learners"),
        ({Pair("a", "m"), Pair("a", "n")}, "pin a -> n: the learner is also pinned to m"),
    ],
)
def test_a_pin_that_cannot_be_honoured_says_why(pinned: set[Pair], message: str) -> None:
    program = Program(
        learners=(learner("a", {"ai": 3}), learner("b", {"ai": 3})),
        mentors=(mentor("m", {"ai": 3}), mentor("n", {"ai": 3})),
        pinned=frozenset(pinned),
    )
    with pytest.raises(PinError, match=message):
        match_program(program)


def test_forbidden_and_ended_pairs_are_never_proposed() -> None:
    program = Program(
        learners=(learner("a", {"ai": 5}), learner("b", {"ai": 5})),
        mentors=(mentor("m", {"ai": 5}, capacity=2), mentor("n", {"ai": 1}, capacity=2)),
        forbidden=frozenset({Pair("a", "m")}),
        ended=frozenset({Pair("b", "m")}),
    )
    assert pairs(match_program(program)) == {"a": "n", "b": "n"}


def test_accepted_pairings_are_fixed_input_using_capacity_and_are_not_repeated() -> None:
    program = Program(
        learners=(learner("kept", {"ai": 1}), learner("new", {"ai": 5})),
        mentors=(mentor("m", {"ai": 5}),),
        accepted=frozenset({Pair("kept", "m")}),
    )
    result = match_program(program)
    assert result.pairings == ()
    assert causes(result) == {"new": Cause.MENTORS_FULL}
    assert result.free_capacity == {"m": 0}


def test_a_pin_for_a_learner_with_another_accepted_pairing_is_an_error() -> None:
    program = Program(
        learners=(learner("l", {"ai": 3}),),
        mentors=(mentor("m", {"ai": 3}), mentor("n", {"ai": 3})),
        accepted=frozenset({Pair("l", "m")}),
        pinned=frozenset({Pair("l", "n")}),
    )
    with pytest.raises(PinError, match="already has an accepted pairing with m"):
        match_program(program)


def test_each_unmatched_learner_gets_the_reason() -> None:
    program = Program(
        learners=(
            learner("no-supply", {"cobol": 3}),
            learner("no-language", {"ai": 3}, languages=frozenset({"ja"})),
            learner("boss", {"figma": 3}),
            learner("forbidden", {"rust": 3}),
            learner("ended", {"go": 3}),
            learner("mixed", {"sql": 3}),
        ),
        mentors=(
            mentor("ai-1", {"ai": 3}),
            mentor("ai-2", {"ai": 3}),
            mentor("figma", {"figma": 3}, manager_id="boss"),
            mentor("rust", {"rust": 3}),
            mentor("go", {"go": 3}),
            mentor("sql-1", {"sql": 3}, manager_id="mixed"),
            mentor("sql-2", {"sql": 3}),
            mentor("sql-3", {"sql": 3}),
        ),
        forbidden=frozenset({Pair("forbidden", "rust"), Pair("mixed", "sql-2")}),
        ended=frozenset({Pair("ended", "go"), Pair("mixed", "sql-3")}),
    )
    result = match_program(program)
    reasons = {u.learner_id: (u.cause, u.reason) for u in result.unmatched}
    assert reasons == {
        "no-supply": (Cause.NO_MENTOR_TEACHES, "no mentor teaches cobol"),
        "no-language": (
            Cause.NO_SHARED_LANGUAGE,
            "none of the 2 mentors who teach what they want speaks ja",
        ),
        "boss": (
            Cause.MANAGEMENT_CHAIN,
            "the one mentor who teaches what they want and shares a language is out: "
            "1 in their management chain",
        ),
        "forbidden": (
            Cause.FORBIDDEN,
            "the one mentor who teaches what they want and shares a language is out: "
            "1 forbidden by the program owner",
        ),
        "ended": (
            Cause.ENDED_BEFORE,
            "the one mentor who teaches what they want and shares a language is out: "
            "1 paired with them before",
        ),
        "mixed": (
            Cause.MANAGEMENT_CHAIN,
            "all 3 mentors who teach what they want and share a language are out: "
            "1 in their management chain, 1 forbidden by the program owner, "
            "1 paired with them before",
        ),
    }


def test_the_same_program_gives_the_same_result() -> None:
    program = Program(
        learners=tuple(learner(f"l{i}", {"ai": 1 + i % 5, "figma": 3}) for i in range(30)),
        mentors=tuple(mentor(f"m{i}", {"ai": 1 + i % 5}, capacity=1 + i % 3) for i in range(12)),
    )
    assert match_program(program) == match_program(program)


def test_the_priced_top_k_path_keeps_every_rule() -> None:
    learners = tuple(
        learner(f"l{i}", {"ai": 1 + i % 5, "figma": 1 + i % 3}, department=f"d{i % 4}")
        for i in range(60)
    )
    mentors = tuple(
        mentor(
            f"m{i}",
            {"ai": 1 + i % 5} if i % 2 else {"figma": 2 + i % 4},
            capacity=1 + i % 3,
            department=f"d{i % 3}",
            manager_id=f"l{i}",
        )
        for i in range(30)
    )
    program = Program(learners=learners, mentors=mentors)
    exact = match_program(program)
    priced = match_program(program, Tuning(direct_flow_arcs=0, k=2))
    rules = Rules(program)
    by_id = {m.id: m for m in mentors}
    for pairing in priced.pairings:
        learner_ = next(x for x in learners if x.id == pairing.learner_id)
        assert rules.broken_rule(learner_, by_id[pairing.mentor_id]) is None
    assert priced.stats.total >= exact.stats.total - len(learners) * Tuning().epsilon


def test_a_person_listed_twice_in_one_role_is_refused() -> None:
    program = Program(
        learners=(learner("a", {"ai": 3}), learner("a", {"go": 3})),
        mentors=(mentor("m", {"ai": 3}),),
    )
    with pytest.raises(ValueError, match="a learner appears twice"):
        match_program(program)


def test_someone_may_learn_one_skill_and_teach_another_but_never_themselves() -> None:
    program = Program(
        learners=(learner("both", {"ai": 5}), learner("other", {"go": 5})),
        mentors=(mentor("both", {"go": 5, "ai": 5}), mentor("m", {"ai": 2})),
    )
    assert pairs(match_program(program)) == {"both": "m", "other": "both"}


def test_open_proposals_stay_where_moving_them_gains_nothing() -> None:
    """Everyone alike: any pairing is as good as any other, so a run keeps those proposed."""
    learners = tuple(learner(f"l{i}", {"ai": 3}) for i in range(12))
    mentors = tuple(mentor(f"m{i}", {"ai": 5}) for i in range(12))
    proposed = frozenset(Pair(f"l{i}", f"m{(i * 5 + 3) % 12}") for i in range(12))
    result = match_program(Program(learners, mentors, proposed=proposed))
    assert {Pair(learner, mentor) for learner, mentor in pairs(result).items()} == proposed
    # Priced, and sampled so thinly that most proposals are not among the sampled candidates.
    thin = Tuning(sample=1, direct_flow_arcs=0)
    priced = match_program(Program(learners, mentors, proposed=proposed), thin)
    assert {Pair(learner, mentor) for learner, mentor in pairs(priced).items()} == proposed


def test_an_open_proposal_moves_when_that_raises_the_total() -> None:
    """Bob wants only what Xavier teaches: Alice, proposed to Xavier, moves to Yara."""
    program = Program(
        learners=(learner("alice", {"ai": 5}), learner("bob", {"figma": 5})),
        mentors=(mentor("xavier", {"ai": 5, "figma": 5}), mentor("yara", {"ai": 4})),
        proposed=frozenset({Pair("alice", "xavier")}),
    )
    assert pairs(match_program(program)) == {"alice": "yara", "bob": "xavier"}


def test_an_open_proposal_that_now_breaks_a_rule_is_not_kept() -> None:
    program = Program(
        learners=(learner("alice", {"ai": 5}),),
        mentors=(mentor("xavier", {"ai": 5}), mentor("yara", {"ai": 5})),
        forbidden=frozenset({Pair("alice", "xavier")}),
        proposed=frozenset({Pair("alice", "xavier")}),
    )
    assert pairs(match_program(program)) == {"alice": "yara"}
