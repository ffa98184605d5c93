"""A min-cost flow solved in a process of its own answers as it would here, failures too."""

import subprocess
import sys

import numpy as np
import pytest

from crossgen_matching import optimiser, solver_process
from crossgen_matching.optimiser.candidates import Arcs
from crossgen_matching.optimiser.solve import network


def two_learners_one_mentor() -> optimiser.Network:
    arcs = Arcs(np.array([0, 1]), np.array([0, 0]), np.array([0.4, 0.9]))
    return network(arcs, 2, np.array([1], dtype=np.int64))


def test_a_large_flow_is_solved_elsewhere_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    here = solver_process.solve(two_learners_one_mentor())
    assert here.tolist() == [0, 1]
    monkeypatch.setattr(solver_process, "ASIDE_FROM_LEARNERS", 1)
    assert solver_process.solve(two_learners_one_mentor()).tolist() == here.tolist()


def test_a_solve_that_fails_elsewhere_fails_here(monkeypatch: pytest.MonkeyPatch) -> None:
    unbalanced = two_learners_one_mentor()._replace(sink=0)  # supplies cancel out on one node
    with pytest.raises(RuntimeError, match="min-cost flow failed"):
        optimiser.min_cost_flows(unbalanced)
    monkeypatch.setattr(solver_process, "ASIDE_FROM_LEARNERS", 1)
    with pytest.raises(RuntimeError, match="min-cost flow failed"):
        solver_process.solve(unbalanced)


def test_a_service_that_has_solved_nothing_has_not_loaded_the_solver() -> None:
    # OR-Tools is about 18 MB of every replica's memory, needed only by whole-program runs.
    started = "import sys, crossgen_matching.__main__; print('ortools' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", started], capture_output=True, check=True)
    assert loaded.stdout.strip() == b"False"
