"""Whole-program matching benchmark: speed, memory and quality at 1k, 10k and 100k learners.

    python benchmarks/matching_bench.py [--sizes 1000,10000,100000] [--joins 1000] [--sweep]
        [--grow 30000]

Each size runs in a fresh process, so that its max RSS is its own. For every size it times the
phases of a full run (index, candidates, solve, finish), traces their peak Python/numpy memory in
a second pass, compares the total score with a greedy pass over the same candidates and, up to
--exact-up-to learners, with the exact optimum (min-cost flow over every allowed pair); then it
joins --joins newcomers one at a time and reports the latency of each repair, and as many mentors
into the same program short of mentors (everyone waiting). --sweep adds the
candidate sample / top-K tuning table at 10k. --grow N times each join into a program that
starts empty and grows by N mentors and N learners (--sizes "" for that alone). --alike N times
--joins mentors joining a program where N learners wait who all want the same: their scores tie.
Results: tables on stdout and benchmarks/results/matching.json (or --out).
"""

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "services" / "matching"), str(HERE)]

import host  # noqa: E402
import numpy as np  # noqa: E402
import ortools  # noqa: E402
import synthetic  # noqa: E402

from crossgen_matching.optimiser import program as matching  # noqa: E402
from crossgen_matching.optimiser.candidates import all_arcs, top_k  # noqa: E402
from crossgen_matching.optimiser.incremental import LiveMatching  # noqa: E402
from crossgen_matching.optimiser.model import Learner, Mentor, Person, Program  # noqa: E402
from crossgen_matching.optimiser.solve import flow, greedy  # noqa: E402

T = TypeVar("T")
TARGETS = {"all_in_s_at_100k": 60.0, "ratio_to_optimum_at_10k": 0.99, "join_p99_ms": 50.0}


CPU: dict[str, float] = {}  # CPU seconds of the last timed steps, by name


def timed(step: Callable[[], T], name: str = "") -> tuple[T, float]:
    """The step's value and wall seconds; its CPU seconds go to CPU[name]. On a shared machine
    wall time includes waiting for a core, CPU time does not."""
    start, cpu = time.perf_counter(), time.process_time()
    value = step()
    CPU[name] = time.process_time() - cpu
    return value, time.perf_counter() - start


