"""A program's outcomes at scale (issue 8): what ``GET /programs/{id}/outcomes`` (and its CSV)
and ``GET /programs/{id}/overview`` (the dashboard) cost the sessions service, against a real
PostgreSQL.

    python benchmarks/outcomes_bench.py [--pairings 10000] [--runs 3]

Both read every pairing, session and rating of the program and add them up on the service's event
loop: while the loop is held, that replica moves no event and answers nothing, its probes
included. The benchmark fills a fresh database with a program a year old: --pairings pairings
opened over the year, 30 departments, a session every two weeks from each opening (ten each), and
both sides' ratings of each session held. It calls the endpoints' own functions, the caller
owning the program. Per endpoint, the best of --runs: wall time, this process's CPU time
(PostgreSQL's is its own), and the longest the event loop was held meanwhile (a task that asks for
it every 5 ms notes how late it gets it). Results: a table on stdout and
benchmarks/results/outcomes.json.
"""

import argparse
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import host  # benchmarks/ is on the path: python runs this file as a script
from in_service import LoopHeld, fill, on_a_fresh_database
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

import crossgen_sessions
from crossgen_sessions.access import Caller
from crossgen_sessions.models import Feedback, Pairing, Session
from crossgen_sessions.outcomes import report, views
from crossgen_shared.unit_of_work import UnitOfWork

HERE = Path(__file__).resolve().parent
MIGRATIONS = Path(crossgen_sessions.__file__).parent / "migrations"
SESSIONS_EACH = 10


def program(size: int, now: datetime) -> tuple[UUID, dict[Any, list[dict[str, Any]]]]:
    """A program's rows by table; seeded, so every run reads the same."""
    chance = random.Random(size)
    program_id = uuid4()
    rows: dict[Any, list[dict[str, Any]]] = {Pairing: [], Session: [], Feedback: []}
    for i in range(size):
        pairing_id, learner_id, mentor_id = uuid4(), uuid4(), uuid4()
        opened = now - timedelta(days=chance.randrange(30, 365))
        rows[Pairing].append(
            {
                "id": pairing_id,
                "program_id": program_id,
                "learner_id": learner_id,
                "mentor_id": mentor_id,
                "learner_person_id": f"L-{i}",
                "mentor_person_id": f"M-{i}",
                "status": "active",
                "opened_at": opened,
                "learner_department": f"Dept {chance.randrange(30)}",
                "mentor_department": f"Dept {chance.randrange(30)}",
            }
        )
        for n in range(SESSIONS_EACH):
            session_id, starts = uuid4(), opened + timedelta(weeks=2 * n)
            held = starts < now - timedelta(days=1)
            rows[Session].append(
                {
                    "id": session_id,
                    "pairing_id": pairing_id,
                    "starts_at": starts,
                    "duration_minutes": 60,
                    "status": "completed" if held else "scheduled",
                    "held_minutes": 60 if held else None,
                    "completed_at": starts + timedelta(hours=1) if held else None,
                }
            )
            for participant_id in (learner_id, mentor_id) if held else ():
                ratings = {benefit: chance.randint(1, 5) for benefit in report.BENEFITS}
                rows[Feedback].append(
                    {"session_id": session_id, "participant_id": participant_id, "ratings": ratings}
                )
    return program_id, rows


async def measure(url: str, size: int, runs: int) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        now = datetime.now(UTC)
        program_id, rows = program(size, now)
        ratings = len(rows[Feedback])
        await fill(sessions, rows)

        owner = Caller("owner", frozenset({str(program_id)}))
        endpoints: dict[str, Callable[[UnitOfWork], Awaitable[object]]] = {
            "outcomes": lambda uow: views.outcomes(program_id, owner, uow),
            "outcomes.csv": lambda uow: views.outcomes_csv(program_id, owner, uow),
            "overview": lambda uow: views.overview(program_id, owner, uow),
        }

        async def best(call: Callable[[UnitOfWork], Awaitable[object]]) -> dict[str, float]:
            timings = []
            for _ in range(runs):
                uow = UnitOfWork(sessions, "bench")
                async with LoopHeld() as held:
                    cpu, wall = time.process_time(), time.perf_counter()
                    await call(uow)
                    timings.append(
                        (time.perf_counter() - wall, time.process_time() - cpu, held.longest)
                    )
            wall_s, cpu_s, held_s = min(timings)
            return {
                "wall_s": round(wall_s, 3),
                "cpu_s": round(cpu_s, 3),
                "loop_held_s": round(held_s, 3),
            }

        return {
            "pairings": size,
            "sessions": size * SESSIONS_EACH,
            "ratings": ratings,
            **{name: await best(call) for name, call in endpoints.items()},
        }
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="the fastest run is kept")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "outcomes.json")
    args = parser.parse_args()
    machine = host.facts()
    measured = on_a_fresh_database(MIGRATIONS, lambda url: measure(url, args.pairings, args.runs))
    host.write(args.out, machine, args, measured=measured)
    print(
        f"fixed Python work {machine['python_work_ms']} ms; {measured['pairings']} pairings,"
        f" {measured['sessions']} sessions, {measured['ratings']} ratings"
    )
    print(f"{'endpoint':13} {'wall s':>8} {'CPU s':>8} {'loop held s':>12}")
    for name in ("outcomes", "outcomes.csv", "overview"):
        of = measured[name]
        print(f"{name:13} {of['wall_s']:8.3f} {of['cpu_s']:8.3f} {of['loop_held_s']:12.3f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
