"""The scheduled full re-solve: every program is matched as a whole, as a publish would."""

import logging
from collections.abc import Callable

from sqlalchemy import select

from crossgen_matching import program_admin
from crossgen_matching.models import Program
from crossgen_shared.errors import Conflict, Unprocessable
from crossgen_shared.periodic import every
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


async def resolve_all(unit_of_work: Callable[[], UnitOfWork]) -> int:
    """Publish a run for every program, each in its own transaction; returns how many ran.

    A program whose run lock is held (an owner's publish, or another replica's re-solve) is
    skipped, as is one a publish would refuse; accepted pairings are kept, as publish keeps them.
    """
    async with unit_of_work() as uow:
        programs = list(await uow.session.scalars(select(Program.id).order_by(Program.id)))
    ran = 0
    for program_id in programs:
        try:
            async with unit_of_work() as uow:
                await program_admin.publish(uow, program_id)
                await uow.commit()
            ran += 1
        except Conflict:
            log.info("program %s is being matched already; skipped", program_id)
        except Unprocessable as exc:
            log.info("program %s not re-solved: %s", program_id, exc)
    return ran


async def watch(unit_of_work: Callable[[], UnitOfWork], interval: float) -> None:
    """The background worker: re-solve every program every ``interval`` seconds until cancelled,
    first after one interval: a restart or a new replica does not set off a re-solve of its own."""

    async def run() -> None:
        await resolve_all(unit_of_work)

    await every(interval, "re-solving the programs", run, log, first_after_interval=True)
