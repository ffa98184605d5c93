"""The pipeline benchmark's verdicts and its summary of several runs, on results made up here:
a verdict must judge the latency target only at its rate, and say why a tail is long. And its
ceiling's passes, on a real broker."""

import copy
import gc
import logging
import os
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import host
import pipeline_bench
import pipeline_trace
import pytest

from crossgen_local.kafka import LocalKafka


def result(
    p99: float, *, rate: float = 200.0, done: float = 198.0, busy: float = 1.5
) -> dict[str, Any]:
    """A run's results, as the benchmark writes them, with the numbers a verdict reads."""
    latency = {"p50": p99 / 2, "p95": p99 * 0.9, "p99": p99, "max": p99}
    hops = {"directory": latency, "smtp": latency}
    phase = {
        "records": 6000,
        "offered_per_s": rate,
        "complete": True,
        "feed_late_s": {"p50": 0.0004, "p95": 0.002, "p99": 0.0051, "max": 0.012},
        "feed_acked_s": {"p50": 0.0031, "p95": 0.006, "p99": 0.0082, "max": 0.0153},
        "cores_busy": {"matching": busy / 2, "notifications": busy / 2},
        "python_work_ms": {"median": 30.4, "max": 41.0, "timings": 10},
        "batches": {"matching:crossgen.hris.v1": {"transactions": 100, "records_p50": 30}},
        "directory": {"stored": 6000, "records_per_s": rate, "latency_s": latency},
        "emails": {"expected": 6000, "arrived": 6000, "latency_s": latency, "hops_s": hops},
        "records_per_s": done,
        "kafka": {"messages": 21000, "per_record": 3.5, "messages_per_s": 700.0},
    }
    burst: dict[str, Any] = copy.deepcopy(phase) | {"offered_per_s": 9000.0}
    burst["cores_busy"] = {"matching": 0.6, "notifications": 0.98}
    burst |= {"python_work_ms": None, "batches": None, "records_per_s": 230.0}
    burst |= {"share_of_ceiling": 0.03}
    burst["kafka"]["share_of_ceiling"] = 0.1
    return {
        "machine": {
            "cpu_count": 2,
            "cpus_usable": 2,
            "cpu_model": "test",
            "python_work_ms": 27.0,
            "python_work_ms_after": 28.0,
            "steal_share": 0.0,
        },
        "ceiling": {
            "messages": 20000,
            "bytes_each": 747,
            "seconds": 1.25,
            "messages_per_s": 16000,
            "passes_per_s": [9000, 16000, 15000],
        },
        "latency": phase,
        "throughput": burst,
        "peak_rss_mb": {"matching": 180.0},
        "cpu_s": {"matching": 27.0},
    }


def latency_verdict(results: dict[str, Any]) -> str:
    return pipeline_bench.verdicts(results)[1]


def test_the_latency_target_is_judged_at_its_rate() -> None:
    assert latency_verdict(result(0.9)).startswith("met ")
    assert latency_verdict(result(1.2)).startswith("NOT met")
    # At half the rate a p99 says nothing of the target, met or not.
    assert latency_verdict(result(0.5, rate=100, done=99)).startswith("not run")
    # Above the rate, only a met bound says something of the rate below.
    assert latency_verdict(result(0.8, rate=250, done=248)).startswith("met ")
    assert latency_verdict(result(1.5, rate=250, done=248)).startswith("not run")


def test_a_long_tail_is_explained() -> None:
    assert "fell behind: 170 of 200" in latency_verdict(result(4.0, done=170))
    saturated = latency_verdict(result(2.0, busy=1.95))
    assert "no core to spare" in saturated and "--runs 3" in saturated
    assert "\n" not in latency_verdict(result(2.0, busy=1.2))


def test_the_runs_are_summed_up_side_by_side() -> None:
    runs = [result(0.9), result(3.1), result(4.8), result(0.4, rate=100, done=99)]
    summed = pipeline_bench.summary(runs)
    assert summed["latency_target"]["met"] == 1
    assert summed["latency_target"]["judged"] == 3
    assert summed["p99_s"] == {"min": 0.4, "median": 2.0, "max": 4.8}
    assert summed["latency_target"]["each"] == [
        "met",
        "NOT met",
        "NOT met",
        "not run",
    ]
    shown = pipeline_bench.summary_table(runs)
    assert "latency target met in 1 of 3 runs that judge it" in shown
    assert "27 / 30 / 28" in shown  # fixed work before, while offering, after
    # What each run cost each process, and its peak memory: sessions compare these.
    assert "CPU ms per record over the run / peak RSS MB" in shown
    assert "2.25 / 180" in shown  # 27 CPU s over 12,000 records
    # Two tables of head, rule and runs, a line between them; two legends, the verdict.
    assert len(shown.splitlines()) == 2 * (2 + len(runs)) + 1 + 3


