import gc
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossgen_matching.optimiser.incremental import LiveMatching, Repair
from crossgen_matching.optimiser.index import ProgramIndex
from crossgen_matching.optimiser.model import (
    Cause,
    Learner,
    Mentor,
    Pair,
    Person,
    Program,
)
from crossgen_matching.optimiser.program import match_program


def person(pid: str, **fields: object) -> Person:
    defaults: dict[str, object] = {"department": "sales", "languages": frozenset({"en"})}
    return Person(id=pid, **{**defaults, **fields})  # type: ignore[arg-type]


def learner(pid: str, wants: dict[str, int], **fields: object) -> Learner:
    return Learner(person(pid, **fields), wants)


def mentor(pid: str, teaches: dict[str, int], capacity: int = 1, **fields: object) -> Mentor:
    return Mentor(person(pid, **fields), teaches, capacity)


def live(program: Program) -> LiveMatching:
    return LiveMatching(program, match_program(program))


def test_a_newcomer_takes_the_best_mentor_with_room() -> None:
    program = Program(
        learners=(learner("old", {"ai": 5}),),
        mentors=(mentor("busy", {"ai": 5}), mentor("free", {"ai": 3}), mentor("far", {"go": 5})),
    )
    matching = live(program)
    repair = matching.join_learner(learner("new", {"ai": 4}))
    [pairing] = repair.proposed
    assert (pairing.learner_id, pairing.mentor_id) == ("new", "free")
    assert pairing.explanation[0] == "teaches ai (level 3): 1 of the 1 skills wanted"
    assert repair.withdrawn == () and repair.unmatched == ()
    assert matching.mentor_of("old") == "busy"


def test_a_newcomer_may_move_a_proposal_when_that_raises_the_total() -> None:
    # "old" holds the only ai mentor but could as well learn figma elsewhere; "new" only wants ai.
    program = Program(
        learners=(learner("old", {"ai": 5, "figma": 5}),),
        mentors=(mentor("ai", {"ai": 5}), mentor("figma", {"figma": 4})),
    )
    matching = live(program)
    assert matching.mentor_of("old") == "ai"
    repair = matching.join_learner(learner("new", {"ai": 5}))
    assert repair.withdrawn == (Pair("old", "ai"),)
    assert {(p.learner_id, p.mentor_id) for p in repair.proposed} == {
        ("new", "ai"),
        ("old", "figma"),
    }


def test_accepted_pairings_never_move_for_a_newcomer() -> None:
    program = Program(
        learners=(learner("old", {"ai": 5, "figma": 5}),),
        mentors=(mentor("ai", {"ai": 5}), mentor("figma", {"figma": 4})),
        accepted=frozenset({Pair("old", "ai")}),
    )
    matching = live(program)
    repair = matching.join_learner(learner("new", {"ai": 5}))
    assert repair.proposed == () and repair.withdrawn == ()
    [unmatched] = repair.unmatched
    assert unmatched.cause is Cause.MENTORS_FULL
    assert matching.mentor_of("old") == "ai"


def test_a_newcomer_to_a_full_program_waits_for_the_next_mentor() -> None:
    program = Program(
        learners=(learner("a", {"ai": 5}), learner("b", {"ai": 4})),
        mentors=(mentor("one", {"ai": 5}), mentor("two", {"ai": 3})),
    )
    matching = live(program)
    repair = matching.join_learner(learner("new", {"ai": 5}))
    assert repair.proposed == () and repair.withdrawn == ()
    [unmatched] = repair.unmatched
    assert unmatched.cause is Cause.MENTORS_FULL
    assert unmatched.reason == "all 2 mentors who fit are full"
    [pairing] = matching.join_mentor(mentor("three", {"ai": 4})).proposed
    assert (pairing.learner_id, pairing.mentor_id) == ("new", "three")


def test_a_full_re_solve_keeps_accepted_pairings_and_their_capacity() -> None:
    program = Program(
        learners=(learner("old", {"ai": 1}), learner("new", {"ai": 5})),
        mentors=(mentor("m", {"ai": 5}, capacity=2), mentor("n", {"ai": 2})),
        accepted=frozenset({Pair("old", "n")}),
    )
    result = match_program(program)
    assert {(p.learner_id, p.mentor_id) for p in result.pairings} == {("new", "m")}
    assert result.free_capacity == {"m": 1, "n": 0}


