"""The fault suite's short form (issue 8): every fault injected while HRIS records stream in, and
nothing accepted lost, duplicated or reordered. ``make faults`` runs the long form."""

from pathlib import Path

import pytest

from crossgen_local.faults import SHORT, fault_names, run, show

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
