"""Counting who meets a program's rules (issue 8): the ``"eligible"`` of every PUT and GET of
``/programs/{id}/eligibility``, over a directory of --employees, against a real PostgreSQL.

    python benchmarks/eligibility_bench.py [--employees 40000] [--runs 5]

The count runs on matching's event loop: while it runs, no HRIS record, join or answer of that
replica moves. Two directories: one where people are alike (ten departments, two levels, two hire
dates, as the launch benchmark's), one where they differ (hire dates spread over 20 years, levels
1-12, 40 departments, 12 locations), each under rules that read the level, the tenure and the
department. Per directory, the best of --runs: the count's wall time and this process's CPU time
in it (the event loop's share; PostgreSQL's grouping is another process). Results: a table on
stdout and benchmarks/results/eligibility.json.
"""

import argparse
import asyncio
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import host  # benchmarks/ is on the path: python runs this file as a script
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

import crossgen_matching
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_matching import admission
from crossgen_matching.directory.models import Employee
from crossgen_matching.eligibility import ProgramRules, RoleRules

HERE = Path(__file__).resolve().parent
MIGRATIONS = Path(crossgen_matching.__file__).parent / "migrations"
# Reverse mentoring as PRODUCT.md tells it: senior people learn from recent hires.
RULES = ProgramRules(
    learner=RoleRules(job_level_min=7),
    mentor=RoleRules(tenure_years_max=5, exclude_departments=("Legal",)),
)


def directory(size: int, spread: bool) -> list[dict[str, Any]]:
    """Employees as rows; seeded, so every run counts the same people."""
    chance = random.Random(size)
    today = date.today()
    rows = []
    for i in range(size):
        if spread:
            department = f"Dept {chance.randrange(40)}"
            level = f"L{chance.randint(1, 12)}"
            hired = today - timedelta(days=chance.randrange(20 * 365))
            location = f"City {chance.randrange(12)}"
        else:
            department, location = f"Dept {i % 10}", "City 0"
            recent, long_ago = ("L3", today - timedelta(days=365)), ("L8", date(2010, 1, 4))
            level, hired = recent if i % 2 else long_ago
        rows.append(
            {
                "employee_number": f"E-{i:06d}",
                "email": f"e{i}@example.com",
                "active": True,
                "department": department,
                "location": location,
                "job_level": level,
                "hire_date": hired,
                "source": "bench",
                "source_timestamp": datetime.now(UTC),
            }
        )
    return rows


async def measure(url: str, rows: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        sessions = async_sessionmaker(engine)
        async with sessions() as session:
            for start in range(0, len(rows), 5000):
                await session.execute(insert(Employee), rows[start : start + 5000])
            await session.commit()
        timings = []
        for _ in range(runs):
            async with sessions() as session:
                cpu, wall = time.process_time(), time.perf_counter()
                counted = await admission.eligible(session, RULES)
                timings.append((time.perf_counter() - wall, time.process_time() - cpu))
        wall_s, cpu_s = min(timings)
        return {"eligible": counted, "wall_s": round(wall_s, 4), "cpu_s": round(cpu_s, 4)}
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=5, help="the fastest run is kept")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "eligibility.json")
    args = parser.parse_args()
    machine = host.facts()
    results: dict[str, Any] = {}
    with LocalPostgres() as postgres:
        for name, spread in (("alike", False), ("spread", True)):
            url = migrated_database(postgres, MIGRATIONS)
            rows = directory(args.employees, spread)
            results[name] = asyncio.run(measure(url, rows, args.runs))
    host.write(args.out, machine, args, rules=RULES.model_dump(mode="json"), directories=results)
    print(f"fixed Python work {machine['python_work_ms']} ms; {args.employees} employees")
    print(f"{'directory':10} {'wall s':>8} {'CPU s':>8}  eligible")
    for name, of in results.items():
        print(f"{name:10} {of['wall_s']:8.3f} {of['cpu_s']:8.3f}  {of['eligible']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