def test_a_newcomer_is_kept_out_of_their_managers_chain() -> None:
    program = Program(
        learners=(),
        mentors=(mentor("boss", {"ai": 5}), mentor("other", {"ai": 1})),
        org={"boss": None, "lead": "boss", "other": None},
    )
    matching = live(program)
    [pairing] = matching.join_learner(learner("new", {"ai": 5}, manager_id="lead")).proposed
    assert pairing.mentor_id == "other"


def test_a_mentor_who_joins_takes_the_best_waiting_learners() -> None:
    program = Program(
        learners=(
            learner("a", {"ai": 5}),
            learner("b", {"ai": 1}),
            learner("c", {"go": 5}),
        ),
        mentors=(),
    )
    matching = live(program)
    repair = matching.join_mentor(mentor("m", {"ai": 5, "rust": 2}, capacity=1))
    assert [(p.learner_id, p.mentor_id) for p in repair.proposed] == [("a", "m")]
    assert matching.waiting == {"b", "c"}


def test_mentors_who_join_count_in_skill_rarity_as_in_a_fresh_build() -> None:
    first = mentor("m1", {"ai": 3, "go": 2})
    joining = [mentor("m2", {"ai": 4, "rust": 1}), mentor("m3", {"rust": 2})]
    program = Program(learners=(learner("a", {"rust": 5}),), mentors=(first,))
    matching = live(program)
    matching.join_mentor(first)  # read in by the build already: not counted twice
    for newcomer in joining:
        matching.join_mentor(newcomer)
    matching.index.count_rarity()
    fresh = live(replace(program, mentors=(first, *joining))).index
    assert matching.index.supply == fresh.supply == {"ai": 2, "go": 1, "rust": 2}
    assert matching.index.supply_mentors == fresh.supply_mentors == 3
    assert matching.index.rarity == fresh.rarity


def test_mentors_who_join_are_indexed_as_in_a_fresh_build() -> None:
    """The columns they grow (in place, by doubling) say what a build's say, new skills and
    languages included."""
    first = mentor("m1", {"ai": 3}, capacity=2)
    joining = [
        mentor(
            f"m{i}",
            {"ai": i % 5 + 1, "go": 2} if i % 2 else {"rust": 4},
            capacity=i % 3 + 1,
            languages=frozenset({"en", "de"} if i % 3 else {"fr"}),
            department=f"d{i % 4}",
        )
        for i in range(2, 40)
    ]
    program = Program(learners=(learner("a", {"rust": 5}),), mentors=(first,))
    grown = live(program)
    for newcomer in joining:
        grown.join_mentor(newcomer)
    g, b = grown.index, live(replace(program, mentors=(first, *joining))).index
    assert g.capacity.tolist() == b.capacity.tolist()
    assert g.present.tolist() == b.present.tolist() == [True] * 39
    assert len(grown.used) == 39
    for skill in b.skills:
        assert (g.teach[:, g.skill_column[skill]] == b.teach[:, b.skill_column[skill]]).all()
    # All but the org chart's intervals: the chart is the build's, which never saw the joiners.
    for column in ("department", "tenure", "level", "start", "length"):
        mine, theirs = getattr(g.mentor_people, column), getattr(b.mentor_people, column)
        assert mine.tolist() == theirs.tolist()
    for language in b.language_column:
        assert (
            g.speaks[:, g.language_column[language]] == b.speaks[:, b.language_column[language]]
        ).all()

    def postings(index: ProgramIndex) -> dict[tuple[str, str], list[int]]:
        lists = index.mentors_by.items()
        return {(index.skills[skill], language): rows.tolist() for (skill, language), rows in lists}

    assert postings(g) == postings(b)


def test_when_a_learner_leaves_the_freed_place_goes_to_a_waiting_learner() -> None:
    program = Program(
        learners=(learner("a", {"ai": 5}), learner("b", {"ai": 4, "go": 4})),
        mentors=(mentor("m", {"ai": 5}),),
    )
    matching = live(program)
    assert matching.mentor_of("a") == "m" and matching.waiting == {"b"}
    repair = matching.leave("a")
    assert repair.ended == (Pair("a", "m"),)
    assert [(p.learner_id, p.mentor_id) for p in repair.proposed] == [("b", "m")]


