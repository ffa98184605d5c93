"""Choose pairs from candidate arcs: the whole program as one min-cost flow (and a greedy
baseline, kept to measure what the optimisation buys)."""

import numpy as np
from ortools.graph.python import min_cost_flow

from .candidates import Arcs
from .index import BoolArray
from .scoring import IntArray

SCALE = 1_000_000  # scores are 0..1; integer costs keep six decimals
GREEDY_CHUNK = 1 << 16


def flow(
    arcs: Arcs, learners: int, free_capacity: IntArray, favoured: BoolArray | None = None
) -> IntArray:
    """Positions of the arcs in a pairing of maximal total score; among pairings of the same
    total, the one with the most ``favoured`` arcs.

    source -> learner (capacity 1) -> mentor (capacity 1, cost -score) -> sink (capacity = free
    places). The source sends one unit per learner; a zero-cost source -> sink bypass lets any
    learner stay unmatched, so the solver maximises total score rather than forcing a pairing.
    A favoured arc costs one unit less: a millionth of a score, below what the costs tell apart.
    """
    if not len(arcs):
        return np.zeros(0, dtype=np.int64)
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
    solver = min_cost_flow.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32), heads.astype(np.int32), capacities, costs
    )
    solver.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([learners, -learners], dtype=np.int64)
    )
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    pair_arcs = np.arange(learners, learners + len(arcs), dtype=np.int32)
    return np.flatnonzero(solver.flows(pair_arcs) > 0)


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