def traced(step: Callable[[], T]) -> tuple[T, float]:
    """The step's value and its peak traced memory (Python objects and numpy buffers), MB."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    value = step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return value, peak / 2**20


def run(size: int, joins: int) -> dict[str, Any]:
    program, newcomers = synthetic.program(size, newcomers=joins)
    tuning = matching.Tuning()
    prepared, t_prepare = timed(lambda: matching.prepare(program), "index")
    arcs, t_candidates = timed(lambda: matching.candidate_arcs(prepared, tuning), "candidates")
    chosen, t_solve = timed(lambda: matching.choose(prepared, arcs, tuning), "solve")
    result, t_finish = timed(lambda: matching.finish(prepared, arcs, chosen), "finish")
    cpu = dict(CPU, all_in=sum(CPU.values()))
    free = prepared.index.capacity - prepared.load
    learners = len(program.learners)
    baseline, t_greedy = timed(lambda: greedy(arcs, learners, free))
    _, candidates_mb = traced(lambda: matching.candidate_arcs(prepared, tuning))
    _, solve_mb = traced(lambda: matching.choose(prepared, arcs, tuning))
    out: dict[str, Any] = {
        "learners": learners,
        "mentors": len(program.mentors),
        "capacity": int(prepared.index.capacity.sum()),
        "candidate_arcs": len(arcs),
        "arcs_per_learner": round(len(arcs) / max(learners, 1), 1),
        "seconds": {
            "index": t_prepare,
            "candidates": t_candidates,
            "solve": t_solve,
            "finish": t_finish,
            "all_in": t_prepare + t_candidates + t_solve + t_finish,
            "greedy_baseline": t_greedy,
        },
        "cpu_seconds": cpu,
        "peak_traced_mb": {"candidates": candidates_mb, "solve": solve_mb},
        "matched": result.stats.count,
        "unmatched": len(result.unmatched),
        "unmatched_by_cause": _count(u.cause.name for u in result.unmatched),
        "total_score": result.stats.total,
        "mean_score": result.stats.mean,
        "score_p10_median_p90": [result.stats.p10, result.stats.median, result.stats.p90],
        "greedy_total_same_candidates": float(arcs.score[baseline].sum()),
        "greedy_matched_same_candidates": len(baseline),
    }
    if joins:
        out["joins"] = _joins(program, result, newcomers)
        out["mentor_joins"] = _mentor_joins(program, joins)
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _joins(program: Any, result: Any, newcomers: Any) -> dict[str, Any]:
    live, t_build = timed(lambda: LiveMatching(program, result))
    latencies, outcomes = [], {"free_mentor": 0, "swap": 0, "unmatched": 0}
    for newcomer in newcomers:
        repair, seconds = timed(partial(live.join_learner, newcomer))
        latencies.append(seconds * 1000)
        kind = "swap" if repair.withdrawn else "free_mentor" if repair.proposed else "unmatched"
        outcomes[kind] += 1
    return {
        "count": len(latencies),
        "index_build_s": t_build,
        "latency_ms": _latency(latencies),
        "outcomes": outcomes,
    }


def _mentor_joins(program: Any, joins: int) -> dict[str, Any]:
    """A program short of mentors: one in a hundred has joined, nobody is matched yet, and
    ``joins`` more mentors join one at a time, each looking among everyone waiting."""
    present = len(program.mentors) // 100
    live, t_build = timed(
        lambda: LiveMatching(dataclasses.replace(program, mentors=program.mentors[:present]))
    )
    waiting, latencies, proposed = len(live.waiting), [], 0
    for mentor in program.mentors[present : present + joins]:
        repair, seconds = timed(partial(live.join_mentor, mentor))
        latencies.append(seconds * 1000)
        proposed += len(repair.proposed)
    return {
        "count": len(latencies),
        "index_build_s": t_build,
        "waiting_before": waiting,
        "waiting_after": len(live.waiting),
        "proposed": proposed,
        "latency_ms": _latency(latencies),
    }


def grow(size: int) -> dict[str, Any]:
    """A program that starts empty and grows by joins alone, a mentor then a learner, ``size`` of
    each, as an HRIS feed brings them: each join's CPU time, by tenth of the way. The scenarios
    above start large; a join whose cost grows with the program shows here."""
    program, _ = synthetic.program(2 * size)
    empty = frozenset[Any]()
    live = LiveMatching(
        dataclasses.replace(
            program, learners=(), mentors=(), pinned=empty, forbidden=empty, ended=empty
        )
    )
    mentors, learners, tenths = program.mentors, program.learners[:size], []
    step = max(1, size // 10)
    for start in range(0, size, step):
        mentor_ms, learner_ms = [], []
        window = slice(start, start + step)
        for mentor, learner in zip(mentors[window], learners[window], strict=True):
            t0 = time.process_time()
            live.join_mentor(mentor)
            live.index.count_rarity()  # as the service does after a mentor's join
            t1 = time.process_time()
            live.join_learner(learner)
            learner_ms.append((time.process_time() - t1) * 1000)
            mentor_ms.append((t1 - t0) * 1000)
        tenths.append(
            {
                "mentors": start + len(mentor_ms),
                "waiting": len(live.waiting),
                "mentor_join_ms": _latency(mentor_ms),
                "learner_join_ms": _latency(learner_ms),
            }
        )
    return {"size": size, "tenths": tenths}


def alike(size: int, joins: int) -> dict[str, Any]:
    """``size`` learners waiting who want the same skills as much, as seniors who sign up for the
    same trend do, and ``joins`` mentors joining one at a time: for each mentor, every learner of
    a department scores the same, so thousands tie and the tie goes to the lowest id."""

    def person(number: str, i: int, senior: bool) -> Person:
        return Person(
            number, f"dept {i % 10}", frozenset({"en"}), tenure_years=20 if senior else 1,
            job_level=8 if senior else 2,
        )  # fmt: skip

    wants = {"generative ai": 4, "hybrid work": 3}
    learners = tuple(Learner(person(f"E-{i:06d}", i, True), wants) for i in range(size))
    mentors = [
        Mentor(person(f"M-{i:06d}", i, False), dict.fromkeys(wants, 5)) for i in range(joins)
    ]
    live = LiveMatching(Program(learners, ()))
    latencies, proposed = [], 0
    for mentor in mentors:
        repair, seconds = timed(partial(live.join_mentor, mentor))
        latencies.append(seconds * 1000)
        proposed += len(repair.proposed)
    return {
        "waiting_before": size,
        "waiting_after": len(live.waiting),
        "proposed": proposed,
        "mentor_join_ms": _latency(latencies),
    }


def _latency(milliseconds: list[float]) -> dict[str, float]:
    ms = np.array(milliseconds)
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


def exact(size: int, joins: int) -> dict[str, Any]:
    program, _ = synthetic.program(size, newcomers=joins)
    prepared = matching.prepare(program)
    arcs, t_arcs = timed(lambda: all_arcs(prepared.index))
    free = prepared.index.capacity - prepared.load
    chosen, t_flow = timed(lambda: flow(arcs, len(program.learners), free))
    baseline = greedy(arcs, len(program.learners), free)
    return {
        "allowed_pairs": len(arcs),
        "optimum": float(arcs.score[chosen].sum()),
        "optimum_matched": len(chosen),
        "greedy_total_all_pairs": float(arcs.score[baseline].sum()),
        "seconds": {"enumerate": t_arcs, "flow": t_flow},
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def sweep(size: int) -> list[dict[str, Any]]:
    """Quality and time for each candidate sample and top-K, against the exact optimum."""
    program, _ = synthetic.program(size)
    prepared = matching.prepare(program)
    free = prepared.index.capacity - prepared.load
    everything = all_arcs(prepared.index)
    optimum = float(everything.score[flow(everything, len(program.learners), free)].sum())
    rows = []
    for sample in (8, 12, 16, 24):
        for k in (1, 2, 4, 8):
            tuning = matching.Tuning(sample=sample, k=k, direct_flow_arcs=0)
            arcs, t_candidates = timed(partial(matching.candidate_arcs, prepared, tuning))
            chosen, t_solve = timed(partial(matching.choose, prepared, arcs, tuning))
            rows.append(
                {
                    "sample": sample,
                    "k": k,
                    "candidate_arcs": len(arcs),
                    "ratio_to_optimum": float(arcs.score[chosen].sum()) / optimum,
                    "candidates_s": t_candidates,
                    "solve_s": t_solve,
                }
            )
    # The plain two-way top-K by score (no prices), for comparison, over every allowed pair.
    for k in (4, 16, 64):
        keep = np.unique(
            np.r_[
                top_k(everything.learner, everything.score, k),
                top_k(everything.mentor, everything.score, k),
            ]
        )
        subset = everything.take(keep)
        total = float(subset.score[flow(subset, len(program.learners), free)].sum())
        rows.append(
            {
                "plain_top_k_over_all_pairs": k,
                "candidate_arcs": len(subset),
                "ratio_to_optimum": total / optimum,
            }
        )
    return rows


def sweep_large(size: int) -> list[dict[str, Any]]:
    """Where no optimum is computable: the total and CPU time for larger candidate samples."""
    program, _ = synthetic.program(size)
    prepared = matching.prepare(program)
    rows = []
    for sample in (16, 24, 32):
        tuning = matching.Tuning(sample=sample)
        arcs, _ = timed(partial(matching.candidate_arcs, prepared, tuning), "candidates")
        chosen, _ = timed(partial(matching.choose, prepared, arcs, tuning), "solve")
        rows.append(
            {
                "sample": sample,
                "candidate_arcs": len(arcs),
                "total_score": float(arcs.score[chosen].sum()),
                "cpu_s": CPU["candidates"] + CPU["solve"],
            }
        )
    return rows


def _count(names: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def child(mode: str, size: int, joins: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--size",
        str(size),
        "--joins",
        str(joins),
    ]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout)


def machine() -> dict[str, Any]:
    return host.facts() | {"numpy": np.__version__, "ortools": ortools.__version__}


def table(results: dict[str, Any]) -> str:
    head = (
        f"{'learners':>8} {'mentors':>7} {'arcs':>10} {'index':>6} {'cand':>6} {'solve':>6} "
        f"{'finish':>6} {'all-in':>7} {'CPU s':>6} {'candMB':>7} {'solvMB':>7} {'RSS MB':>7} "
        f"{'matched':>8} "
        f"{'/optimum':>8} {'/greedy':>7} {'join p50':>8} {'join p99':>8} {'mentor p99':>10}"
    )
    lines = [head, "-" * len(head)]
    for size in results["sizes"]:
        r = results["runs"][str(size)]
        s, mb = r["seconds"], r["peak_traced_mb"]
        ratio = f"{r['ratio_to_optimum']:.4f}" if "ratio_to_optimum" in r else "-"
        joins = r.get("joins", {}).get("latency_ms")
        p50 = f"{joins['p50']:.1f}ms" if joins else "-"
        p99 = f"{joins['p99']:.1f}ms" if joins else "-"
        mentors = r.get("mentor_joins", {}).get("latency_ms")
        mentor_p99 = f"{mentors['p99']:.1f}ms" if mentors else "-"
        lines.append(
            f"{r['learners']:>8} {r['mentors']:>7} {r['candidate_arcs']:>10} {s['index']:>6.1f} "
            f"{s['candidates']:>6.1f} {s['solve']:>6.1f} {s['finish']:>6.1f} {s['all_in']:>7.1f} "
            f"{r['cpu_seconds']['all_in']:>6.1f} "
            f"{mb['candidates']:>7.0f} {mb['solve']:>7.0f} {r['max_rss_mb']:>7.0f} "
            f"{r['matched']:>8} {ratio:>8} {r['ratio_to_greedy']:>7.3f} {p50:>8} {p99:>8} "
            f"{mentor_p99:>10}"
        )
    return "\n".join(lines)


def grow_table(grown: dict[str, Any]) -> str:
    head = f"{'mentors':>8} {'waiting':>8}  {'mentor join p50 / p99 ms':>24}"
    head += f"  {'learner join p50 / p99 ms':>25}"
    lines = [head, "-" * len(head)]
    for tenth in grown["tenths"]:
        m, x = tenth["mentor_join_ms"], tenth["learner_join_ms"]
        lines.append(
            f"{tenth['mentors']:>8} {tenth['waiting']:>8}  {m['p50']:>12.3f} / {m['p99']:<9.3f}"
            f"  {x['p50']:>12.3f} / {x['p99']:<10.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--joins", type=int, default=1000, help="newcomers for 10k and up")
    parser.add_argument("--exact-up-to", type=int, default=10_000)
    parser.add_argument(
        "--grow", type=int, default=0, help="mentors (and learners) joining an empty program"
    )
    parser.add_argument(
        "--alike", type=int, default=0, help="learners alike waiting, --joins mentors joining"
    )
    parser.add_argument(
        "--sweep", action="store_true", help="also the sample / K tables (10k, and 100k if run)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "matching.json")
    parser.add_argument(
        "--child",
        choices=["run", "exact", "sweep", "sweep_large", "grow", "alike"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = {
            "run": run,
            "exact": exact,
            "sweep": lambda size, _: sweep(size),
            "sweep_large": lambda size, _: sweep_large(size),
            "grow": lambda size, _: grow(size),
            "alike": alike,
        }[args.child]
        print(json.dumps(work(args.size, args.joins)))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]  # none: --grow alone
    results: dict[str, Any] = {"machine": machine(), "targets": TARGETS, "sizes": sizes}
    results["tuning"] = dataclasses.asdict(matching.Tuning())
    results["runs"] = {}
    for size in sizes:
        joins = args.joins if size >= 10_000 else 0
        print(f"... {size} learners", file=sys.stderr, flush=True)
        r = child("run", size, joins)
        r["ratio_to_greedy"] = r["total_score"] / r["greedy_total_same_candidates"]
        if size <= args.exact_up_to:
            r["exact"] = child("exact", size, joins)
            r["ratio_to_optimum"] = r["total_score"] / r["exact"]["optimum"]
            r["ratio_to_greedy_all_pairs"] = r["total_score"] / r["exact"]["greedy_total_all_pairs"]
        results["runs"][str(size)] = r
    if args.sweep:
        print("... sweep at 10000 learners", file=sys.stderr, flush=True)
        results["sweep_10k"] = child("sweep", 10_000, 0)
        if 100_000 in sizes:
            print("... sweep at 100000 learners", file=sys.stderr, flush=True)
            results["sweep_100k"] = child("sweep_large", 100_000, 0)
    if args.grow:
        print(
            f"... {args.grow} mentors and learners joining one by one", file=sys.stderr, flush=True
        )
        results["grow"] = child("grow", args.grow, 0)
    if args.alike:
        print(f"... {args.joins} mentors joining {args.alike} learners alike", file=sys.stderr)
        results["alike"] = child("alike", args.alike, args.joins)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if sizes:
        print(table(results))
    if args.grow:
        print("\n" + grow_table(results["grow"]))
    if args.alike:
        a, ms = results["alike"], results["alike"]["mentor_join_ms"]
        print(
            f"\n{args.joins} mentors joining {a['waiting_before']} learners alike: join p50"
            f" {ms['p50']:.1f} ms, p99 {ms['p99']:.1f} ms, max {ms['max']:.1f} ms;"
            f" {a['proposed']} proposed"
        )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
