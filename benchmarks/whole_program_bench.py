"""A program owner's whole-program run at scale (issue 8): what ``POST
/programs/{id}/matching/preview`` and ``.../publish`` cost the matching service, against a real
PostgreSQL.

    python benchmarks/whole_program_bench.py [--learners 20000]

The optimiser runs in a thread of its own; reading the program around it and proposing its result
happen on the service's event loop, and while the loop is held that replica moves no event and
answers nothing, its probes included. The benchmark fills a fresh database with the synthetic
program (--learners learners, half as many mentors, each in the directory with a department, hire
date, job level and manager), then calls the endpoints' own functions in turn, each to its
answer's JSON: a preview and a publish with nothing proposed yet (publishing proposes nearly
everyone), then a preview and a publish again, over those open proposals. Per call: wall time,
this process's CPU time (the optimiser's thread included; PostgreSQL's is its own) and the longest
the event loop was held. Results: a table on stdout and benchmarks/results/whole-program.json.
"""

import argparse
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import host  # benchmarks/ is on the path: python runs this file as a script
import synthetic
from fastapi import Response
from in_service import LoopHeld, fill, on_a_fresh_database
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import crossgen_matching
from crossgen_matching.directory.models import Employee
from crossgen_matching.models import Pairing, PairRule, Participant, Program
from crossgen_matching.program_admin_views import RunOut, preview_matching, publish_matching
from crossgen_shared.auth import Principal
from crossgen_shared.unit_of_work import UnitOfWork

HERE = Path(__file__).resolve().parent
MIGRATIONS = Path(crossgen_matching.__file__).parent / "migrations"
# An IANA zone for each of the synthetic regions' UTC offsets.
ZONES = {
    -8.0: "America/Los_Angeles",
    -5.0: "America/New_York",
    -3.0: "America/Sao_Paulo",
    0.0: "Europe/London",
    1.0: "Europe/Berlin",
    2.0: "Europe/Athens",
    5.5: "Asia/Kolkata",
    8.0: "Asia/Shanghai",
    9.0: "Asia/Tokyo",
}
ADMIN = Principal("bench", frozenset({"admin"}))
CALLS = ("preview", "publish", "preview again", "publish again")


def rows(learners: int, today: date) -> tuple[UUID, dict[Any, list[dict[str, Any]]]]:
    """The synthetic program's rows by table."""
    program, _ = synthetic.program(learners)
    program_id, now = uuid4(), datetime.now(UTC)
    tables: dict[Any, list[dict[str, Any]]] = {
        Program: [{"id": program_id, "name": "bench"}],
        Employee: [],
        Participant: [],
        Pairing: [],
        PairRule: [],
    }
    ids: dict[str, UUID] = {}
    enrolled = [("learner", p.person, p.wants, 1) for p in program.learners] + [
        ("mentor", m.person, m.teaches, m.capacity) for m in program.mentors
    ]
    for role, person, skills, capacity in enrolled:
        ids[person.id] = uuid4()
        tables[Employee].append(
            {
                "employee_number": person.id,
                "department": person.department,
                "hire_date": today - timedelta(days=round(person.tenure_years * 365.25)),
                "job_level": f"L{person.job_level}",
                "manager_employee_number": person.manager_id,
                "source": "bench",
                "source_timestamp": now,
            }
        )
        tables[Participant].append(
            {
                "id": ids[person.id],
                "program_id": program_id,
                "person_id": person.id,
                "role": role,
                "display_name": person.id,
                "email": f"{person.id}@example.com",
                "skills": dict(skills),
                "capacity": capacity,
                "languages": sorted(person.languages),
                "timezone": ZONES[person.utc_offset],
                "work_start": int(person.work_start),
                "work_end": int(person.work_end),
            }
        )
    ended = {"status": "ended", "score": 0.5, "explanation": []}
    for table, pairs, values in (
        (Pairing, program.ended, ended),
        (PairRule, program.forbidden, {"kind": "forbidden"}),
    ):
        tables[table] += [
            {
                "program_id": program_id,
                "learner_id": ids[p.learner_id],
                "mentor_id": ids[p.mentor_id],
            }
            | values
            for p in pairs
        ]
    return program_id, tables


async def measure(
    sessions: async_sessionmaker[AsyncSession], program_id: UUID, learners: int
) -> dict[str, Any]:
    counts = {"learners": learners, "mentors": learners // 2}

    endpoints: dict[str, Callable[[UnitOfWork], Awaitable[Response]]] = {
        "preview": lambda uow: preview_matching(program_id, ADMIN, uow),
        "publish": lambda uow: publish_matching(program_id, ADMIN, uow),
    }
    measured: dict[str, Any] = {}
    for call in CALLS:
        uow = UnitOfWork(sessions, "bench")
        async with LoopHeld() as held:
            cpu, wall = time.process_time(), time.perf_counter()
            answer = await endpoints[call.split()[0]](uow)
            wall_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        run = RunOut.model_validate_json(bytes(answer.body))
        measured[call] = {
            "wall_s": round(wall_s, 3),
            "cpu_s": round(cpu_s, 3),
            "loop_held_s": round(held.longest, 3),
            "proposed": len(run.proposed),
            "kept": run.kept,
            "withdrawn": run.withdrawn,
            "answer_mb": round(len(answer.body) / 1e6, 1),
        }
    return counts | measured


Measure = Callable[
    [async_sessionmaker[AsyncSession], UUID, int], Coroutine[Any, Any, dict[str, Any]]
]


async def _on_the_program(url: str, learners: int, measure: Measure) -> dict[str, Any]:
    """What ``measure`` (sessions, program id, learners) measured once the synthetic program is
    written to the fresh database at ``url``."""
    engine = create_async_engine(url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        program_id, tables = rows(learners, date.today())
        await fill(sessions, tables)
        return await measure(sessions, program_id, learners)
    finally:
        await engine.dispose()


def on_the_program(
    about: str, measure: Measure, results: str
) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """The host's facts, what ``measure`` measured on the synthetic program in a fresh database
    with the learners the command line gives (``about``: its help), and the file both went to:
    ``results/<results>`` unless the command line says otherwise."""
    parser = argparse.ArgumentParser(description=about.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / results)
    args = parser.parse_args()
    machine = host.facts()
    measured = on_a_fresh_database(
        MIGRATIONS, lambda url: _on_the_program(url, args.learners, measure)
    )
    host.write(args.out, machine, args, measured=measured)
    return machine, measured, args.out


def main() -> None:
    assert __doc__
    machine, measured, out = on_the_program(__doc__, measure, "whole-program.json")
    print(
        f"fixed Python work {machine['python_work_ms']} ms;"
        f" {measured['learners']} learners, {measured['mentors']} mentors"
    )
    print(
        f"{'call':14} {'wall s':>7} {'CPU s':>7} {'loop held s':>12}"
        f" {'proposed':>9} {'kept':>6} {'withdrawn':>10} {'answer MB':>10}"
    )
    for call in CALLS:
        of = measured[call]
        print(
            f"{call:14} {of['wall_s']:7.2f} {of['cpu_s']:7.2f} {of['loop_held_s']:12.3f}"
            f" {of['proposed']:9} {of['kept']:6} {of['withdrawn']:10} {of['answer_mb']:10.1f}"
        )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