def test_when_a_mentor_leaves_their_learners_are_placed_again() -> None:
    program = Program(
        learners=(learner("a", {"ai": 5}),),
        mentors=(mentor("m", {"ai": 5}), mentor("n", {"ai": 2})),
        accepted=frozenset({Pair("a", "m")}),
    )
    matching = live(program)
    repair = matching.leave("m")
    assert repair.ended == (Pair("a", "m"),)
    assert [(p.learner_id, p.mentor_id) for p in repair.proposed] == [("a", "n")]


def test_unknown_or_duplicate_people_are_refused() -> None:
    matching = live(Program(learners=(learner("a", {"ai": 5}),), mentors=(mentor("m", {"ai": 5}),)))
    with pytest.raises(ValueError, match="ghost is not in this program"):
        matching.leave("ghost")
    with pytest.raises(ValueError, match="already a learner"):
        matching.join_learner(learner("a", {"ai": 5}))
    matching.leave("m")
    with pytest.raises(ValueError, match="m left this program"):
        matching.join_mentor(mentor("m", {"ai": 5}))


def test_people_a_load_read_in_before_their_join_are_placed_by_it() -> None:
    # Loaded without a run: the learner waits and the mentor has a free place.
    matching = LiveMatching(
        Program(learners=(learner("a", {"ai": 5}),), mentors=(mentor("m", {"ai": 5}),))
    )
    assert matching.waiting == {"a"}
    repair = matching.join_learner(learner("a", {"ai": 5}))
    assert [(p.learner_id, p.mentor_id) for p in repair.proposed] == [("a", "m")]
    assert matching.join_mentor(mentor("m", {"ai": 5})) == Repair()  # their place is taken


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["learner", "mentor", "leave"]),
            st.dictionaries(st.sampled_from(["ai", "go", "figma"]), st.integers(1, 5), min_size=1),
            st.integers(1, 3),
            st.sampled_from(["en", "de"]),
        ),
        max_size=25,
    )
)
def test_any_sequence_of_joins_and_leaves_keeps_the_rules(
    steps: list[tuple[str, dict[str, int], int, str]],
) -> None:
    program = Program(
        learners=(learner("l0", {"ai": 3}), learner("l1", {"go": 2})),
        mentors=(mentor("m0", {"ai": 4}, capacity=1), mentor("m1", {"go": 4}, capacity=2)),
        accepted=frozenset({Pair("l0", "m0")}),
        ended=frozenset({Pair("l1", "m1")}),
    )
    matching = live(program)
    people: dict[str, Learner | Mentor] = {}
    for n, (kind, skills, capacity, language) in enumerate(steps):
        languages = frozenset({language})
        if kind == "learner":
            matching.join_learner(learner(f"x{n}", skills, languages=languages))
            people[f"x{n}"] = learner(f"x{n}", skills, languages=languages)
        elif kind == "mentor":
            matching.join_mentor(mentor(f"x{n}", skills, capacity, languages=languages))
            people[f"x{n}"] = mentor(f"x{n}", skills, capacity, languages=languages)
        elif people:
            gone = sorted(people)[n % len(people)]
            matching.leave(gone)
            del people[gone]
    load = Counter(h.mentor for h in matching.holding.values())
    index = matching.index
    for row, count in load.items():
        assert index.present[row] and count <= index.capacity[row]
    for learner_id, holding in matching.holding.items():
        if learner_id != "l0":  # the accepted pairing was fixed input
            the_learner = matching.learners[learner_id]
            assert matching.rules.broken_rule(the_learner, index.mentors[holding.mentor]) is None
    assert matching.mentor_of("l0") == "m0"


def test_a_pairing_ended_by_leaving_is_never_proposed_again() -> None:
    program = Program(
        learners=(learner("a", {"ai": 5}),),
        mentors=(mentor("m", {"ai": 5}), mentor("n", {"ai": 1})),
    )
    matching = live(program)
    assert matching.mentor_of("a") == "m"
    matching.leave("a")
    [pairing] = matching.join_learner(learner("a", {"ai": 5})).proposed
    assert pairing.mentor_id == "n"


