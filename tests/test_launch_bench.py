"""The launch benchmark, small: a directory enrolled in the background, every proposal mailed
once, then a whole-program run previewed; and the table it prints."""

import argparse
from pathlib import Path

import launch_bench


def test_a_small_launch_mails_each_person_once(tmp_path: Path) -> None:
    results = launch_bench.measure(
        argparse.Namespace(employees=20, timeout=120, kill_matching_after=None, changes_rate=20),
        tmp_path,
    )
    emails = results["emails"]
    assert (emails["expected"], emails["arrived"], emails["people_mailed_twice"]) == (20, 20, 0)
    assert 0 <= emails["first_s"] <= emails["last_s"] and results["pairings"] == 10
    # Enrolled by the run, or by an HRIS change that came before the run reached them.
    enrolment = results["enrolment"]
    assert (enrolment["state"], enrolment["to_check"], results["participants"]) == ("done", 20, 20)
    run = results["preview"]
    assert (run["learners"], run["mentors"], run["kept"] + run["proposed"]) == (10, 10, 10)
    assert run["matching_peak_rss_mb"] > 0
    assert "then a whole-program run previewed: 10 learners" in launch_bench.table(results)
    changes = results["changes"]["before"]  # the enrolment of 20 may end before one is sent
    assert changes["sent"] == changes["stored"] >= 100
    assert "HRIS changes before the launch, 20/s: " in launch_bench.table(results)


def test_matching_killed_mid_enrolment_leaves_nobody_out_and_mails_nobody_twice(
    tmp_path: Path,
) -> None:
    """A crash in the middle of the background enrolment: the batch under way is lost with the
    process, and the restarted service goes on where the last committed batch ended."""
    results = launch_bench.measure(
        argparse.Namespace(employees=3000, timeout=300, kill_matching_after=500, changes_rate=10),
        tmp_path,
    )
    assert results["killed"]["state"] == "enrolling", results["killed"]
    enrolment, emails = results["enrolment"], results["emails"]
    # The run enrols most; a person whose HRIS change came before the run reached them was
    # enrolled by that record.
    assert (enrolment["state"], enrolment["to_check"], results["participants"]) == (
        "done", 3000, 3000,
    )  # fmt: skip
    assert (emails["expected"], emails["arrived"], emails["people_mailed_twice"]) == (3000, 3000, 0)
    assert "matching was killed (-9) and started again" in launch_bench.table(results)
    during = results["changes"]["during"]  # HRIS changes sent meanwhile: none lost
    assert during["sent"] == during["stored"] > 0
