"""The fault suite (issue 8): while HRIS records stream in, crash and restart each service; restart
the Kafka broker, crash it and freeze it; stop PostgreSQL, crash it, kill one of its backends,
freeze it and fail it over (read-only for a while); stop the SMTP relay; freeze one of two replicas
of a service and kill one. Then let the system catch up and judge what every service stored and sent
against what the feed got accepted.

``python -m crossgen_local.faults`` runs the short form (as the test does); ``--long`` the long one,
which writes ``benchmarks/results/faults.json``. ``--kafka-rounds N`` runs only the broker's three
faults, N times over: its outages are where the Kafka clients' own recovery is tried, and where a
consumer stalled or a group waited out a session timeout (``faults-kafka.json`` with ``--long``).
Exits 1 unless nothing was lost, duplicated or reordered, and every service caught up.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from crossgen_local import evidence
from crossgen_local._common import Managed, say
from crossgen_local.hris_feed import Employee, HrisFeed, create_program, seq_of, workforce
from crossgen_local.infra import LocalInfra
from crossgen_local.interrupts import run_stoppable
from crossgen_local.kafka import LocalKafka
from crossgen_local.oracle import Fault, Verdict, judge
from crossgen_local.pairs import PairStream
from crossgen_local.postgres import LocalPostgres
from crossgen_local.processes import ServiceProcess
from crossgen_local.stack import SERVICES, CrossgenStack
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import topics
from crossgen_shared.db import application_name

# When the pipeline is through again after a fault was repaired (None: not in time).
Through = Callable[[], Awaitable[float | None]]

RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "faults.json"


@dataclass(frozen=True)
class Scale:
    name: str
    employees: int
    rate: float  # HRIS records a second
    pair_rate: float  # pairs enrolling themselves a second
    outage: float  # seconds the broker (crashed, frozen), PostgreSQL and the relay are each down
    settle: float  # seconds of undisturbed streaming before each fault
    recovery_timeout: float
    drain_timeout: float
    replicated: str = "matching"  # the service run as two replicas, one frozen, one killed


SHORT = Scale("short", employees=30, rate=5, pair_rate=0.5, outage=4, settle=2,
              recovery_timeout=60, drain_timeout=90)  # fmt: skip
LONG = Scale("long", employees=200, rate=10, pair_rate=1, outage=30, settle=10,
             recovery_timeout=120, drain_timeout=300)  # fmt: skip


def fault_names(scale: Scale, kafka_rounds: int = 0) -> list[str]:
    kafka = [
        "restart kafka",
        f"kill -9 kafka, down {scale.outage:g}s",
        f"freeze kafka {scale.outage:g}s",
    ]
    if kafka_rounds:
        return [f"{name} #{n}" for n in range(1, kafka_rounds + 1) for name in kafka]
    return [
        *(f"kill -9 {service}" for service in SERVICES),
        *kafka,
        f"kill -9 kafka, down {scale.outage:g}s, matching killed and started meanwhile",
        f"stop postgres {scale.outage:g}s",
        f"kill -9 postgres, down {scale.outage:g}s",
        "kill -9 a postgres backend of matching's",
        f"freeze postgres {scale.outage:g}s",
        f"postgres fails over, read-only {scale.outage:g}s",
        f"stop the smtp relay {scale.outage:g}s",
        f"freeze one of two {scale.replicated} replicas mid-transaction",
        f"kill -9 one of two {scale.replicated} replicas",
    ]


@dataclass
class FaultRun:
    stack: CrossgenStack
    scale: Scale
    feed: HrisFeed
    kafka_rounds: int = 0  # the broker's faults only, that many times over
    program_id: str = ""  # the program that enrols every employee the feed brings
    streaming: bool = True
    observations: list[dict[str, int]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # Employees outside the stream whose records time the recoveries, one on each partition.
    probes: list[Employee] = field(default_factory=list)
    probe_seq: int = 0

    def __post_init__(self) -> None:
        self.employees = workforce(self.scale.employees)
        self.pairs = PairStream(
            partial(self.stack.running_urls, "matching"),
            self.stack.tokens,
            give_up_after=self.scale.recovery_timeout,
        )

    @property
    def infra(self) -> LocalInfra:
        return self.stack.infra

    async def run(self) -> Verdict:
        await self.create_program()
        streams = [
            asyncio.create_task(self.feed.offer(self.records(), self.scale.rate)),
            asyncio.create_task(self.pairs.run(self.scale.pair_rate, lambda: self.streaming)),
        ]
        sampling = asyncio.create_task(self.sample())
        postgres = self.infra.postgres
        crash_postgres = partial(postgres.stop, crash=True)
        # Each fault returns when it began and when it was repaired; then the pipeline is through
        # again when a probe record reaches its end, or, for the relay, the mail it held up is sent.
        kafka: list[tuple[Callable[[], Awaitable[tuple[float, float]]], Through]] = [
            (self.restart_kafka, self.probe_through),
            (partial(self.restart_kafka, crash=True), self.probe_through),
            (partial(self.freeze, self.infra.kafka), self.probe_through),
        ]
        # The broker's faults only, so many times over; or every kind once.
        injections = kafka * self.kafka_rounds or [
            *((partial(self.kill_and_restart, s), self.probe_through) for s in SERVICES),
            *kafka,
            (partial(self.start_before_kafka, "matching"), self.probe_through),
            (partial(self.outage, postgres), self.probe_through),
            (partial(self.outage, postgres, crash_postgres), self.probe_through),
            (self.kill_a_backend, self.probe_through),
            (partial(self.freeze, postgres), self.probe_through),
            (self.fail_over, self.probe_through),
            (partial(self.outage, self.infra.smtp), self.mail_through),
            (self.freeze_a_replica, self.through_while_frozen),
            (self.kill_a_replica, self.probe_through),
        ]
        try:
            await self.enlist_probes()
            if await self.probe_through() is None:
                raise RuntimeError("the pipeline does not work even without faults; see the logs")
            names = fault_names(self.scale, self.kafka_rounds)
            for name, (inject, through) in zip(names, injections, strict=True):
                await asyncio.sleep(self.scale.settle)
                fault = Fault(name, *await inject(), await through())
                say(f"faults: {name}: recovered in {_seconds(fault.recovery)}")
                self.faults.append(fault)
        finally:
            self.streaming = False
            sampling.cancel()
            # What was never acknowledged is simply not expected downstream.
            for outcome in await asyncio.gather(*streams, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    say(f"faults: a stream stopped early: {outcome!r}")
        verdict = await self.drain()
        # Once, at the end: the services' logs say which consumers they restarted on the way,
        # and what they logged for a person.
        verdict.restarted = evidence.consumer_restarts(self.stack.log_dir)
        verdict.errors_logged = evidence.errors_logged(self.stack.log_dir)
        return verdict

    async def create_program(self) -> None:
        admin = self.stack.tokens.headers("hr-owner", "admin")
        async with httpx.AsyncClient(base_url=self.stack.url("matching"), timeout=10) as http:
            self.program_id = await create_program(http, admin, "Fault suite")
            created = await http.post("/programs", json={"name": "Fault pairs"}, headers=admin)
            self.pairs.program_id = created.raise_for_status().json()["id"]

    def records(self) -> Iterator[tuple[Employee, int]]:
        """Every employee's next record in turn, until the faults are over."""
        for seq in itertools.count(1):
            for employee in self.employees:
                if not self.streaming:
                    return
                yield employee, seq

    async def sample(self) -> None:
        """What the services store, once a second: it must never go back to an older record."""
        while True:
            with contextlib.suppress(Exception):  # the database is down on purpose at times
                self.observations.append(await evidence.stored_seqs(self.infra))
            await asyncio.sleep(1.0)

    async def enlist_probes(self) -> None:
        """Probe employees until every HRIS partition has one: after a replica dies, its
        partitions are the ones that wait for the group to notice."""
        bootstrap = self.infra.kafka.bootstrap_servers
        partitions = len(await evidence.partitions(bootstrap, topics.HRIS))
        covered: set[int] = set()
        for i in itertools.count():
            candidate = Employee(f"P-{i:06d}", "mentor" if i % 2 == 0 else "learner", "Probes")
            # A candidate on a covered partition stays an employee like those of the stream.
            accepted = await self.feed.send(candidate, 1)
            if accepted.partition not in covered:
                covered.add(accepted.partition)
                self.probes.append(candidate)
            if len(covered) == partitions:
                self.probe_seq = 1
                return

    async def probe_through(self) -> float | None:
        """Send each probe's next record; when all are seen at the end of the pipeline (their
        contacts in notifications), else None."""
        self.probe_seq += 1
        for probe in self.probes:
            await self.feed.send(probe, self.probe_seq)
        contacts = "select person_id, display_name from contacts"

        async def seen_all() -> bool:
            seen = dict(await evidence.rows(self.infra, "notifications", contacts))
            return all(seq_of(seen.get(p.number) or "") >= self.probe_seq for p in self.probes)

        return await self._when(seen_all)

    async def mail_through(self) -> float | None:
        """When no email waits for another attempt after failing, else None."""
        deferred = (
            "select count(*) from notifications where channel = 'email' and status = 'pending'"
            " and last_error is not null"
        )

        async def none_deferred() -> bool:
            return (await evidence.rows(self.infra, "notifications", deferred))[0][0] == 0

        return await self._when(none_deferred)

    async def _when(self, holds: Callable[[], Awaitable[bool]], every: float = 0.2) -> float | None:
        """When ``holds()`` is first true, asked every ``every`` s up to the recovery timeout;
        else None. A failed look counts as not yet: PostgreSQL may still be coming back."""
        deadline = time.monotonic() + self.scale.recovery_timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if await holds():
                    return time.time()
            await asyncio.sleep(every)
        return None

    async def kill_and_restart(self, service: str) -> tuple[float, float]:
        """Repaired when the process is started again: its boot counts in the recovery."""
        injected = time.time()
        repaired = await asyncio.to_thread(self.stack.kill_and_restart, service)
        return injected, repaired

    async def restart_kafka(self, crash: bool = False) -> tuple[float, float]:
        """Stopped and started again at once; or killed -9 and left down for the outage's length."""
        injected = time.time()
        down_for = self.scale.outage if crash else 0.0
        await asyncio.to_thread(partial(self.infra.kafka.restart, crash=crash, down_for=down_for))
        return injected, time.time()

    async def start_before_kafka(self, service: str) -> tuple[float, float]:
        """The broker killed -9 and left down; meanwhile the service is killed -9 and started
        again, and waits for the broker (``before_serving``). Repaired when the broker is back;
        the service's start counts in the recovery."""
        injected = time.time()
        down = asyncio.create_task(self.restart_kafka(crash=True))
        await asyncio.sleep(self.scale.outage / 4)  # the broker is down by then
        process = self.stack.processes[service]
        await asyncio.to_thread(process.kill)
        logged = process.log_path.stat().st_size
        process.start()
        _, repaired = await down
        await asyncio.to_thread(self.stack.wait_ready, service)
        with process.log_path.open("rb") as log:
            log.seek(logged)
            waits = log.read().count(b"does not answer; trying again")
        say(f"faults: {service} said {waits} time(s) that it waits for the broker")
        return injected, repaired

    async def freeze(self, component: LocalKafka | LocalPostgres) -> tuple[float, float]:
        """The component stops answering for the outage's length, its connections open (a long
        pause of its VM): clients wait on their requests' timeouts, not on a refused connection."""
        injected = time.time()
        await asyncio.to_thread(component.freeze, self.scale.outage)
        return injected, time.time()

    async def outage(
        self, component: Managed, stop: Callable[[], None] | None = None
    ) -> tuple[float, float]:
        """Stopped (or ``stop``ped: killed -9) for the outage's length and started again, the same
        server with the same data (PostgreSQL) or the same port and mails (the SMTP relay, whose
        open sessions drop too)."""
        injected = time.time()
        await asyncio.to_thread(stop or component.stop)
        await asyncio.sleep(self.scale.outage)
        await asyncio.to_thread(component.start)
        return injected, time.time()

    async def fail_over(self) -> tuple[float, float]:
        """PostgreSQL fails over: every session ends, and for the outage's length the server is
        read-only, as a standby (``LocalPostgres.standby``). Repaired when new sessions may write;
        a connection a service opened meanwhile must not keep refusing its writes."""

        def standby() -> None:
            with self.infra.postgres.standby():
                time.sleep(self.scale.outage)

        injected = time.time()
        await asyncio.to_thread(standby)
        return injected, time.time()

    async def kill_a_backend(self) -> tuple[float, float]:
        """One of matching's backends killed -9 (the OOM killer's choice): PostgreSQL ends every
        session, each service's too, and recovers in place. Repaired when it answers again."""
        injected = time.time()
        await asyncio.to_thread(self.infra.postgres.kill_a_backend, "crossgen-matching")
        return injected, time.time()

    async def freeze_a_replica(self) -> tuple[float, float]:
        """Two processes in one group share the partitions; one is frozen (SIGSTOP) inside a
        database transaction that holds locks, as in a long pause of its VM: its connection stays
        open with them. Nothing is repaired: the other must take its partitions over and get the
        pipeline through while it sleeps (``through_while_frozen``)."""
        replica = await self._second_replica()
        assert replica.pid is not None  # started
        # A transaction that wrote or locked rows (it holds its id's lock), or holds an advisory
        # lock (the outbox relay's).
        query = (
            "select count(*) from pg_locks join pg_stat_activity using (pid)"
            " where application_name = :name and granted"
            " and locktype in ('transactionid', 'advisory')"
        )
        name = application_name(self.scale.replicated, replica.pid)

        async def holding_locks() -> bool:
            found = await evidence.rows(self.infra, self.scale.replicated, query, name=name)
            return found[0][0] > 0

        async def frozen_mid_transaction() -> bool:
            """Look, freeze, look again: the transaction may have ended in between."""
            if await holding_locks():
                replica.freeze()
                if await holding_locks():
                    return True
                replica.thaw()
            return False

        # Looked for often: one look every 0.2 s once missed every transaction of the replica
        # for 60 s, at the short form's 5 records a second (each takes a few milliseconds).
        injected = await self._when(frozen_mid_transaction, every=0.01)
        if injected is None:
            raise RuntimeError(f"{replica.name} was never seen holding locks")
        return injected, injected

    async def through_while_frozen(self) -> float | None:
        """The probes through while the frozen replica sleeps; then it is woken, to find its
        partitions gone and its transaction's work done by the other."""
        try:
            return await self.probe_through()
        finally:
            (await self._second_replica()).thaw()

    async def kill_a_replica(self) -> tuple[float, float]:
        """Two processes in one group share the partitions; one dies without a goodbye, and the
        group must hand its partitions (and uncommitted records) to the other."""
        await self._second_replica()
        injected = time.time()
        await asyncio.to_thread(self.stack.processes[self.scale.replicated].kill)
        # Nothing is restarted: the survivor takes over once the group notices.
        return injected, injected

    async def _second_replica(self) -> ServiceProcess:
        """The replicated service's second process; started, and given a while to consume
        alongside the first, when first asked for."""
        if not self.stack.replicas:
            await asyncio.to_thread(self.stack.add_replica, self.scale.replicated)
            await asyncio.sleep(self.scale.settle)
        return next(iter(self.stack.replicas.values()))

    async def drain(self) -> Verdict:
        """Wait until every service caught up and nothing accepted is missing, or time is up."""
        started = time.monotonic()
        while True:
            waiting = await evidence.unfinished(self.infra)
            verdict = await self.verdict()
            if not waiting and not verdict.lost:
                say(f"faults: caught up {time.monotonic() - started:.1f}s after the stream")
                await asyncio.sleep(2.0)  # anything done twice would show now
                return await self.verdict()
            if time.monotonic() - started > self.scale.drain_timeout:
                say(f"faults: not caught up after {self.scale.drain_timeout:g}s: {waiting}")
                verdict.behind = waiting
                return verdict
            await asyncio.sleep(2.0)

    async def verdict(self) -> Verdict:
        accepted = [(a.employee_number, a.seq) for a in self.feed.accepted]
        facts = await evidence.collect(self.infra, accepted, self.program_id)
        facts.observations = self.observations
        facts.pairs = self.pairs.accepted
        facts.faults = self.faults
        return judge(facts)


