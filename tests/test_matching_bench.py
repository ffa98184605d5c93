"""The matching benchmark's growing program: every join counted, by tenth of the way, and the
table it prints."""

import matching_bench


def test_a_growing_program_is_timed_by_tenth_of_the_way() -> None:
    grown = matching_bench.grow(200)
    assert [tenth["mentors"] for tenth in grown["tenths"]] == list(range(20, 201, 20))
    for tenth in grown["tenths"]:
        for join in ("mentor_join_ms", "learner_join_ms"):
            assert 0 <= tenth[join]["p50"] <= tenth[join]["p99"] <= tenth[join]["max"]
    lines = matching_bench.grow_table(grown).splitlines()
    assert len(lines) == 2 + 10 and lines[-1].split()[0] == "200"


def test_mentors_who_join_learners_alike_each_take_one() -> None:
    alike = matching_bench.alike(200, 20)
    assert (alike["waiting_after"], alike["proposed"]) == (180, 20)
    join = alike["mentor_join_ms"]
    assert 0 <= join["p50"] <= join["p99"] <= join["max"]
