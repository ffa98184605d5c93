"""The fault suite's short form (issue 8): every fault injected while HRIS records stream in, and
nothing accepted lost, duplicated or reordered; the names of the broker's rounds of faults; and the
options it refuses. ``make faults`` runs the long form."""

from pathlib import Path

import pytest

from crossgen_local.faults import SHORT, fault_names, main, run, show

pytestmark = pytest.mark.integration


def test_no_record_is_lost_duplicated_or_reordered_under_faults(tmp_path: Path) -> None:
    verdict = run(SHORT, tmp_path)
    show(verdict)  # the table of results, shown when the test fails
    assert [fault.name for fault in verdict.faults] == fault_names(SHORT)
    assert verdict.lost == []
    assert verdict.duplicates == []
    assert verdict.reorders == []
    assert verdict.dead_lettered == []
    assert verdict.seen["employees in the directory"] > SHORT.employees  # and the probes


def test_the_brokers_rounds_name_each_fault_by_its_round() -> None:
    once = ["restart kafka", "kill -9 kafka, down 4s", "freeze kafka 4s"]
    assert fault_names(SHORT, kafka_rounds=2) == [f"{name} #{n}" for n in (1, 2) for name in once]
    assert fault_names(SHORT)[3:6] == once  # after each service's kill -9


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--kafka-rounds", "-1"], "--kafka-rounds must be 0 or more"),
        (["--kafka-rounds", "2", "--replicated", "notifications"], "leave out --replicated"),
        (["--replicated", "sessions"], "invalid choice: 'sessions'"),
    ],
)
def test_options_that_cannot_run_are_refused_before_anything_starts(
    args: list[str], said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["faults.py", *args])
    with pytest.raises(SystemExit) as refused:
        main()
    assert refused.value.code == 2
    assert said in capsys.readouterr().err