def test_a_run_prints_as_a_table() -> None:
    shown = pipeline_bench.table(result(0.9))
    assert "latency" in shown and "throughput" in shown and "0.900" in shown
    assert "20000 messages of 747 B in 1.25 s = 16000 messages/s (the best of 2 passes" in shown
    assert "fixed Python work meanwhile, in its thread's CPU time: 30.4 ms (median)" in shown
    # How far the feed fell behind its rate: the records are timed from when they were due.
    assert "behind its rate by 0.4 ms (median), 5.1 ms (p99), 12.0 ms at most;" in shown
    # Whether the broker's acks held it up.
    assert "the broker acknowledged them in 3.1 ms (median), 8.2 ms (p99), 15.3 ms at most" in shown
    # Whether a burst filled the machine, or one process's loop.
    burst = "cores busy in the burst, until its last email: matching 0.60  notifications 0.98;"
    assert f"{burst} 1.58 of 2" in shown


def test_a_run_kept_to_fewer_cpus_says_so() -> None:
    """`taskset -c 0` runs the stack on one of the machine's CPUs: a host half as fast."""
    assert "machine: 2 x test;" in pipeline_bench.table(result(0.9))
    pinned = result(0.9, busy=0.9)
    pinned["machine"]["cpus_usable"] = 1
    shown = pipeline_bench.table(pinned)
    assert "machine: 1 x test (the run kept to 1 of its 2 CPUs);" in shown
    assert "0.90 of 1" in shown  # cores busy are counted against the CPUs the run had


def test_a_warm_up_prints_on_its_own_row() -> None:
    """A stack's first seconds under load are shown, apart from the phase the target judges."""
    warmed = result(0.9)
    warmed["warmup"] = copy.deepcopy(warmed["latency"]) | {"records": 2000}
    warmed["warmup"]["emails"]["latency_s"] = dict.fromkeys(("p50", "p95", "p99", "max"), 1.5)
    shown = pipeline_bench.table(warmed)
    rows = [line.split() for line in shown.splitlines() if line.startswith(("warm-up", "latency"))]
    assert [row[0] for row in rows][:2] == ["warm-up", "latency"]
    assert rows[0][-1] == "1.500" and rows[1][-1] == "0.900"
    # The CPU per record counts every phase's records: 27 s over 2,000 + 6,000 + 6,000.
    assert "matching 27.0 (1.9)" in shown
    assert latency_verdict(warmed).startswith("met ")  # judged on the phase after the warm-up


def test_a_long_run_prints_by_window() -> None:
    timed = result(0.9)
    tails = dict.fromkeys(pipeline_trace.HOPS, 0.1) | {"smtp": None}
    timed["latency"]["emails"]["latency_by_window_s"] = [
        {
            "from_s": 30.0 * i,
            "emails": 6000,
            "p99": p99,
            "hops_p99_s": tails,
            "cpu_ms_per_record": {"matching": ms, "postgres": 1.5},
            "rss_mb": {"matching": mb, "notifications": 131.2, "kafka": 512.0},
            "python_work_ms": work,
        }
        for i, (p99, ms, work, mb) in enumerate([(0.8, 2.6, 16.0, 180.4), (3.2, 4.9, 16.5, 246.6)])
    ]
    lines = pipeline_bench.table(timed).split("by 30 s of offered records")[1].splitlines()
    assert lines[1].split()[8:12] == ["match", "MB", "notif", "MB"]  # the services' memory only
    rows = lines[3:5]
    # The second half of the run cost matching more per record, at the same speed of the host,
    # and its memory grew.
    assert rows[0].split()[:7] == ["0", "0.80", "16.0", "2.60", "1.50", "180", "131"]
    assert rows[1].split()[:7] == ["30", "3.20", "16.5", "4.90", "1.50", "247", "131"]
    assert rows[1].split()[-1] == "nan"  # a hop no email of the window has both ends of


