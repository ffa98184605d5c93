"""The right to erasure: a grace period after a person leaves the company, forget them.

Who left is the directory's knowledge: deleted at the source (``removed_at``) or inactive there
(``active`` false, as of ``updated_at``, a later time than the deactivation itself, so erasure is
never early). Participants have no time of their own for leaving (their status says only that
they left), so the directory's time decides for every participant of the person.

What goes: names, addresses, userName, title, location, time zone, languages and manager links.
What stays, for anonymous aggregates and to recognise later records about the same person: the
employee number and the source's id, department, division, organisation, cost centre, job
level, hire date, roles, skills and interests, statuses and every date. Each participant of the
person gets one ParticipantErased in the same transaction, so sessions and notifications forget
them too.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from crossgen_matching.directory.models import Employee
from crossgen_matching.models import Participant
from crossgen_shared.events import ParticipantErased
from crossgen_shared.periodic import every
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# Who wrote an erased directory row last; it marks the row done. A newer record from the source
# overwrites it, and if that person is still gone the next run erases them again.
ERASURE = "erasure"
ERASED_NAME = "(erased)"
# A participant's email is required; this address can never be delivered to (RFC 2606).
ERASED_EMAIL = "erased@erased.invalid"
BATCH = 100


async def erase_due(uow: UnitOfWork, now: datetime, grace: timedelta) -> int:
    """Erase up to BATCH people whose grace period ended; returns how many. The caller commits.

    Replicas share the work: each takes the rows no other one holds (SKIP LOCKED), and an erased
    row no longer qualifies, so every participant is announced once.
    """
    cutoff = now - grace
    people = list(
        await uow.session.scalars(
            select(Employee)
            .where(
                Employee.source != ERASURE,
                or_(
                    Employee.removed_at < cutoff,
                    and_(Employee.active.is_(False), Employee.updated_at < cutoff),
                ),
            )
            .order_by(Employee.employee_number)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for employee in people:
        _forget(employee, now)
    # Leaving set every enrolment of theirs to "left" (directory.program_effects).
    participants = await uow.session.scalars(
        select(Participant)
        .where(
            Participant.person_id.in_([e.employee_number for e in people]),
            Participant.status == "left",
        )
        .order_by(Participant.id)
        .with_for_update()
    )
    for participant in participants:
        participant.display_name, participant.email = ERASED_NAME, ERASED_EMAIL
        participant.goals = ""  # free text about the person
        participant.status = "erased"
        await uow.emit(
            ParticipantErased(
                participant_id=participant.id,
                program_id=participant.program_id,
                person_id=participant.person_id,
                erased_at=now,
            )
        )
    return len(people)


def _forget(employee: Employee, now: datetime) -> None:
    employee.user_name = employee.display_name = employee.email = None
    employee.title = employee.location = employee.timezone = None
    employee.manager_employee_number = employee.manager_external_id = None
    employee.languages = []
    employee.source, employee.updated_at = ERASURE, now


async def watch(unit_of_work: Callable[[], UnitOfWork], grace: timedelta, interval: float) -> None:
    """The background worker: erase what is due every ``interval`` seconds until cancelled."""

    async def run() -> None:
        while True:
            async with unit_of_work() as uow:
                erased = await erase_due(uow, datetime.now(UTC), grace)
                await uow.commit()
            if erased:
                log.info("erased %d person(s) whose grace period ended", erased)
            if erased < BATCH:
                return

    await every(interval, "erasure", run, log)
