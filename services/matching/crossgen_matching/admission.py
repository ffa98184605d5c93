"""Who a program admits, read against the company directory: the check at self-enrolment, the
enrolment of eligible employees in automatic programs, and how many employees meet the rules.

An automatic program enrols a present employee with an email as soon as they meet a role's rules
(as learner when they meet both). A later change that makes them ineligible does not remove them.
The profile starts from the directory's skills (a mentor) or interests (a learner), less those
outside the program's skill catalogue; from then on it is the participant's, and the directory's
later lists do not change it.
"""

import logging
from datetime import date
from typing import Literal
from uuid import UUID

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crossgen_matching import catalogue, service
from crossgen_matching.directory import lookup, read_ahead
from crossgen_matching.directory.models import Employee
from crossgen_matching.eligibility import ProgramRules, conditions, count_meeting, shortfalls
from crossgen_matching.models import MIDDLE_LEVEL, Participant, Program
from crossgen_shared.errors import Forbidden, NotFound
from crossgen_shared.events import Role
from crossgen_shared.unit_of_work import UnitOfWork

ROLES: tuple[Role, Role] = ("learner", "mentor")

log = logging.getLogger(__name__)


def rules_of(program: Program) -> ProgramRules:
    return ProgramRules.model_validate(
        {"enrolment": program.enrolment, **(program.eligibility or {})}
    )


# A change of the program's rules locks its row for update; what reads the rules to enrol people
# takes a key share, so that the change waits for it and it for the change.
_LOCKS: dict[str, bool | dict[str, bool]] = {
    "update": True,
    "key share": {"read": True, "key_share": True},
}


async def program(
    uow: UnitOfWork, program_id: UUID, *, lock: Literal["update", "key share"] | None = None
) -> Program:
    found = await uow.session.get(
        Program, program_id, with_for_update=None if lock is None else _LOCKS[lock]
    )
    if found is None:
        raise NotFound(f"program {program_id} does not exist")
    return found


async def set_rules(uow: UnitOfWork, program_id: UUID, rules: ProgramRules) -> Program:
    """Store the program's rules; automatic_enrolment.py enrols the directory's eligible people."""
    # Locked: self-enrolments, HRIS records and automatic enrolment batches under way finish
    # first, under the old rules.
    chosen = await program(uow, program_id, lock="update")
    chosen.enrolment = rules.enrolment
    chosen.eligibility = rules.model_dump(mode="json", include={"learner", "mentor"})
    return chosen


async def eligible(session: AsyncSession, rules: ProgramRules) -> dict[Role, int]:
    """How many present employees meet each role's rules, counted over groups of those alike in
    what the rules read (eligibility.count_meeting), as plain rows. It runs on the event loop: at
    40,000 employees with hire dates spread over 20 years (nearly as many groups), ORM rows each
    checked whole took 0.70-1.03 s of it, this 0.16-0.24 s (benchmarks/eligibility_bench.py)."""
    today = date.today()
    read = sorted({name for role in ROLES for name, _ in conditions(rules.of(role), today)})
    columns = [getattr(Employee, name) for name in read]
    counted = select(*columns, func.count()).where(*lookup.PRESENT).group_by(*columns)
    groups = (await (await session.connection()).execute(counted)).all()
    return {role: count_meeting(rules.of(role), read, groups, today) for role in ROLES}


async def check_self_enrolment(
    uow: UnitOfWork, program_id: UUID, person_id: str, role: Role
) -> Employee | None:
    """Refuse (403) a person the program's rules for ``role`` do not admit, saying why; else
    their directory row, locked (lookup.enrolling), if the rules needed it."""
    chosen = await program(uow, program_id, lock="key share")
    rules = rules_of(chosen).of(role)
    if rules.admits_anyone:
        return None
    employee = await lookup.enrolling(uow.session, person_id)
    if employee is None or not lookup.is_present(employee):
        where = "is not in" if employee is None else "is no longer active in"
        raise Forbidden(
            f"{person_id} {where} the company directory, and program {chosen.name!r} admits"
            " people by directory attributes"
        )
    if reasons := shortfalls(rules, employee, date.today()):
        raise Forbidden(f"not eligible as {role}: {'; '.join(reasons)}")
    return employee