def test_the_memory_of_each_process_is_kept_as_it_is_sampled() -> None:
    with pipeline_bench.Usage({"this": (os.getpid(), False)}, every=0.01) as usage:
        time.sleep(0.05)
    now = usage.rss_mb_at(time.time())["this"]
    assert 10 < now <= usage.peaks_mb["this"]
    assert usage.rss_mb_at(0) == usage.rss_mb_at(time.time() - 0.2)  # before any: the first


def test_the_host_is_timed_while_it_is_loaded() -> None:
    with host.WorkTimings(every=0.01) as work:
        time.sleep(0.2)
    summed = work.summary()
    assert summed is not None and summed["timings"] >= 1
    assert 0 < summed["median"] <= summed["max"]
    assert work.median_between(0, time.time() + 1) == statistics.median(work.ms)
    assert work.median_between(0, 1) is None
    assert host.WorkTimings().summary() is None  # never timed: nothing to say


def test_no_full_collection_runs_while_a_phase_does() -> None:
    """The benchmark stamps arrivals and sends records: a full collection would stall both."""
    kept = [[index] for index in range(1000)]  # made before: collected and frozen, not scanned
    before = gc.get_threshold()
    try:
        with pipeline_bench.no_full_collections():
            young, middle, full = gc.get_threshold()
            assert (young, middle) == before[:2] and full >= 2**30
            assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()


@pytest.mark.integration
async def test_the_ceiling_is_measured_on_a_topic_just_made_without_an_error(
    kafka: LocalKafka, caplog: pytest.LogCaptureFixture
) -> None:
    records = [(b"%d" % n, b"x" * 700) for n in range(200)]
    with caplog.at_level(logging.WARNING, logger="aiokafka"):
        passes = [
            await pipeline_bench.ceiling_pass(kafka.bootstrap_servers, records) for _ in range(3)
        ]
    assert [one["messages"] for one in passes] == [200, 200, 200]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")] == []


def test_the_services_settings_taken_from_the_environment_are_kept_with_the_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run with MATCHING_HRIS_BATCH_WAIT=0.2 exported measured other settings than the
    defaults: every benchmark's machine facts say so, and the pipeline's table under its machine
    line; a secret only as set."""
    monkeypatch.setenv("MATCHING_HRIS_BATCH_WAIT", "0.2")
    monkeypatch.setenv("NOTIFICATIONS_SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("UNRELATED_SETTING", "1")
    settings = host.settings_from_environment()
    assert settings == {"MATCHING_HRIS_BATCH_WAIT": "0.2", "NOTIFICATIONS_SMTP_PASSWORD": "(set)"}
    assert host.facts()["settings_from_environment"] == settings
    changed = result(0.9)
    changed["machine"]["settings_from_environment"] = settings
    shown = pipeline_bench.table(changed)
    assert "services' settings from the environment: MATCHING_HRIS_BATCH_WAIT=0.2" in shown
    assert "hunter2" not in shown
    assert "settings from the environment" not in pipeline_bench.table(result(0.9))


def test_a_run_names_the_code_and_the_packages_it_measured(tmp_path: Path) -> None:
    """Every benchmark's machine facts name the commit and any package installed at another
    version than constraints.txt pins; the pipeline's table says both under its machine line."""
    head = subprocess.run(
        ["git", "-C", str(host.ROOT), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    facts = host.facts()
    assert facts["code"].startswith(head)
    assert set(facts) >= {"code", "packages_unlike_constraints"}
    pytest_version = metadata.version("pytest")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        f"# pins\npytest=={pytest_version}\nhypothesis==0.0.1\nno-such-package-here==1.0\n"
    )
    unlike = host.packages_unlike(constraints)
    assert unlike == {
        "hypothesis": f"{metadata.version('hypothesis')}, pinned 0.0.1",
        "no-such-package-here": "not installed, pinned 1.0",
    }
    measured = result(0.9)
    measured["machine"] |= {"code": "0123456789ab", "packages_unlike_constraints": unlike}
    shown = pipeline_bench.table(measured)
    assert "code: 0123456789ab; packages: hypothesis " in shown
    measured["machine"]["packages_unlike_constraints"] = {}
    assert "code: 0123456789ab; packages: as pinned" in pipeline_bench.table(measured)
    assert "code:" not in pipeline_bench.table(result(0.9))
