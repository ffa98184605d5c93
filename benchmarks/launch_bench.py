"""Launch day: a whole company enrolled by a program made automatic, then every proposal mailed.

    python benchmarks/launch_bench.py [--employees 10000] [--timeout 1800]
        [--kill-matching-after N] [--changes-rate 10] [--out PATH]

One run on one local stack (crossgen_local). The HRIS feed brings --employees people, mentors and
learners alternately, into matching's directory before any program exists. Then an admin creates
a program and makes it automatic (``PUT /programs/{id}/eligibility``), which starts enrolling
everyone eligible in the background. Matching takes up the participant-joined events, each
learner is matched as they join (each mentor takes the best learner waiting), and notifications
mails each proposal to the learner and to the mentor. It measures the request, the background
enrolment, and the time from the request's answer to the first and the last email, with progress
every 5 s; the peak RSS and CPU seconds of each service; and it checks that exactly one email per
person arrived. Last, the admin previews a whole-program run over everyone enrolled: its time and
matching's peak RSS meanwhile. Results: a table on stdout and benchmarks/results/launch.json (or
--out). With --kill-matching-after, matching is killed (-9) once the enrolment has looked at N
employees and started again: the rest of the run says what that crash costs, and whether anyone
is left out or mailed twice. HRIS records that rename people flow at --changes-rate a second for
10 s before the switch and until the enrolment ends: how long the directory takes to store one
then, against before, and that each is stored.
"""

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import host
import httpx
import pipeline_trace
from pipeline_bench import Usage, process_trees
from pipeline_trace import percentiles

from crossgen_local import evidence
from crossgen_local.hris_feed import ELIGIBILITY, Employee, HrisFeed, workforce
from crossgen_local.infra import LocalInfra
from crossgen_local.interrupts import run_stoppable
from crossgen_local.stack import SERVICES, CrossgenStack
from crossgen_local.tokens import TokenIssuer

HERE = Path(__file__).resolve().parent
PROGRESS_EVERY = 5.0  # seconds
BASELINE_S = 10.0  # of changes offered before the launch


def say(line: str) -> None:
    print(f"... {line}", file=sys.stderr, flush=True)


class Changes:
    """HRIS records that change people already in the directory (a new display name each), at a
    steady rate: how long the directory takes to store one, before the launch and while its
    enrolment runs."""

    def __init__(self, feed: HrisFeed, people: list[Employee], rate: float) -> None:
        self.feed, self.people, self.rate = feed, people, rate
        self.sent = 0
        self.ids: dict[str, list[str]] = {}  # phase -> the HRIS event ids sent in it

    async def offer(self, phase: str, going_on: Callable[[], bool]) -> None:
        if self.rate <= 0:
            return
        ids = self.ids.setdefault(phase, [])

        def records() -> Iterator[tuple[Employee, int]]:
            while going_on():
                person = self.people[self.sent % len(self.people)]
                seq = 2 + self.sent // len(self.people)  # the directory was filled with 1
                self.sent += 1
                ids.append(f"{person.number}:{seq}")
                yield person, seq

        await self.feed.offer(records(), self.rate)

    async def stored(self, matching_url: str) -> dict[str, dict[str, Any]]:
        """Each phase's records sent and stored, and the time from a record's due time to its
        change stored, in seconds; the last sent are waited for, a minute at most."""
        sent, waited_for = [i for ids in self.ids.values() for i in ids], time.monotonic() + 60
        while not (at := await pipeline_trace.directory_times(matching_url)).keys() >= set(sent):
            if time.monotonic() > waited_for:
                break
            await asyncio.sleep(0.5)
        due = {f"{a.employee_number}:{a.seq}": a.due_at for a in self.feed.accepted}
        return {
            phase: {
                "sent": len(ids),
                "stored": sum(i in at for i in ids),
                "seconds": percentiles(at[i] - due[i] for i in ids if i in at and i in due),
            }
            for phase, ids in self.ids.items()
        }


async def launch(
    stack: CrossgenStack,
    employees: int,
    give_up_after: float,
    kill_after: int | None = None,
    changes_rate: float = 10.0,
) -> dict[str, Any]:
    """The directory filled, the switch, and the emails; with ``kill_after``, matching is killed
    (-9) and started again once the enrolment has looked at that many employees. Meanwhile,
    ``changes_rate`` HRIS records a second change people in the directory (``Changes``), for
    ``BASELINE_S`` before the switch and until the enrolment ends."""
    infra = stack.infra
    people = workforce(employees)
    started = time.monotonic()
    async with HrisFeed(infra.kafka.bootstrap_servers) as feed:
        await feed.offer(((person, 1) for person in people), float("inf"))
        while (stored := await _count(infra, "matching", "employees")) < employees:
            say(f"directory: {stored} of {employees} employees")
            await asyncio.sleep(PROGRESS_EVERY)
        directory_s = time.monotonic() - started
        say(f"directory: all {employees} employees in {directory_s:.1f} s")
        changes = Changes(feed, people, changes_rate)
        say(f"{changes_rate:g} changes a second for {BASELINE_S:g} s before the launch, and in it")
        until = time.monotonic() + BASELINE_S
        await changes.offer("before", lambda: time.monotonic() < until)
        results = await _enrol_and_mail(stack, people, give_up_after, kill_after, changes)
    results["changes"] = {"rate": changes_rate} | await changes.stored(
        infra.postgres.url("matching")
    )
    return {"employees": employees, "directory_s": directory_s} | results


