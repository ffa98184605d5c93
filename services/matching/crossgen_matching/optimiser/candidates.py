"""Which pairs the solver looks at.

Scoring every pair that shares a skill and a language is quadratic (3.6M pairs at 10k learners,
360M at 100k), so candidates come from posting lists: for each (skill, language) and each
3-hour band of working-day start, a learner draws mentors from its own band, at half the rate
from the two neighbouring bands and from the whole list, and each mentor draws learners the same
way. Draws are stratified over lists sorted by skill level, so a learner sees mentors of every
level and every mentor is drawn about equally often. A list no longer than the draws is taken
whole, so a small program gets every allowed pair.
"""

from dataclasses import dataclass
from itertools import groupby

import numpy as np
import numpy.typing as npt

from .index import ProgramIndex
from .scoring import FloatArray, IntArray

CHUNK = 1 << 20  # pairs scored at once: bounds the memory of one step
BANDS = 8  # 3-hour bands of working-day start (UTC)
ANY_BAND = BANDS  # the key of a whole (skill, language) list, across bands
SEED = 20240611  # samples are reproducible: the same program gives the same pairings


@dataclass(frozen=True)
class Arcs:
    """Allowed pairs as parallel arrays of learner rows, mentor rows and scores."""

    learner: IntArray
    mentor: IntArray
    score: FloatArray

    def __len__(self) -> int:
        return len(self.learner)

    def take(self, keep: IntArray) -> "Arcs":
        return Arcs(self.learner[keep], self.mentor[keep], self.score[keep])


def concat(parts: list[Arcs]) -> Arcs:
    if not parts:
        none = np.zeros(0, dtype=np.int64)
        return Arcs(none, none, np.zeros(0))
    return Arcs(
        np.concatenate([a.learner for a in parts]),
        np.concatenate([a.mentor for a in parts]),
        np.concatenate([a.score for a in parts]),
    )


def scored(index: ProgramIndex, learners: IntArray, mentors: IntArray) -> Arcs:
    """Score pairs that share a skill and a language; drop those breaking another rule."""
    parts = []
    for lo in range(0, len(learners), CHUNK):
        ls, ms = learners[lo : lo + CHUNK], mentors[lo : lo + CHUNK]
        score, allowed = index.score(index.learner_people.take(ls), index.wants.take(ls), ms)
        keep = np.flatnonzero(allowed & ~index.banned(ls, ms))
        parts.append(Arcs(ls[keep], ms[keep], score[keep]))
    return concat(parts)


def with_pairs(index: ProgramIndex, arcs: Arcs, keys: IntArray) -> Arcs:
    """``arcs`` (in pair key order, as ``sampled_arcs`` gives them) and the allowed pairs of
    ``keys`` (sorted) they lack, in the same order: the auction reads them learner by learner."""
    if not len(keys):  # a program's first run: no key of all its arcs to make
        return arcs
    # Looked up in the sorted keys, not with setdiff1d: that sorts the millions of arcs again.
    have = index.pair_key(arcs.learner, arcs.mentor)
    at = np.searchsorted(have, keys)
    lacking = at == len(have)
    lacking[~lacking] = have[at[~lacking]] != keys[~lacking]
    extra = scored(index, *index.pair_rows(keys[lacking]))
    if not len(extra):
        return arcs
    at = np.searchsorted(have, index.pair_key(extra.learner, extra.mentor))
    return Arcs(
        np.insert(arcs.learner, at, extra.learner),
        np.insert(arcs.mentor, at, extra.mentor),
        np.insert(arcs.score, at, extra.score),
    )


