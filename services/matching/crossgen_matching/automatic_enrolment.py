"""The enrolment of the directory's eligible people when a program switches to automatic: a run in
the background, through the directory in employee-number order, a batch per transaction.

It was the admin's request: one transaction of over half a minute at 40,000 employees, past the
usual proxy timeout at 100,000, holding every candidate in memory and the program's row until its
end. A batch's enrolments, their events and the run's place commit together, so a crash or a
restart loses nothing and enrols nobody twice, any replica goes on where the last batch ended, and
the first emails go out while the run goes on. People the directory writes meanwhile are enrolled
by their record (admission.enrol_automatically), as the program is automatic from the switch on.
"""

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy import ColumnElement, exists, func, or_, select

from crossgen_matching import admission
from crossgen_matching.directory import lookup
from crossgen_matching.directory.models import Employee
from crossgen_matching.eligibility import ProgramRules
from crossgen_matching.models import AutomaticEnrolment, Participant
from crossgen_shared.observability import briefly, log_failure, passing_trouble
from crossgen_shared.periodic import every
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BATCH = 500  # employees looked at in one transaction: about a second of this service's time
_PROGRESS_EVERY = 5000  # a log line each time the run has looked at so many more
# A run whose batch keeps failing tries again at most this far apart: put right (a deploy, a
# directory record corrected), it goes on within minutes.
_LONGEST_WAIT = 300.0
_ERROR_LENGTH = 500  # of the error kept for the admin to read


def _candidates(program_id: UUID) -> list[ColumnElement[bool]]:
    """Present employees with an email who are not active in the program."""
    active = exists().where(
        Participant.program_id == program_id,
        Participant.person_id == Employee.employee_number,
        Participant.status == "active",
    )
    return [*lookup.PRESENT, Employee.email.is_not(None), ~active]


async def set_rules(
    uow: UnitOfWork, program_id: UUID, rules: ProgramRules
) -> AutomaticEnrolment | None:
    """Store the program's rules. Automatic (a switch, or staying so): a run starts, from the
    directory's first employee again; otherwise a run under way stops. The caller commits."""
    chosen = await admission.set_rules(uow, program_id, rules)
    run = await uow.session.get(AutomaticEnrolment, program_id)
    if rules.enrolment != "automatic":
        if run is not None:
            await uow.session.delete(run)
        return None
    if run is None:
        run = AutomaticEnrolment(program_id=chosen.id)
        uow.session.add(run)
    run.after, run.checked, run.enrolled, run.finished_at = None, 0, 0, None
    run.failures, run.last_error, run.retry_at = 0, None, None
    run.started_at = _now()
    run.to_check = (
        await uow.session.scalar(
            select(func.count()).select_from(Employee).where(*_candidates(program_id))
        )
        or 0
    )
    await uow.session.flush()
    return run


async def progress(uow: UnitOfWork, program_id: UUID) -> AutomaticEnrolment | None:
    """The program's latest run, if it is automatic."""
    await admission.program(uow, program_id)  # 404 for an unknown program
    return await uow.session.get(AutomaticEnrolment, program_id)


async def due(uow: UnitOfWork) -> UUID | None:
    """The program whose unfinished run started first, of those not waiting after a failure."""
    waited = or_(AutomaticEnrolment.retry_at.is_(None), AutomaticEnrolment.retry_at <= _now())
    return await uow.session.scalar(
        select(AutomaticEnrolment.program_id)
        .where(AutomaticEnrolment.finished_at.is_(None), waited)
        .order_by(AutomaticEnrolment.started_at)
        .limit(1)
    )