def run(scale: Scale, log_dir: Path, kafka_rounds: int = 0) -> Verdict:
    """Start everything, inject the faults (the broker's only, ``kafka_rounds`` times over, if
    given), judge; every process is stopped on every way out."""
    tokens = TokenIssuer()
    with LocalInfra(SERVICES) as infra, CrossgenStack(infra, tokens, log_dir) as stack:

        async def faults() -> Verdict:
            async with HrisFeed(infra.kafka.bootstrap_servers) as feed:
                return await FaultRun(stack, scale, feed, kafka_rounds).run()

        try:
            return asyncio.run(faults())
        finally:
            # The broker's account of the groups (who joined, whose session expired, why each
            # rebalance began), to read the services' logs against; gone with its data dir.
            if infra.kafka.log_path is not None and infra.kafka.log_path.exists():
                shutil.copy(infra.kafka.log_path, log_dir / "kafka.log")


SHOWN_ERRORS = 20  # the services' ERROR lines shown and kept in the results, at most


def report(verdict: Verdict, scale: Scale) -> dict[str, Any]:
    return {
        "form": scale.name,
        "scale": asdict(scale),
        "passed": verdict.passed,
        "results": verdict.summary(),
        "seen": verdict.seen,
        "faults": {
            f.name: {"down_s": f.repaired_at - f.injected_at, "recovery_s": f.recovery}
            for f in verdict.faults
        },
        "problems": {
            "lost": verdict.lost,
            "duplicates": verdict.duplicates,
            "reorders": verdict.reorders,
            "behind": verdict.behind,
            "dead_lettered": verdict.dead_lettered,
            "in_doubt": verdict.in_doubt,
        },
        "consumers_restarted": verdict.restarted,
        "errors_logged": verdict.errors_logged[:SHOWN_ERRORS],
    }


