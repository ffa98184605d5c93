"""Match a whole program as one optimisation.

prepare (rules, pins, accepted pairings) -> candidate arcs (sampled posting lists) -> choose
(min-cost flow; for large candidate sets first an auction prices the mentors so that two-way
top-K lists by price-adjusted score are short) -> finish (anyone left whom a mentor with room
could take gets them, the rest get a reason; every pair gets its explanation).
"""

from collections.abc import Set
from dataclasses import dataclass

import numpy as np

from .candidates import Arcs, sampled_arcs, top_k, with_pairs
from .explain import explain_pairs
from .index import Eligibility, ProgramIndex
from .model import (
    Cause,
    Learner,
    MatchResult,
    Pairing,
    PersonId,
    PinError,
    Program,
    ScoreStats,
    Unmatched,
)
from .prices import auction, reduced_scores
from .scoring import IntArray, Rules, org_of
from .solve import Solver, flow, min_cost_flows


@dataclass(frozen=True)
class Tuning:
    """Knobs measured in benchmarks/matching_bench.py; the defaults meet its targets."""

    # Draws per (skill, language, time band) list and direction. At 10k learners 8/12/16/24
    # reach 0.990/0.994/0.996/0.998 of the optimum; at 100k (22 s all in at 16), 24 and 32 add
    # 0.6% and 0.9% to the total for 17% and 30% more candidate + solve time, and more memory.
    sample: int = 16
    # Two-way list length by price-adjusted score: 1/2/4/8 reach 0.9942/0.9952/0.9959/0.9959 of
    # the optimum at 10k (sample 16); plain top-K by score needs K=64 for 0.991.
    k: int = 4
    epsilon: float = 0.02  # auction bid step; the auction's total is within learners x epsilon
    direct_flow_arcs: int = 250_000  # up to this many candidates (~2k learners) no pricing


@dataclass(frozen=True)
class Prepared:
    program: Program
    index: ProgramIndex
    rules: Rules
    pinned: tuple[Pairing, ...]
    load: IntArray  # per mentor row: places taken by accepted and pinned pairings
    open_learners: IntArray  # learner rows the optimiser places
    proposed: IntArray  # pair keys of the open proposals it may keep (allowed, mentor with room)


def match_program(
    program: Program, tuning: Tuning | None = None, solve: Solver = min_cost_flows
) -> MatchResult:
    """The full run (also the dry-run preview: it is pure and writes nothing). ``solve`` solves
    its min-cost flow (see ``solve.min_cost_flows``)."""
    tuning = tuning or Tuning()
    prepared = prepare(program)
    arcs = candidate_arcs(prepared, tuning)
    return finish(prepared, arcs, choose(prepared, arcs, tuning, solve))


def prepare(program: Program) -> Prepared:
    """Index the program and fix what is decided: accepted pairings, then pins.

    Raises PinError for a pin that cannot be honoured, naming the broken rule.
    """
    for role, people in (("learner", program.learners), ("mentor", program.mentors)):
        if len({p.id for p in people}) != len(people):
            raise ValueError(f"a {role} appears twice in the program")
    org = org_of(program)
    index = ProgramIndex(program, org)
    rules = Rules(program, org)
    load = np.zeros(len(index.mentors), dtype=np.int64)
    partner_of: dict[PersonId, PersonId] = {}
    for pair in sorted(program.accepted):
        partner_of[pair.learner_id] = pair.mentor_id
        if pair.mentor_id in index.mentor_row:
            load[index.mentor_row[pair.mentor_id]] += 1
    pinned = _pins(program, index, rules, load, partner_of)
    taken = partner_of.keys() | {p.learner_id for p in pinned}
    open_learners = [row for row, learner in enumerate(index.learners) if learner.id not in taken]
    return Prepared(
        program,
        index,
        rules,
        pinned,
        load,
        np.array(open_learners, dtype=np.int64),
        _open_proposals(program, index, rules, load, taken),
    )


