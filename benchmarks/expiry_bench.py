"""Proposals nobody answers, expired at scale (issue 8): a launch's proposals are made within
minutes of each other and expire together, the whole program's on the same check.

    python benchmarks/expiry_bench.py [--learners 20000]

The benchmark fills a fresh database with the synthetic program of the whole-program benchmark,
publishes a run (a proposal for nearly every learner), makes every proposal older than the
expiry age and runs the expiry worker's own function until nothing is due, in a process set as
the service's. It reports how many expired, wall and CPU time (PostgreSQL's is its own), the
transactions and the longest of them (the program's joins and answers wait for its lock), and the
longest the event loop was held. Results: a table on stdout and benchmarks/results/expiry.json.
"""

import time
from datetime import timedelta
from typing import Any
from uuid import UUID

from in_service import LoopHeld
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from whole_program_bench import ADMIN, on_the_program

from crossgen_matching import expiry
from crossgen_matching.models import Pairing
from crossgen_matching.program_admin_views import publish_matching
from crossgen_shared.unit_of_work import UnitOfWork

MAX_AGE = timedelta(days=14)


class Timed(UnitOfWork):
    """A unit of work that notes in ``took`` how long its transaction took."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], took: list[float]) -> None:
        super().__init__(sessions, "bench")
        self._took = took

    async def __aenter__(self) -> "Timed":
        self._opened = time.perf_counter()
        await super().__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await super().__aexit__(*exc)
        self._took.append(time.perf_counter() - self._opened)


async def measure(
    sessions: async_sessionmaker[AsyncSession], program_id: UUID, learners: int
) -> dict[str, Any]:
    await publish_matching(program_id, ADMIN, UnitOfWork(sessions, "bench"))
    async with sessions() as session:
        await session.execute(
            update(Pairing).values(proposed_at=Pairing.proposed_at - MAX_AGE - timedelta(1))
        )
        await session.commit()
    took: list[float] = []
    async with LoopHeld() as held:
        cpu, wall = time.process_time(), time.perf_counter()
        expired = await expiry.expire_backlog(lambda: Timed(sessions, took), MAX_AGE)
        wall_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "learners": learners,
        "mentors": learners // 2,
        "expired": expired,
        "wall_s": round(wall_s, 1),
        "cpu_s": round(cpu_s, 1),
        "transactions": len(took),
        "longest_transaction_s": round(max(took), 2),
        "loop_held_s": round(held.longest, 3),
    }


def main() -> None:
    assert __doc__
    machine, measured, out = on_the_program(__doc__, measure, "expiry.json")
    print(f"fixed Python work {machine['python_work_ms']} ms")
    columns = list(measured)
    print(" ".join(f"{c:>{max(len(c), 8)}}" for c in columns))
    print(" ".join(f"{measured[c]!s:>{max(len(c), 8)}}" for c in columns))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
