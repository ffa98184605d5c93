"""What each mentor is "worth" to the program: prices from an auction over candidate arcs.

Plain top-K by score keeps the same few popular mentors on everyone's list; in a 10k program the
optimal partner sits at median rank 6 and 90th percentile rank 76 of a learner's own list. With
a price per mentor (how contested they are), a learner's best arcs by score - price hold its
optimal partner near the top, so short lists suffice. Prices come from a Jacobi auction: every
unplaced learner bids for its best mentor at once, a mentor keeps its highest bids up to its
capacity, and evicted learners bid again, until nobody has a better offer.
"""

from dataclasses import dataclass

import numpy as np

from .candidates import Arcs
from .scoring import FloatArray, IntArray


@dataclass(frozen=True)
class Auction:
    price: FloatArray  # per mentor row
    holder: IntArray  # per learner row: the arc it holds, or -1
    rounds: int


def auction(arcs: Arcs, learners: int, free_capacity: IntArray, epsilon: float) -> Auction:
    """An epsilon-optimal assignment over ``arcs`` (total within learners x epsilon of the
    best) and the mentor prices that support it. ``arcs`` must be sorted by learner."""
    if np.any(arcs.learner[1:] < arcs.learner[:-1]):
        raise ValueError("arcs must be sorted by learner")
    mentors = len(free_capacity)
    # One extra arc, worth nothing to anyone, fills shortlists of learners with a single arc.
    mentor = np.r_[arcs.mentor, mentors].astype(np.int32)
    score = np.r_[arcs.score, -np.inf].astype(np.float32)
    counts = np.bincount(arcs.learner, minlength=learners)
    first_arc = np.cumsum(counts) - counts
    price = np.zeros(mentors + 1, dtype=np.float32)  # the last entry: "no mentor", never priced
    held = np.full(learners, -1)  # arc each learner holds
    held_mentor = np.full(learners, mentors)
    bid = np.zeros(learners, dtype=np.float32)
    # A learner's two best arcs at its last full scan and the third-best value then: prices
    # only rise, so while one of the two still beats that bound no other arc can be better.
    shortlist = np.zeros((learners, 2), dtype=np.int64)
    bound = np.full(learners, np.inf, dtype=np.float32)
    bidders = np.flatnonzero(counts > 0)
    rounds = 0
    while len(bidders):
        rounds += 1
        values = score[shortlist[bidders]] - price[mentor[shortlist[bidders]]]
        stale = values.max(axis=1) < bound[bidders]
        _scan(bidders[stale], counts, first_arc, mentor, score, price, shortlist, bound)
        values = score[shortlist[bidders]] - price[mentor[shortlist[bidders]]]
        top = values.argmax(axis=1)
        best = values[np.arange(len(bidders)), top]
        # The runner-up may be an arc off the shortlist, worth at most the bound.
        second = np.maximum(np.maximum(values.min(axis=1), bound[bidders]), 0)
        keen = best > 0  # staying out is worth 0
        who = bidders[keen]
        arc = shortlist[who, top[keen]]
        offer = score[arc] - second[keen] + epsilon  # beat the runner-up, and always move
        wanted = np.zeros(mentors + 1, dtype=bool)
        wanted[mentor[arc]] = True
        holders = np.flatnonzero(wanted[held_mentor])
        rivals = np.r_[holders, who]
        rival_arc = np.r_[held[holders], arc]
        rival_bid = np.r_[bid[holders], offer]
        rival_mentor = mentor[rival_arc]
        by_bid = np.lexsort((-rival_bid, rival_mentor))
        ranked = rival_mentor[by_bid]
        starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        rank = np.arange(len(by_bid)) - np.repeat(starts, np.diff(np.r_[starts, len(by_bid)]))
        wins = rank < free_capacity[ranked]
        winners, losers = by_bid[wins], by_bid[~wins]
        held[rivals[losers]] = -1
        held_mentor[rivals[losers]] = mentors
        held[rivals[winners]] = rival_arc[winners]
        held_mentor[rivals[winners]] = ranked[wins]
        bid[rivals[winners]] = rival_bid[winners]
        # A full mentor costs its lowest kept bid; one with room left costs nothing.
        kept = np.bincount(ranked[wins], minlength=mentors)
        lowest = np.full(mentors, np.inf, dtype=np.float32)
        np.minimum.at(lowest, ranked[wins], rival_bid[winners])
        touched = np.flatnonzero(wanted[:-1])
        price[touched] = np.where(kept[touched] >= free_capacity[touched], lowest[touched], 0)
        bidders = np.sort(rivals[losers])
    holder = np.where(held >= 0, held, -1)
    return Auction(price=price[:-1].astype(np.float64), holder=holder, rounds=rounds)


def _scan(
    who: IntArray,
    counts: IntArray,
    first_arc: IntArray,
    mentor: np.ndarray,
    score: np.ndarray,
    price: np.ndarray,
    shortlist: IntArray,
    bound: np.ndarray,
) -> None:
    """Refresh the shortlists of ``who`` from all their arcs at today's prices."""
    if not len(who):
        return
    lengths = counts[who]
    starts = np.cumsum(lengths) - lengths
    position = np.arange(starts[-1] + lengths[-1]) - np.repeat(starts - first_arc[who], lengths)
    values = score[position] - price[mentor[position]]
    for slot in range(3):
        best = np.maximum.reduceat(values, starts)
        if slot == 2:
            bound[who] = best
            break
        at = np.flatnonzero(values == np.repeat(best, lengths))
        first = at[np.r_[True, np.diff(np.searchsorted(starts, at, side="right")) > 0]]
        shortlist[who, slot] = np.where(np.isfinite(best), position[first], len(score) - 1)
        values[first] = -np.inf


def reduced_scores(arcs: Arcs, learners: int, price: FloatArray) -> FloatArray:
    """score - mentor price - learner's best net value: 0 on arcs a learner would take, below 0
    on arcs that would cost more than they bring."""
    net = arcs.score - price[arcs.mentor]
    best = np.zeros(learners)
    np.maximum.at(best, arcs.learner, net)
    return np.asarray(net - best[arcs.learner])