def _open_proposals(
    program: Program, index: ProgramIndex, rules: Rules, load: IntArray, taken: Set[PersonId]
) -> IntArray:
    """The pair keys, sorted, of the open proposals that may stand: learner still to place,
    mentor with room, no hard rule broken (the program may have changed since they were made)."""
    learners, mentors = [], []
    for pair in sorted(program.proposed):
        learner = index.learner_row.get(pair.learner_id)
        mentor = index.mentor_row.get(pair.mentor_id)
        if learner is None or mentor is None or pair.learner_id in taken:
            continue
        if load[mentor] < index.mentors[mentor].capacity and (
            rules.broken_rule(index.learners[learner], index.mentors[mentor]) is None
        ):
            learners.append(learner)
            mentors.append(mentor)
    return np.sort(
        index.pair_key(np.array(learners, dtype=np.int64), np.array(mentors, dtype=np.int64))
    )


def _pins(
    program: Program,
    index: ProgramIndex,
    rules: Rules,
    load: IntArray,
    partner_of: dict[PersonId, PersonId],
) -> tuple[Pairing, ...]:
    learners = {learner.id: learner for learner in program.learners}
    pinned: dict[PersonId, Pairing] = {}
    for pair in sorted(program.pinned):
        if pair.learner_id not in learners:
            raise PinError(pair, f"{pair.learner_id} is not a learner in this program")
        if pair.mentor_id not in index.mentor_row:
            raise PinError(pair, f"{pair.mentor_id} is not a mentor in this program")
        if pair.learner_id in pinned:
            other = pinned[pair.learner_id].mentor_id
            raise PinError(pair, f"the learner is also pinned to {other}")
        if pair in program.accepted:
            continue  # already paired for good
        if pair.learner_id in partner_of:
            other = partner_of[pair.learner_id]
            raise PinError(pair, f"the learner already has an accepted pairing with {other}")
        learner = learners[pair.learner_id]
        row = index.mentor_row[pair.mentor_id]
        mentor = index.mentors[row]
        rule = rules.broken_rule(learner, mentor)
        if rule is not None:
            raise PinError(pair, f"breaks a hard rule: {rule.value}", rule)
        load[row] += 1
        if load[row] > mentor.capacity:
            raise PinError(
                pair, f"the mentor would have {load[row]} learners, capacity is {mentor.capacity}"
            )
        [(score, explanation)] = explain_pairs(index, [learner], [row], pinned=True)
        pinned[pair.learner_id] = Pairing(learner.id, mentor.id, score, explanation, pinned=True)
    return tuple(pinned.values())


def candidate_arcs(prepared: Prepared, tuning: Tuning) -> Arcs:
    """The sampled arcs, and each open proposal's, which the sample may have missed."""
    index = prepared.index
    open_mentors = np.flatnonzero(index.capacity > prepared.load)
    arcs = sampled_arcs(index, prepared.open_learners, open_mentors, tuning.sample)
    return with_pairs(index, arcs, prepared.proposed)


def choose(
    prepared: Prepared, arcs: Arcs, tuning: Tuning, solve: Solver = min_cost_flows
) -> IntArray:
    """Positions of the chosen arcs."""
    learners = len(prepared.index.learners)
    free = np.maximum(prepared.index.capacity - prepared.load, 0)
    # Open proposals win ties: publishing a run withdraws and proposes again each one it moves,
    # and all alike, a run moved nearly all of 20,000 for nothing (launch_bench.py).
    proposed = (
        np.isin(prepared.index.pair_key(arcs.learner, arcs.mentor), prepared.proposed)
        if len(prepared.proposed)
        else np.zeros(len(arcs), dtype=bool)
    )
    if len(arcs) <= tuning.direct_flow_arcs:
        return flow(arcs, learners, free, proposed, solve)
    bids = auction(arcs, learners, free, tuning.epsilon)
    reduced = reduced_scores(arcs, learners, bids.price)
    keep = np.unique(
        np.concatenate(
            [
                top_k(arcs.learner, reduced, tuning.k),
                top_k(arcs.mentor, reduced, tuning.k),
                bids.holder[bids.holder >= 0],  # so the flow is never worse than the auction
                np.flatnonzero(proposed),
            ]
        )
    )
    return keep[flow(arcs.take(keep), learners, free, proposed[keep], solve)]


