"""A whole-program run's min-cost flow, solved in a process of its own when it is large.

OR-Tools keeps Python's interpreter lock for the whole of a solve: 0.35 s at 20,000 learners and
over a second at 40,000. The run is in a thread of its own, but for that long the event loop
moves no record and answers no probe. In another process the solve holds nothing here: this
thread waits without the lock, and the network (a few MB of arrays) goes over a pipe in
milliseconds. Starting the process takes about 0.4 s, more than a small solve, so small ones stay
here. A process per solve, not one kept: runs are rare, and nothing is left running between them.

A plain ``python -m`` of this module, not multiprocessing's spawn: spawn imports the parent's
main script again in the child, seconds of imports when that is a benchmark or a test runner.
"""

import io
import subprocess
import sys
from typing import BinaryIO

import numpy as np

from crossgen_matching import optimiser
from crossgen_matching.optimiser.scoring import IntArray

# Learners from which a solve goes to a process. The solve's time follows the learners more than
# the candidate pairs: 30 ms at 2,000 learners (84,000 pairs), 40 ms at 5,000 (21,000 pairs, the
# candidates priced down), 0.35 s at 20,000 (87,000 pairs).
ASIDE_FROM_LEARNERS = 5_000
_NODES = ("source", "sink", "supply", "first_pair", "pairs")


def solve(network: optimiser.Network) -> IntArray:
    """``optimiser.min_cost_flows`` of ``network``, in a process of its own if it is large."""
    if network.supply < ASIDE_FROM_LEARNERS:
        return optimiser.min_cost_flows(network)
    sent = io.BytesIO()
    np.savez(
        sent,
        tails=network.tails,
        heads=network.heads,
        capacities=network.capacities,
        costs=network.costs,
        nodes=np.array([getattr(network, name) for name in _NODES], dtype=np.int64),
    )
    # If this process dies first, the solver's answer meets a closed pipe and it ends.
    solver = subprocess.run(
        [sys.executable, "-m", __name__], input=sent.getvalue(), capture_output=True, check=False
    )
    if solver.returncode:
        why = solver.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        raise RuntimeError(f"the flow solver's process failed ({solver.returncode}): {why[-1]}")
    flows: IntArray = np.load(io.BytesIO(solver.stdout), allow_pickle=False)
    return flows


def _answer(asked: BinaryIO, answer: BinaryIO) -> None:
    with np.load(io.BytesIO(asked.read()), allow_pickle=False) as sent:
        nodes = dict(zip(_NODES, sent["nodes"].tolist(), strict=True))
        network = optimiser.Network(
            sent["tails"], sent["heads"], sent["capacities"], sent["costs"], **nodes
        )
    np.save(answer, optimiser.min_cost_flows(network), allow_pickle=False)


if __name__ == "__main__":
    _answer(sys.stdin.buffer, sys.stdout.buffer)
