"""A whole-program run's min-cost flow, solved in a process of its own when it is large.

OR-Tools keeps Python's interpreter lock for the whole of a solve: 0.35 s at 20,000 learners and
over a second at 40,000. The run is in a thread of its own, but for that long the event loop
moves no record and answers no probe. In another process the solve holds nothing here: this
thread waits without the lock, and the network (a few MB of arrays) goes over a pipe in
milliseconds. Starting the process takes about 0.3 s, more than a small solve, so small ones stay
here. A process per solve, not one kept: runs are rare, and nothing is left running between them.
"""

import contextlib
import multiprocessing
from multiprocessing.connection import Connection

from crossgen_matching import optimiser
from crossgen_matching.optimiser.scoring import IntArray

# Candidate pairs from which a solve goes to a process: 20,000 take 40 ms here (5,000 learners).
ASIDE_FROM_PAIRS = 20_000
# Not fork: this process has threads (the event loop's, the database driver's), and a fork copies
# whatever lock one of them holds.
_SPAWN = multiprocessing.get_context("spawn")


def solve(network: optimiser.Network) -> IntArray:
    """``optimiser.min_cost_flows`` of ``network``, in a process of its own if it is large."""
    if network.pairs < ASIDE_FROM_PAIRS:
        return optimiser.min_cost_flows(network)
    answer, sender = _SPAWN.Pipe(duplex=False)
    # The process holds only the sending end: if this one dies, its answer fails to send and it
    # ends. Daemonic: it is stopped with this one.
    process = _SPAWN.Process(target=_solve_and_send, args=(network, sender), daemon=True)
    process.start()
    sender.close()
    try:
        solved: IntArray | Exception = answer.recv()
    except EOFError:
        raise RuntimeError(f"the solver's process ended with {process.exitcode}") from None
    finally:
        answer.close()
        process.join()
    if isinstance(solved, Exception):
        raise solved
    return solved


def _solve_and_send(network: optimiser.Network, sender: Connection) -> None:
    solved: IntArray | Exception
    try:
        solved = optimiser.min_cost_flows(network)
    except Exception as failed:
        solved = failed
    with contextlib.suppress(BrokenPipeError):  # the process that asked is gone
        sender.send(solved)