def show(verdict: Verdict) -> None:
    print("\n== fault suite ==")
    for what, count in [*verdict.summary().items(), *verdict.seen.items()]:
        print(f"  {what:<30} {count:>8}")
    width = max([40, *(len(fault.name) for fault in verdict.faults)])
    print(f"\n  {'fault':<{width}} {'down':>8} {'time to recover':>16}")
    for fault in verdict.faults:
        down = fault.repaired_at - fault.injected_at
        print(f"  {fault.name:<{width}} {_seconds(down):>8} {_seconds(fault.recovery):>16}")
    problems = [
        *verdict.lost,
        *verdict.duplicates,
        *verdict.reorders,
        *verdict.behind,
        *verdict.dead_lettered,
    ]
    for problem in problems[:20]:
        print(f"  ! {problem}")
    for restart in verdict.restarted:
        print(f"  ~ restarted: {restart}")
    for line in verdict.errors_logged[:SHOWN_ERRORS]:
        print(f"  ? {line}")
    print("\nPASSED" if verdict.passed else "\nFAILED: lost, duplicated, reordered or left behind")


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--long", action="store_true", help="bigger stream, 30 s outages (broker, database, relay)"
    )
    parser.add_argument(
        "--kafka-rounds",
        type=int,
        default=0,
        metavar="N",
        help="only restart, crash and freeze the broker, N times over",
    )
    parser.add_argument(
        "--replicated",
        # Not sessions: it takes up accepted pairings only, and the stream accepts none, so it
        # has no transaction to be frozen in.
        choices=("matching", "notifications"),
        default=LONG.replicated,
        help="the service run as two replicas, one frozen mid-transaction, one killed",
    )
    args = parser.parse_args()
    if args.kafka_rounds < 0:
        parser.error("--kafka-rounds must be 0 or more")
    if args.kafka_rounds and args.replicated != LONG.replicated:
        parser.error("--kafka-rounds runs no replicas: leave out --replicated")
    # The feed's and the readers' clients log each failed reconnect while the broker is down on
    # purpose; the verdict says whether that mattered.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    scale = replace(LONG if args.long else SHORT, replicated=args.replicated)
    log_dir = Path(tempfile.mkdtemp(prefix="crossgen-faults-"))
    verdict = run(scale, log_dir, args.kafka_rounds)
    show(verdict)
    kept = RESULTS
    if args.kafka_rounds:
        kept = RESULTS.with_stem("faults-kafka")
    elif args.replicated != LONG.replicated:
        kept = RESULTS.with_stem(f"faults-{args.replicated}-replicas")
    out = kept if args.long else log_dir / "faults.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report(verdict, scale), indent=2) + "\n")
    print(f"results in {out}; the services' and the broker's logs in {log_dir}")
    sys.exit(0 if verdict.passed else 1)


if __name__ == "__main__":
    run_stoppable(main)