async def _enrol_and_mail(
    stack: CrossgenStack,
    people: list[Employee],
    give_up_after: float,
    kill_after: int | None,
    changes: Changes,
) -> dict[str, Any]:
    infra = stack.infra
    say("enrolling them")

    admin = stack.tokens.headers("launch-admin", "admin")
    async with httpx.AsyncClient(base_url=stack.url("matching"), timeout=give_up_after) as http:
        created = await http.post("/programs", json={"name": "Launch"}, headers=admin)
        program_id = created.raise_for_status().json()["id"]
        asked = time.monotonic()
        answer = await http.put(
            f"/programs/{program_id}/eligibility", json=ELIGIBILITY, headers=admin
        )
        answer.raise_for_status()
        answered, answered_at = time.monotonic(), time.time()
        say(f"enrolment answered in {answered - asked:.1f} s; it goes on in the background")

        async def enrolment() -> dict[str, Any]:
            run = await http.get(f"/programs/{program_id}/automatic-enrolment", headers=admin)
            found: dict[str, Any] = run.raise_for_status().json()
            return found

        expected, said = 2 * sum(person.role == "learner" for person in people), answered
        killed: dict[str, Any] | None = None
        enrolling = True
        changing = asyncio.create_task(changes.offer("during", lambda: enrolling))
        while (arrived := len(infra.smtp.messages)) < expected:
            now = time.monotonic()
            if now - answered > give_up_after:
                break
            if kill_after is not None and killed is None:
                run = await enrolment()
                if run["checked"] >= kill_after:
                    killed = {key: run[key] for key in ("state", "checked")}
                    await asyncio.to_thread(stack.kill_and_restart, "matching")
                    say(f"matching killed after {run['checked']} looked at, and ready again")
            if now - said >= PROGRESS_EVERY or (enrolling and changes.rate > 0):
                run = await enrolment()
                enrolling = run["state"] != "done"
            if now - said >= PROGRESS_EVERY:
                failing = f"; {run['state']}: {run['last_error']}" if run["failures"] else ""
                say(
                    f"{now - answered:6.1f} s: {run['enrolled']} enrolled ({run['checked']} of"
                    f" {run['to_check']} looked at), {arrived} of {expected} emails{failing}"
                )
                said = now
            await asyncio.sleep(0.5)
        run = await enrolment()
        enrolling = False
        await changing
    mails = infra.smtp.messages
    arrivals = sorted(mail.received_at - answered_at for mail in mails)
    recipients = Counter(tuple(mail.rcpt_tos) for mail in mails)
    return {
        "program_id": program_id,
        "enrolment_request_s": answered - asked,
        "enrolment": {key: run[key] for key in _RUN_FIGURES} | {"seconds": _seconds(run)},
        "emails": {
            "expected": expected,
            "arrived": len(mails),
            "people_mailed_twice": sum(count > 1 for count in recipients.values()),
            "first_s": arrivals[0] if arrivals else None,
            "last_s": arrivals[-1] if len(mails) >= expected else None,
        },
        "participants": await _count(infra, "matching", "participants"),
        "pairings": await _count(infra, "matching", "pairings"),
        "killed": killed,
    }


_RUN_FIGURES = ("state", "to_check", "checked", "enrolled", "failures")


def _seconds(run: dict[str, Any]) -> float | None:
    """How long the background enrolment took, by the service's clock."""
    if run["finished_at"] is None:
        return None
    ended, began = (datetime.fromisoformat(run[key]) for key in ("finished_at", "started_at"))
    return (ended - began).total_seconds()