def finish(prepared: Prepared, arcs: Arcs, chosen: IntArray) -> MatchResult:
    index = prepared.index
    used = prepared.load + np.bincount(arcs.mentor[chosen], minlength=len(index.mentors))
    placed = dict(zip(arcs.learner[chosen].tolist(), arcs.mentor[chosen].tolist(), strict=True))
    learners, learner_rows, mentor_rows, unmatched = [], [], [], []
    for row in prepared.open_learners.tolist():
        learner = index.learners[row]
        if row not in placed:
            # Left out of the sample's optimum: the best mentor with room among all who fit.
            fit = index.eligible(learner, among=used < index.capacity)
            if not len(fit.mentors):
                unmatched.append(why_unmatched(learner, index.eligible(learner, ranked=False)))
                continue
            placed[row] = int(fit.mentors[0])
            used[placed[row]] += 1
        learners.append(learner)
        learner_rows.append(row)
        mentor_rows.append(placed[row])
    explained = explain_pairs(
        index, learners, mentor_rows, learner_rows=np.array(learner_rows, dtype=np.int64)
    )
    pairings = list(prepared.pinned)
    for learner, row, (score, explanation) in zip(learners, mentor_rows, explained, strict=True):
        pairings.append(Pairing(learner.id, index.mentors[row].id, score, explanation))
    free = {
        m.id: int(index.capacity[row] - used[row])
        for row, m in enumerate(index.mentors)
        if index.present[row]
    }
    return MatchResult(tuple(pairings), tuple(unmatched), score_stats(pairings), free)


def why_unmatched(learner: Learner, fit: Eligibility) -> Unmatched:
    """The main reason nobody could take ``learner``, with the numbers behind it."""
    if not learner.wants:  # enrolled from the directory without interests
        return Unmatched(learner.id, Cause.NO_SKILLS_WANTED, Cause.NO_SKILLS_WANTED.value)
    if not fit.teaching:
        wanted = ", ".join(sorted(learner.wants))
        return Unmatched(learner.id, Cause.NO_MENTOR_TEACHES, f"no mentor teaches {wanted}")
    if not fit.speaking:
        spoken = " or ".join(sorted(learner.person.languages)) or "a language they gave"
        n = fit.teaching
        reason = (
            f"the one mentor who teaches what they want does not speak {spoken}"
            if n == 1
            else f"none of the {n} mentors who teach what they want speaks {spoken}"
        )
        return Unmatched(learner.id, Cause.NO_SHARED_LANGUAGE, reason)
    if n := len(fit.mentors):
        reason = (
            "the one mentor who fits is full" if n == 1 else f"all {n} mentors who fit are full"
        )
        return Unmatched(learner.id, Cause.MENTORS_FULL, reason)
    excluded = {
        Cause.MANAGEMENT_CHAIN: (fit.in_chain, "in their management chain"),
        Cause.FORBIDDEN: (fit.forbidden, "forbidden by the program owner"),
        Cause.ENDED_BEFORE: (fit.ended, "paired with them before"),
    }
    cause = max(excluded, key=lambda c: excluded[c][0])
    counts = ", ".join(f"{n} {what}" for n, what in excluded.values() if n)
    n = fit.speaking
    who = (
        "the one mentor who teaches what they want and shares a language is out"
        if n == 1
        else f"all {n} mentors who teach what they want and share a language are out"
    )
    return Unmatched(learner.id, cause, f"{who}: {counts}")


def score_stats(pairings: list[Pairing]) -> ScoreStats:
    scores = np.array([p.score for p in pairings], dtype=np.float64)
    if not len(scores):
        return ScoreStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    p10, median, p90 = (float(x) for x in np.percentile(scores, [10, 50, 90]))
    return ScoreStats(
        count=len(scores),
        total=float(scores.sum()),
        mean=float(scores.mean()),
        minimum=float(scores.min()),
        p10=p10,
        median=median,
        p90=p90,
        maximum=float(scores.max()),
    )