def sampled_arcs(
    index: ProgramIndex, open_learners: IntArray, open_mentors: IntArray, sample: int
) -> Arcs:
    """Allowed pairs between the given learner and mentor rows, ``sample`` draws per posting
    list and direction."""
    rng = np.random.default_rng(SEED)
    mentor_lists = _banded(index.mentors_by, index.teach, open_mentors, index.mentor_people.start)
    learner_lists = _banded(
        index.learners_by, index.want_levels, open_learners, index.learner_people.start
    )
    per_skill = []
    for _, lists in groupby(learner_lists.items(), key=lambda item: item[0][0]):
        drawn = []
        for (skill, language, band), learner_list in lists:
            if band == ANY_BAND:
                steps = [(ANY_BAND, max(1, sample // 2))]
            else:
                steps = [
                    ((band + step) % BANDS, sample if step == 0 else max(1, sample // 2))
                    for step in (-1, 0, 1)
                ]
            for mentor_band, draws in steps:
                mentor_list = mentor_lists.get((skill, language, mentor_band))
                if mentor_list is not None:
                    ls, ms = _stratified(rng, learner_list, mentor_list, draws)
                    drawn.append(index.pair_key(ls, ms))
                    ms, ls = _stratified(rng, mentor_list, learner_list, draws)
                    drawn.append(index.pair_key(ls, ms))
        per_skill.append(_distinct(drawn))  # compacting skill by skill bounds the memory
    keys = _distinct(per_skill)
    # Fill preallocated columns chunk by chunk: concatenating the chunks would double the peak.
    learners, mentors, scores = np.empty_like(keys), np.empty_like(keys), np.empty(len(keys))
    size = 0
    for lo in range(0, len(keys), CHUNK):
        part = keys[lo : lo + CHUNK]
        arcs = scored(index, *index.pair_rows(part))
        end = size + len(arcs)
        learners[size:end], mentors[size:end], scores[size:end] = (
            arcs.learner,
            arcs.mentor,
            arcs.score,
        )
        size = end
    return Arcs(learners[:size], mentors[:size], scores[:size])


def _distinct(parts: list[IntArray]) -> IntArray:
    """Sorted distinct keys; empties ``parts`` to free them early. Sort-based: np.unique
    hashes, and is several times slower here."""
    keys = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    parts.clear()
    keys.sort()
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _banded(
    postings: dict[tuple[int, str], IntArray],
    levels: npt.NDArray[np.uint8],
    open_rows: IntArray,
    start: FloatArray,
) -> dict[tuple[int, str, int], IntArray]:
    """Posting lists split by time band, best level first (ties by row, for reproducibility),
    plus each whole list under ``ANY_BAND``, ordered by band then level."""
    is_open = np.zeros(len(start), dtype=bool)
    is_open[open_rows] = True
    band = np.floor(start * BANDS / 24).astype(np.int64) % BANDS
    lists: dict[tuple[int, str, int], IntArray] = {}
    for (skill, language), rows in postings.items():
        rows = rows[is_open[rows]]
        rows = rows[np.lexsort((rows, -levels[rows, skill].astype(np.int64), band[rows]))]
        if len(rows):
            lists[skill, language, ANY_BAND] = rows
        for b in np.unique(band[rows]):
            lists[skill, language, int(b)] = rows[band[rows] == b]
    return lists


def _stratified(
    rng: np.random.Generator, takers: IntArray, pool: IntArray, draws: int
) -> tuple[IntArray, IntArray]:
    """Each taker draws one from each of ``draws`` equal strata of ``pool`` (or all of it)."""
    if len(pool) <= draws:
        return np.repeat(takers, len(pool)), np.tile(pool, len(takers))
    phase = rng.random((len(takers), 1))
    at = ((np.arange(draws) + phase) * (len(pool) / draws)).astype(np.int64)
    return np.repeat(takers, draws), pool[np.minimum(at, len(pool) - 1)].ravel()


def all_arcs(index: ProgramIndex, block: int = 2048) -> Arcs:
    """Every allowed pair: exact, but quadratic; for measuring the sample against."""
    wanted = index.want_levels.astype(bool).astype(np.float32)
    taught = (index.teach > 0).astype(np.float32)
    languages = sorted(index.language_column)
    spoken = index.speaks[:, [index.language_column[g] for g in languages]].T.astype(np.float32)
    speaks = np.array(
        [[g in learner.person.languages for g in languages] for learner in index.learners],
        dtype=np.float32,
    ).reshape(len(index.learners), len(languages))
    parts = []
    for lo in range(0, len(index.learners), block):
        fits = (wanted[lo : lo + block] @ taught.T > 0) & (speaks[lo : lo + block] @ spoken > 0)
        ls, ms = np.nonzero(fits)
        parts.append(scored(index, ls.astype(np.int64) + lo, ms.astype(np.int64)))
    return concat(parts)


def top_k(group: IntArray, value: FloatArray, k: int) -> IntArray:
    """Positions of the ``k`` highest values within each group (first position on ties)."""
    value = value.astype(np.float64)
    best = np.empty(int(group.max()) + 1 if len(group) else 0)
    picked = []
    # k passes of "each group's maximum": a sort of millions of arcs would be several times slower.
    for _ in range(k):
        best.fill(-np.inf)
        np.maximum.at(best, group, value)
        hits = np.flatnonzero((value == best[group]) & (value > -np.inf))
        order = np.argsort(group[hits], kind="stable")
        grouped = group[hits][order]
        first = hits[order[np.r_[True, grouped[1:] != grouped[:-1]]]] if len(hits) else hits
        picked.append(first)
        value[first] = -np.inf
    return np.concatenate(picked) if picked else group[:0]