def test_an_expired_proposal_is_never_made_again_and_both_sides_are_placed_anew() -> None:
    program = Program(
        learners=(learner("a", {"ai": 5}), learner("b", {"ai": 4, "go": 4})),
        mentors=(mentor("m", {"ai": 5}), mentor("n", {"ai": 1, "go": 1})),
    )
    matching = live(program)
    assert (matching.mentor_of("a"), matching.mentor_of("b")) == ("m", "n")
    [repair] = matching.expire([Pair("a", "m")])
    # "a" takes n from "b", who moves to m: the best total without the expired pair.
    assert repair.withdrawn == (Pair("b", "n"),)
    assert {(p.learner_id, p.mentor_id) for p in repair.proposed} == {("a", "n"), ("b", "m")}
    assert Pair("a", "m") in matching.rules.ended and matching.waiting == set()


def test_an_expired_proposal_leaves_its_learner_waiting_when_nobody_else_fits() -> None:
    matching = live(Program(learners=(learner("a", {"ai": 5}),), mentors=(mentor("m", {"ai": 5}),)))
    [repair] = matching.expire([Pair("a", "m")])
    assert repair.proposed == () and matching.waiting == {"a"}
    [unmatched] = repair.unmatched
    assert unmatched.cause is Cause.ENDED_BEFORE
    assert matching.used.tolist() == [0]
    with pytest.raises(ValueError, match="not an open proposal"):
        matching.expire([Pair("a", "m")])


def test_proposals_that_expire_together_all_end_before_anyone_is_placed() -> None:
    program = Program(
        learners=(learner("a", {"ai": 5}), learner("b", {"ai": 5})),
        mentors=(mentor("m", {"ai": 5}), mentor("n", {"ai": 4})),
    )
    matching = live(program)
    a, b = matching.mentor_of("a"), matching.mentor_of("b")
    assert a is not None and b is not None
    first, second = matching.expire([Pair("a", a), Pair("b", b)])
    # Not b's proposal moved to make room for "a": it is closed, not moved.
    assert first.withdrawn == second.withdrawn == ()
    assert [(p.learner_id, p.mentor_id) for p in first.proposed] == [("a", b)]
    assert [(p.learner_id, p.mentor_id) for p in second.proposed] == [("b", a)]


def pinned(program: Program, *pins: Pair) -> LiveMatching:
    """The live matching of ``program`` whose owner pinned ``pins``, some for people yet to join."""
    return LiveMatching(replace(program, pinned=frozenset(pins)), match_program(program))


def test_a_pinned_newcomer_gets_their_mentor_even_when_a_better_one_is_free() -> None:
    program = Program(learners=(), mentors=(mentor("best", {"ai": 5}), mentor("pin", {"ai": 1})))
    repair = pinned(program, Pair("new", "pin")).join_learner(learner("new", {"ai": 5}))
    [pairing] = repair.proposed
    assert (pairing.mentor_id, pairing.pinned) == ("pin", True)
    assert "pinned by the program owner" in pairing.explanation
    assert repair.unheld_pins == ()


def test_a_pin_to_a_full_mentor_moves_their_weakest_proposal_elsewhere() -> None:
    program = Program(
        learners=(learner("held", {"ai": 5}), learner("weak", {"ai": 1})),
        mentors=(mentor("pin", {"ai": 5}, capacity=2), mentor("other", {"ai": 3})),
        accepted=frozenset({Pair("held", "pin")}),
    )
    matching = pinned(program, Pair("new", "pin"))
    assert matching.mentor_of("weak") == "pin"
    repair = matching.join_learner(learner("new", {"ai": 2}))
    assert repair.withdrawn == (Pair("weak", "pin"),)
    assert [(p.learner_id, p.mentor_id) for p in repair.proposed] == [
        ("new", "pin"),
        ("weak", "other"),
    ]
    assert (matching.mentor_of("held"), matching.mentor_of("new")) == ("pin", "pin")


@pytest.mark.parametrize(
    ("pin", "accepted", "forbidden", "reason"),
    [
        (Pair("new", "gone"), set(), set(), "gone is not a mentor in this program"),
        (Pair("new", "pin"), {Pair("held", "pin")}, set(), "full with accepted or pinned"),
        (Pair("new", "pin"), set(), {Pair("new", "pin")}, "the program owner forbade this pair"),
    ],
)
def test_a_pin_that_cannot_hold_falls_back_to_the_usual_join_and_says_why(
    pin: Pair, accepted: set[Pair], forbidden: set[Pair], reason: str
) -> None:
    program = Program(
        learners=(learner("held", {"ai": 5}),),
        mentors=(mentor("pin", {"ai": 5}), mentor("other", {"ai": 3})),
        accepted=frozenset(accepted),
        forbidden=frozenset(forbidden),
    )
    repair = pinned(program, pin).join_learner(learner("new", {"ai": 5}))
    [unheld] = repair.unheld_pins
    assert unheld.pair == pin and reason in unheld.reason
    [pairing] = [p for p in repair.proposed if p.learner_id == "new"]
    assert pairing.mentor_id != "pin" and not pairing.pinned
    assert pairing.explanation[-1].startswith(f"not with {pin.mentor_id}, whom they are pinned to")


