"""Choose pairs from candidate arcs: the whole program as one min-cost flow (and a greedy
baseline, kept to measure what the optimisation buys)."""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .candidates import Arcs
from .index import BoolArray
from .scoring import IntArray

SCALE = 1_000_000  # scores are 0..1; integer costs keep six decimals
GREEDY_CHUNK = 1 << 16


class Network(NamedTuple):
    """A min-cost flow problem as plain arrays (so it can be sent to another process); its arcs
    from ``first_pair`` on, ``pairs`` of them, are the candidate pairs."""

    tails: IntArray
    heads: IntArray
    capacities: IntArray
    costs: IntArray
    source: int
    sink: int
    supply: int
    first_pair: int
    pairs: int


# Solves a network: the flow on each of its pair arcs.
Solver = Callable[[Network], IntArray]


def min_cost_flows(network: Network) -> IntArray:
    """The flow on each pair arc of a min-cost flow. OR-Tools keeps the interpreter lock for the
    whole solve, so a caller that must not stall other threads runs this in another process."""
    # Imported at the first solve: OR-Tools takes about 18 MB, which a replica that runs no
    # whole program (most of them, most of the time) need not hold.
    from ortools.graph.python import min_cost_flow

    solver = min_cost_flow.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        network.tails.astype(np.int32),
        network.heads.astype(np.int32),
        network.capacities,
        network.costs,
    )
    solver.set_nodes_supplies(
        np.array([network.source, network.sink], dtype=np.int32),
        np.array([network.supply, -network.supply], dtype=np.int64),
    )
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    first = network.first_pair
    return np.asarray(solver.flows(np.arange(first, first + network.pairs, dtype=np.int32)))


def network(
    arcs: Arcs, learners: int, free_capacity: IntArray, favoured: BoolArray | None = None
) -> Network:
    """source -> learner (capacity 1) -> mentor (capacity 1, cost -score) -> sink (capacity = free
    places). The source sends one unit per learner; a zero-cost source -> sink bypass lets any
    learner stay unmatched, so the solver maximises total score rather than forcing a pairing.
    A favoured arc costs one unit less: a millionth of a score, below what the costs tell apart.
    """
    mentors = len(free_capacity)
    source, sink = learners + mentors, learners + mentors + 1
    learner_nodes = np.arange(learners, dtype=np.int64)
    mentor_nodes = learners + np.arange(mentors, dtype=np.int64)
    tails = np.concatenate([np.full(learners, source), arcs.learner, mentor_nodes, [source]])
    heads = np.concatenate([learner_nodes, learners + arcs.mentor, np.full(mentors, sink), [sink]])
    capacities = np.concatenate(
        [np.ones(learners + len(arcs), dtype=np.int64), free_capacity, [learners]]
    )
    costs = np.concatenate(
        [
            np.zeros(learners, dtype=np.int64),
            -np.rint(arcs.score * SCALE).astype(np.int64)
            - (0 if favoured is None else favoured.astype(np.int64)),
            np.zeros(mentors + 1, dtype=np.int64),
        ]
    )
    return Network(tails, heads, capacities, costs, source, sink, learners, learners, len(arcs))


def flow(
    arcs: Arcs,
    learners: int,
    free_capacity: IntArray,
    favoured: BoolArray | None = None,
    solve: Solver = min_cost_flows,
) -> IntArray:
    """Positions of the arcs in a pairing of maximal total score; among pairings of the same
    total, the one with the most ``favoured`` arcs. ``solve`` solves the network (``network``)."""
    if not len(arcs):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(solve(network(arcs, learners, free_capacity, favoured)) > 0)


def greedy(arcs: Arcs, learners: int, free_capacity: IntArray) -> IntArray:
    """Best score first, while learner and mentor are free: the baseline the flow must beat."""
    taken = np.zeros(learners, dtype=bool)
    left = free_capacity.copy()
    chosen: list[int] = []
    order = np.argsort(-arcs.score, kind="stable")
    for lo in range(0, len(order), GREEDY_CHUNK):
        # Drop whole chunks' worth of arcs whose learner or mentor is done, then walk the rest.
        part = order[lo : lo + GREEDY_CHUNK]
        part = part[~taken[arcs.learner[part]] & (left[arcs.mentor[part]] > 0)]
        for position, learner, mentor in zip(
            part.tolist(), arcs.learner[part].tolist(), arcs.mentor[part].tolist(), strict=True
        ):
            if not taken[learner] and left[mentor] > 0:
                taken[learner] = True
                left[mentor] -= 1
                chosen.append(position)
    return np.array(chosen, dtype=np.int64)