async def preview(stack: CrossgenStack, program_id: str, give_up_after: float) -> dict[str, Any]:
    """A whole-program run over everyone enrolled, previewed: how long, what it would change, and
    the longest matching took to answer its liveness probe meanwhile (asked every 20 ms): the
    run itself goes on in a thread, what the event loop does around it holds up every event."""
    say("previewing a whole-program run")
    admin = stack.tokens.headers("launch-admin", "admin")
    probes: list[float] = []

    async def probe(http: httpx.AsyncClient) -> None:
        while True:
            asked = time.monotonic()
            (await http.get("/health/live")).raise_for_status()
            probes.append(time.monotonic() - asked)
            await asyncio.sleep(0.02)

    async with httpx.AsyncClient(base_url=stack.url("matching"), timeout=give_up_after) as http:
        probing = asyncio.create_task(probe(http))
        asked = time.monotonic()
        answer = await http.post(f"/programs/{program_id}/matching/preview", headers=admin)
        seconds = time.monotonic() - asked
        probing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probing  # a probe that failed says so here, not in a warning at exit
        run = answer.raise_for_status().json()
    return {
        "seconds": seconds,
        "liveness_answer_max_s": max(probes, default=0.0),
        **{key: run[key] for key in ("learners", "mentors", "kept", "withdrawn")},
        "proposed": len(run["proposed"]),
    }


async def _count(infra: LocalInfra, service: str, table: str) -> int:
    rows = await evidence.rows(infra, service, f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


def measure(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": host.facts(),
        "args": {"employees": args.employees, "changes_rate": args.changes_rate},
    }
    with LocalInfra(SERVICES) as infra, CrossgenStack(infra, TokenIssuer(), log_dir) as stack:
        with Usage(process_trees(stack)) as usage:
            results |= asyncio.run(
                launch(
                    stack, args.employees, args.timeout, args.kill_matching_after, args.changes_rate
                )
            )
        results["peak_rss_mb"] = {name: usage.peaks_mb[name] for name in stack.processes}
        results["cpu_s"] = usage.cpu_s
        with Usage(process_trees(stack)) as usage:  # matching's process is another if it was killed
            results["preview"] = asyncio.run(preview(stack, results["program_id"], args.timeout))
        results["preview"]["matching_peak_rss_mb"] = usage.peaks_mb["matching"]
    results["log_dir"] = str(log_dir)
    return results


def table(results: dict[str, Any]) -> str:
    emails = results["emails"]

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"{'employees':>9} {'directory s':>11} {'answer s':>8} {'enrolment s':>11}"
        f" {'first email s':>13}"
        f" {'last email s':>12} {'emails':>13} {'mailed twice':>12} {'pairings':>8}",
    ]
    lines.append("-" * len(lines[0]))
    lines.append(
        f"{results['employees']:>9} {results['directory_s']:>11.1f}"
        f" {results['enrolment_request_s']:>8.1f} {seconds(results['enrolment']['seconds']):>11}"
        f" {seconds(emails['first_s']):>13}"
        f" {seconds(emails['last_s']):>12} {emails['arrived']:>6}/{emails['expected']:<6}"
        f" {emails['people_mailed_twice']:>12} {results['pairings']:>8}"
    )
    if killed := results["killed"]:
        lines.append(
            f"matching was killed (-9) and started again when the enrolment had looked at"
            f" {killed['checked']} employees ({killed['state']}); below, its first process's RSS"
            " and CPU"
        )
    changes = results["changes"]
    for phase, when in (("before", "before the launch"), ("during", "while the enrolment ran")):
        if phase in changes:
            took = changes[phase]["seconds"] or {}
            lines.append(
                f"HRIS changes {when}, {changes['rate']:g}/s: {changes[phase]['stored']} of"
                f" {changes[phase]['sent']} stored, in (s) "
                + "  ".join(f"{k} {v:.3f}" for k, v in took.items())
            )
    rss = "  ".join(f"{name} {mb:.0f}" for name, mb in results["peak_rss_mb"].items())
    cpu = "  ".join(f"{name} {s:.1f}" for name, s in results["cpu_s"].items())
    lines += [f"peak RSS MB: {rss}", f"CPU s from the first record: {cpu}"]
    run = results["preview"]
    lines.append(
        f"then a whole-program run previewed: {run['learners']} learners, {run['mentors']} mentors"
        f" in {run['seconds']:.1f} s (kept {run['kept']}, withdrawn {run['withdrawn']}, new"
        f" {run['proposed']}); matching's peak RSS meanwhile {run['matching_peak_rss_mb']:.0f} MB,"
        f" its liveness probe answered in {run['liveness_answer_max_s']:.2f} s at worst"
    )
    lines.append(
        "emails are timed from the enrolment's answer; service logs in " + results["log_dir"]
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1800.0, help="s to wait for the emails")
    parser.add_argument(
        "--kill-matching-after",
        type=int,
        metavar="N",
        help="kill -9 matching once the enrolment has looked at N employees, and start it again",
    )
    parser.add_argument(
        "--changes-rate",
        type=float,
        default=10.0,
        help="HRIS records a second that change people, before the launch and while it enrols",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "launch.json")
    args = parser.parse_args()
    if args.employees < 2:
        parser.error("--employees must be at least 2")
    results = measure(args, Path(tempfile.mkdtemp(prefix="crossgen-launch-bench-")))
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    run_stoppable(main)