async def enrol_automatically(uow: UnitOfWork, employee: Employee) -> None:
    """Enrol an employee the directory just wrote in each automatic program they now qualify for
    and are not active in."""
    if not (lookup.is_present(employee) and employee.email):
        return
    today = date.today()
    for candidate in await automatic_programs(uow):
        role = rules_of(candidate).automatic_role(employee, today)
        if role is None:
            continue
        if not await _is_active(uow, candidate.id, employee.employee_number):
            await enrol_from_directory(uow, candidate, employee, role)


async def automatic_programs(uow: UnitOfWork) -> list[Program]:
    """The automatic programs, each with a key share of its row: a PUT of its rules (FOR UPDATE)
    is waited for and then seen, while matching decisions (FOR NO KEY UPDATE) and automatic
    enrolment batches (a key share too) are not. Read once a transaction: the shares hold until it
    ends, so a batch of records asks once (first, intake.reading_ahead)."""
    if _AUTOMATIC not in uow.memo:
        with uow.session.no_autoflush:  # a batch's new rows wait for its end (read_ahead.py)
            found = await uow.session.scalars(
                select(Program)
                .where(Program.enrolment == "automatic")
                .order_by(Program.created_at)
                .with_for_update(read=True, key_share=True)
            )
        uow.memo[_AUTOMATIC] = list(found)
    programs: list[Program] = uow.memo[_AUTOMATIC]
    return programs


_AUTOMATIC = "automatic programs"


_ACTIVE = select(Participant.id).where(  # built once: asked for every HRIS record
    Participant.program_id == bindparam("program_id"),
    Participant.person_id == bindparam("person_id"),
    Participant.status == "active",
)


async def _is_active(uow: UnitOfWork, program_id: UUID, person_id: str) -> bool:
    ahead = read_ahead.of(uow)
    if ahead is not None and person_id in ahead.current:
        return (program_id, person_id) in ahead.active
    found = await uow.session.scalar(_ACTIVE, {"program_id": program_id, "person_id": person_id})
    return found is not None


async def enrol_from_directory(
    uow: UnitOfWork, chosen: Program, employee: Employee, role: Role, *, together: bool = False
) -> None:
    """Enrol on what the directory knows (``together``: the row is left for the caller to write
    with its others). HR systems list skills without how well or how much, so each is at the
    middle level; a person whose list is empty joins all the same and completes their profile.

    Skills outside the program's catalogue are left out rather than refused: the HRIS record must
    go on, and the participant can add the catalogue's names to their profile."""
    assert employee.email is not None  # only people with an email are enrolled
    listed = employee.skills if role == "mentor" else employee.interests
    if left_out := catalogue.outside(listed, chosen.skill_catalogue):
        log.info(
            "%s joins program %s without skills outside its catalogue: %s",
            employee.employee_number,
            chosen.id,
            ", ".join(left_out),
        )
    names = [name for name in listed if name not in left_out]
    # SCIM's preferredLanguage is a tag like "en-GB"; people enrol with "en", and only the same
    # code counts as a shared language.
    languages = sorted({tag.strip().split("-")[0].lower() for tag in employee.languages})
    ahead = read_ahead.of(uow)
    await service.enrol(
        uow,
        program_id=chosen.id,
        person_id=employee.employee_number,
        role=role,
        display_name=employee.display_name or employee.employee_number,
        email=employee.email,
        skills=dict.fromkeys(names, MIDDLE_LEVEL),
        capacity=1,
        profile=service.Profile(languages=languages or ["en"], timezone=employee.timezone or "UTC"),
        employee=employee,
        write_now=not together and (ahead is None or not ahead.together),
    )