def test_a_forbidden_pair_is_never_proposed_at_join() -> None:
    program = Program(
        learners=(),
        mentors=(mentor("best", {"ai": 5}), mentor("other", {"ai": 1})),
        forbidden=frozenset({Pair("new", "best")}),
    )
    [pairing] = LiveMatching(program).join_learner(learner("new", {"ai": 5})).proposed
    assert pairing.mentor_id == "other"
    waiting = replace(program, learners=(learner("new", {"ai": 5}),), mentors=())
    assert LiveMatching(waiting).join_mentor(mentor("best", {"ai": 5})).proposed == ()
    # The mentor joins before the learner: the index learns the pair with the mentor.
    later = LiveMatching(replace(program, mentors=(mentor("other", {"ai": 1}),)))
    later.join_mentor(mentor("best", {"ai": 5}))
    [pairing] = later.join_learner(learner("new", {"ai": 5})).proposed
    assert pairing.mentor_id == "other"


def test_a_mentor_who_joins_takes_the_learners_pinned_to_them_first() -> None:
    program = Program(
        learners=(learner("keen", {"ai": 5}), learner("lukewarm", {"ai": 1})),
        mentors=(mentor("busy", {"go": 5}),),
    )
    matching = pinned(program, Pair("lukewarm", "new"))
    [pairing] = matching.join_mentor(mentor("new", {"ai": 5})).proposed
    assert (pairing.learner_id, pairing.pinned) == ("lukewarm", True)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(["ai", "go"]), st.integers(1, 5), min_size=1),
            st.sampled_from(["en", "de"]),
            st.sampled_from(["m0", "m1", "m2", "gone"]),
        ),
        max_size=12,
    )
)
def test_pins_at_join_never_break_a_hard_rule_or_a_capacity(
    joiners: list[tuple[dict[str, int], str, str]],
) -> None:
    program = Program(
        learners=(learner("l0", {"ai": 3}), learner("l1", {"go": 2})),
        mentors=(
            mentor("m0", {"ai": 4}),
            mentor("m1", {"go": 4}, capacity=2),
            mentor("m2", {"ai": 2, "go": 2}, capacity=3, languages=frozenset({"de"})),
        ),
        accepted=frozenset({Pair("l0", "m0")}),
        forbidden=frozenset({Pair("x1", "m1")}),
    )
    pins = [Pair(f"x{n}", mentor_id) for n, (_, _, mentor_id) in enumerate(joiners)]
    matching = pinned(program, *pins)
    for n, (wants, language, _) in enumerate(joiners):
        matching.join_learner(learner(f"x{n}", wants, languages=frozenset({language})))
    index = matching.index
    for row, count in Counter(h.mentor for h in matching.holding.values()).items():
        assert count <= index.capacity[row]
    for learner_id, holding in matching.holding.items():
        if learner_id != "l0":  # the accepted pairing was fixed input
            the_learner = matching.learners[learner_id]
            assert matching.rules.broken_rule(the_learner, index.mentors[holding.mentor]) is None


def test_a_live_matching_let_go_is_freed_without_the_cycle_collector() -> None:
    """Services freeze what full collections keep (``cli.freeze_what_lives_on``): a program's
    live matching, replaced, must go when its last reference does, with no cycle left behind."""
    program = Program(
        learners=(learner("boss", {"ai": 5}), learner("old", {"go": 4}, manager_id="boss")),
        mentors=(mentor("ai", {"ai": 5}, capacity=2), mentor("go", {"go": 3})),
    )
    result = match_program(program)
    gc.collect()
    gc.disable()
    try:
        matching = LiveMatching(program, result)
        matching.join_learner(learner("new", {"ai": 4}, manager_id="old"))
        matching.join_mentor(mentor("junior", {"go": 5}, manager_id="ai"))
        matching.index.count_rarity()
        del matching
        assert gc.collect() == 0
    finally:
        gc.enable()
