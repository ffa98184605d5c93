"""The one write path into the directory, whichever way a record came in (SCIM, Kafka, CSV)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from crossgen_matching import admission
from crossgen_matching.directory import lookup, program_effects, read_ahead
from crossgen_matching.directory.freshness import Outcome, Stored, judge
from crossgen_matching.directory.models import Employee
from crossgen_matching.directory.record import (
    LIST_FIELDS,
    ORGANISATION_FIELDS,
    PERSON_FIELDS,
    EmployeeRecord,
)
from crossgen_shared.errors import Conflict
from crossgen_shared.unit_of_work import UnitOfWork

# Why a person leaves the programs, said of them: "the mentor left the company".
LEFT = "left the company"
INACTIVE = "is no longer active in the company directory"


# The employee's row, locked and read afresh (as a get with_for_update does); built once.
_LOCKED = (
    select(Employee)
    .where(Employee.employee_number == bindparam("employee_number"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


class UnknownEmployee(Conflict):
    """A record that names a person only by a source id the directory has not seen."""


@dataclass(frozen=True)
class Change:
    outcome: Outcome
    employee: Employee | None


async def record(uow: UnitOfWork, incoming: EmployeeRecord) -> Change:
    """Store what a source says about an employee, and act on the programs if that matters.

    Raises Conflict when the record would give a second person the same userName, or names a
    person only by a source id nobody in the directory has.
    """
    session = uow.session
    number = incoming.employee_number or await _known_as(uow, incoming)
    ahead = read_ahead.of(uow)
    if ahead is not None and number in ahead.employees:
        employee = ahead.employees[number]
    else:
        employee = await session.scalar(_LOCKED, {"employee_number": number})
    verdict = judge(_stored(employee) if employee else None, incoming)
    if not verdict.applies:
        return Change(verdict.outcome, employee)
    changes = dict(verdict.changes)
    if "manager_external_id" in changes and "manager_employee_number" not in changes:
        external = changes["manager_external_id"]
        changes["manager_employee_number"] = external and await lookup.by_external_id(
            session, external
        )
    was_present = employee is None or lookup.is_present(employee)
    if employee is None:
        employee = Employee(employee_number=number, active=True, **{f: [] for f in LIST_FIELDS})
        session.add(employee)
        if ahead is not None:
            ahead.employees[number] = employee
    _write(employee, changes)
    if ahead is not None and "manager_employee_number" in changes:
        ahead.forget(changes["manager_employee_number"])  # they have a report now
    employee.source = incoming.source
    employee.source_timestamp = incoming.source_timestamp
    employee.last_vendor_event_id = incoming.vendor_event_id
    await _check_user_name(uow, employee)
    if "external_id" in changes and employee.external_id:
        await _adopt_reports(uow, employee)
    if was_present and not lookup.is_present(employee):
        reason = LEFT if employee.removed_at else INACTIVE
        await program_effects.person_left(uow, employee.employee_number, reason)
    elif lookup.is_present(employee):
        # Most records (a new hire above all) concern nobody in a program: asked once.
        matters = {"display_name", "email", *ORGANISATION_FIELDS} & changes.keys()
        if matters and await program_effects.concerns_programs(uow, employee.employee_number):
            if set(ORGANISATION_FIELDS) & changes.keys():
                await program_effects.organisation_changed(uow, employee.employee_number)
            if {"display_name", "email"} & changes.keys():
                await program_effects.details_changed(uow, employee, changes.keys())
        await admission.enrol_automatically(uow, employee)
    if ahead is not None:
        ahead.forget(number)  # their programs may have changed
    return Change(verdict.outcome, employee)


async def _known_as(uow: UnitOfWork, incoming: EmployeeRecord) -> str:
    assert incoming.external_id is not None  # a record names the person one way or the other
    number = await lookup.by_external_id(uow.session, incoming.external_id)
    if number is None:
        raise UnknownEmployee(
            f"{incoming.source} names a person by id {incoming.external_id!r} only, and the"
            " directory does not know them yet: send their employee number"
        )
    return number


def _stored(employee: Employee) -> Stored:
    values: dict[str, Any] = {f: getattr(employee, f) for f in PERSON_FIELDS}
    values |= {f: tuple(getattr(employee, f)) or None for f in LIST_FIELDS}
    values["removed"] = employee.removed_at is not None
    return Stored(employee.source_timestamp, employee.last_vendor_event_id, values)


def _write(employee: Employee, changes: dict[str, Any]) -> None:
    if not changes:
        return
    now = datetime.now(UTC)
    for field, value in changes.items():
        if field == "removed":
            employee.removed_at = (employee.removed_at or now) if value else None
        elif field in LIST_FIELDS:
            setattr(employee, field, list(value or ()))
        else:
            setattr(employee, field, value)
    employee.updated_at = now


async def _check_user_name(uow: UnitOfWork, employee: Employee) -> None:
    ahead = read_ahead.of(uow)
    if employee.user_name and employee.removed_at is None:
        name = employee.user_name.lower()
        if ahead is not None and name in ahead.owners:
            owner = ahead.owners[name]
        else:
            with uow.session.no_autoflush:  # ask before the database refuses the write
                owner = await lookup.owner_of_user_name(uow.session, name)
        if owner not in (None, employee.employee_number):
            raise Conflict(f"userName {employee.user_name!r} belongs to employee {owner}")
    if ahead is None or not ahead.together:
        try:
            await uow.session.flush()
        except IntegrityError as exc:  # another writer took the number or userName meanwhile
            raise Conflict(
                f"employee {employee.employee_number} or userName {employee.user_name!r} was"
                " written at the same moment by another request; retry"
            ) from exc
    if ahead is not None:
        ahead.moved(employee)


async def _adopt_reports(uow: UnitOfWork, manager: Employee) -> None:
    """Link the reports that named this manager by the source's id before they were known."""
    if (ahead := read_ahead.of(uow)) is not None:
        ahead.forget(manager.employee_number)
    await uow.session.execute(
        update(Employee)
        .where(
            Employee.manager_external_id == manager.external_id,
            Employee.manager_employee_number.is_(None),
        )
        .values(manager_employee_number=manager.employee_number)
    )
