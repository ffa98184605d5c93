"""The facts about the machine a benchmark ran on, kept with its results."""

import datetime
import json
import os
import platform
import statistics
import subprocess
import threading
import time
from argparse import Namespace
from importlib import metadata
from pathlib import Path
from typing import Any, Self

from packaging.version import Version

from crossgen_local.constraints import CONSTRAINTS, pins
from crossgen_local.stack import SERVICES

ROOT = Path(__file__).resolve().parents[1]


def facts() -> dict[str, Any]:
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        names = [
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line
        ]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu,
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "python_work_ms": python_work_ms(),
        "settings_from_environment": settings_from_environment(),
        "code": code(),
        "packages_unlike_constraints": packages_unlike(CONSTRAINTS),
    }


def code() -> str | None:
    """The commit measured, and whether the checkout had changes to it (but to
    benchmarks/results, which runs write): None outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git(
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":(exclude)benchmarks/results",
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit} with uncommitted changes" if changed else commit


def packages_unlike(constraints: Path) -> dict[str, str]:
    """Each package installed at another version than ``constraints`` pins, or not at all:
    none after `make bootstrap`, so a run on other versions says which."""
    unlike: dict[str, str] = {}
    for name, pinned in pins(constraints).items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            unlike[name] = f"not installed, pinned {pinned}"
            continue
        if installed != pinned:
            unlike[name] = f"{installed}, pinned {pinned}"
    return unlike


def settings_from_environment() -> dict[str, str]:
    """The services' settings this run's environment changes (a stack passes it on, and code run
    in the benchmark's process reads it): what such a run measured is not the defaults. Secrets
    and URLs (a password in it) only as set."""
    prefixes = tuple(f"{service.upper()}_" for service in SERVICES)
    hidden = ("PASSWORD", "SECRET", "TOKEN", "KEY", "URL")
    return {
        name: "(set)" if any(word in name for word in hidden) else value
        for name, value in sorted(os.environ.items())
        if name.startswith(prefixes)
    }


def python_work_ms() -> float:
    """The best of five timings of one fixed piece of plain Python (dicts, strings, sorting) on
    one core: the machines these run on differ by a third or more from one day to the next, and
    results are comparable only next to this number (lower is faster)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        _fixed_work()
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def _fixed_work() -> None:
    counts: dict[str, int] = {}
    for i in range(100_000):
        key = f"employee-{i % 997}"
        counts[key] = counts.get(key, 0) + len(key)
    sorted(counts.items(), key=lambda item: (-item[1], item[0]))


class Periodic:
    """``tick`` every ``every`` s on a thread of its own, from entering a ``with`` to its end:
    what a benchmark samples while the system under test runs."""

    def __init__(self, every: float, name: str) -> None:
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.ticks = 0

    def tick(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.tick()
            self.ticks += 1


class WorkTimings(Periodic):
    """The fixed piece of Python timed every ``every`` s while a run loads the machine, in the
    timing thread's CPU time: the waits for a core that a busy machine makes are left out, so
    what is left says how fast the host ran the work meanwhile. Before and after a run say
    nothing of the minutes between, and the host's speed moves within minutes."""

    def __init__(self, every: float = 3.0) -> None:
        super().__init__(every, "work-timings")
        self.ms: list[float] = []
        self.at: list[float] = []  # when each timing began, epoch seconds

    def tick(self) -> None:
        self.at.append(time.time())
        start = time.thread_time()
        _fixed_work()
        self.ms.append(round((time.thread_time() - start) * 1000, 1))

    def median_between(self, start: float, end: float) -> float | None:
        """The median timing of those begun from ``start`` to ``end``: how fast the host ran in
        one part of a long run."""
        within = [ms for at, ms in zip(self.at, self.ms, strict=True) if start <= at < end]
        return statistics.median(within) if within else None

    def summary(self) -> dict[str, float | int] | None:
        if not self.ms:
            return None
        return {"median": statistics.median(self.ms), "max": max(self.ms), "timings": len(self.ms)}


def stolen(before: Any, after: Any) -> float | None:
    """The share of CPU time the hypervisor gave to other guests between two readings of
    ``psutil.cpu_times()`` (Linux's steal time): on a shared virtual machine it says how much
    of the run's two cores the run did not get. None where the system does not count it."""
    if not hasattr(before, "steal"):
        return None
    total = sum(after) - sum(before)
    return round((after.steal - before.steal) / total, 4) if total > 0 else 0.0


def write(out: Path, machine: dict[str, Any], args: Namespace, **results: Any) -> None:
    """A benchmark's results as JSON, with the machine and the arguments they came from."""
    arguments = {name: str(value) for name, value in vars(args).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "args": arguments, **results}, indent=2) + "\n")