async def enrol_batch(uow: UnitOfWork, program_id: UUID) -> None:
    """Go on with the program's run for one batch. The caller commits.

    It locks the people it looks at, not the program: HRIS records and self-enrolments of
    others go on meanwhile (at a launch, records renaming people had made the run twice as
    long). Of one person, whichever locks them first commits first, and the other finds them
    enrolled."""
    # A key share: a switch under way (FOR UPDATE) commits first, and waits for this batch.
    chosen = await admission.program(uow, program_id, lock="key share")
    # Locked, and read after the lock: a replica's batch, a new switch or a switch to "self" may
    # have committed while this one waited.
    run = await uow.session.get(
        AutomaticEnrolment, program_id, populate_existing=True, with_for_update=True
    )
    if run is None or run.finished_at is not None:
        return
    query = select(Employee).where(*_candidates(program_id)).order_by(Employee.employee_number)
    if run.after is not None:
        query = query.where(Employee.employee_number > run.after)
    # In employee-number order, as an HRIS batch locks its people: no deadlock between them.
    batch = (await uow.session.scalars(query.limit(BATCH).with_for_update(key_share=True))).all()
    # Asked again once they are locked: the query saw the program as it was when it began, and
    # an HRIS record or a self-enrolment it waited for may have enrolled someone since.
    enrolled = set(
        await uow.session.scalars(
            select(Participant.person_id).where(
                Participant.program_id == program_id,
                Participant.person_id.in_([e.employee_number for e in batch]),
                Participant.status == "active",
            )
        )
    )
    rules, today = admission.rules_of(chosen), date.today()
    for employee in batch:
        if employee.employee_number in enrolled:
            continue
        if role := rules.automatic_role(employee, today):
            await admission.enrol_from_directory(uow, chosen, employee, role, together=True)
            run.enrolled += 1
    if batch:
        run.after = batch[-1].employee_number
    before, run.checked = run.checked, run.checked + len(batch)
    run.failures, run.last_error, run.retry_at = 0, None, None
    if len(batch) < BATCH:
        run.finished_at = _now()
        seconds = (run.finished_at - run.started_at).total_seconds()
        log.info(
            "program %s: automatic enrolment done: %d enrolled of %d looked at in %.1f s",
            program_id, run.enrolled, run.checked, seconds,
        )  # fmt: skip
    elif run.checked // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
        log.info(
            "program %s: automatic enrolment: %d of about %d looked at, %d enrolled",
            program_id, run.checked, run.to_check, run.enrolled,
        )  # fmt: skip
    await uow.session.flush()


async def enrol_due(unit_of_work: Callable[[], UnitOfWork], interval: float) -> None:
    """Run batches while a run is due. A batch that fails for the database's trouble ends the
    round, which comes again after ``interval``. One that fails otherwise (a bug, a record the
    code cannot take) would fail again at once: its run records the error and waits, twice as
    long after each failure in a row, while the other runs go on."""
    while True:
        program_id = None
        try:
            async with unit_of_work() as uow:
                if (program_id := await due(uow)) is None:
                    return
                await enrol_batch(uow, program_id)
                await uow.commit()
        except Exception as exc:
            if program_id is None or passing_trouble(exc):
                raise
            await _failed(unit_of_work, program_id, exc, interval)


async def _failed(
    unit_of_work: Callable[[], UnitOfWork], program_id: UUID, exc: Exception, interval: float
) -> None:
    async with unit_of_work() as uow:
        run = await uow.session.get(AutomaticEnrolment, program_id, with_for_update=True)
        if run is None or run.finished_at is not None:  # a switch meanwhile: nothing to retry
            return
        run.failures += 1
        run.last_error = briefly(exc)[:_ERROR_LENGTH]
        wait = min(interval * 2**run.failures, _LONGEST_WAIT)
        retry_at = run.retry_at = _now() + timedelta(seconds=wait)
        failures = run.failures
        await uow.commit()
    log_failure(
        log,
        f"program {program_id}: automatic enrolment",
        exc,
        f"{failures} failure(s) in a row, the next attempt at {retry_at:%H:%M:%S} UTC;"
        f" GET /programs/{program_id}/automatic-enrolment shows the error",
    )


async def watch(unit_of_work: Callable[[], UnitOfWork], interval: float) -> None:
    """The background worker: every ``interval`` seconds, run the batches that are due."""
    await every(
        interval, "enrolling automatic programs", lambda: enrol_due(unit_of_work, interval), log
    )


def _now() -> datetime:
    return datetime.now(UTC)
