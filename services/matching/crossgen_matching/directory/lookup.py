"""Reading the directory: who is in it, who may enrol, who manages whom."""

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from crossgen_matching.directory.models import Employee
from crossgen_shared.errors import Conflict

MAX_CHAIN = 50  # management levels walked; stops a cycle in bad data from looping forever


def is_present(employee: Employee) -> bool:
    """Still with the company: active, and not deleted at the source."""
    return employee.active and employee.removed_at is None


# is_present, as a query's conditions.
PRESENT = (Employee.active.is_(True), Employee.removed_at.is_(None))

# The rows of the employees ``numbers`` names, locked in employee-number order whatever order they
# come in, as every transaction that locks several at once does (a batch of HRIS records, of a
# CSV import, of automatic enrolment): no two wait for each other in a circle. Built once.
LOCKED_IN_ORDER = (
    select(Employee)
    .where(Employee.employee_number == any_(bindparam("numbers", type_=ARRAY(String))))
    .order_by(Employee.employee_number)
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def check_may_enrol(
    session: AsyncSession, person_id: str, known: Employee | None = None
) -> None:
    """Refuse a person the directory knows to have left; a person it does not know may enrol.
    ``known``: their row, when the caller holds it (it may not be written yet)."""
    known = known or await enrolling(session, person_id)
    if known is not None and not is_present(known):
        raise Conflict(f"{person_id} is not an active employee in the company directory")


async def enrolling(session: AsyncSession, person_id: str) -> Employee | None:
    """The directory row of a person about to be enrolled, locked till the enrolment commits (as
    an automatic enrolment batch locks the people it looks at): an HRIS batch about them or such
    a batch waits for it, and then finds them enrolled."""
    return await session.get(Employee, person_id, with_for_update={"key_share": True})


async def owner_of_user_name(session: AsyncSession, user_name: str) -> str | None:
    """The employee number holding ``user_name`` (any case) among those not deleted."""
    return await session.scalar(_USER_NAME_OWNER, {"user_name": user_name.lower()})


_USER_NAME_OWNER = select(Employee.employee_number).where(  # built once: asked for every record
    func.lower(Employee.user_name) == bindparam("user_name"), Employee.removed_at.is_(None)
)


async def by_external_id(session: AsyncSession, external_id: str) -> str | None:
    return await session.scalar(
        select(Employee.employee_number)
        .where(Employee.external_id == external_id)
        .order_by(Employee.removed_at.is_not(None), Employee.employee_number)
        .limit(1)
    )


async def managers_of(session: AsyncSession, employee_number: str) -> list[str]:
    """The management chain above a person, nearest first."""
    chain: list[str] = []
    current = await session.get(Employee, employee_number)
    while current is not None and len(chain) < MAX_CHAIN:
        manager = current.manager_employee_number
        if not manager or manager == employee_number or manager in chain:
            break
        chain.append(manager)
        current = await session.get(Employee, manager)
    return chain


async def organisation_below(session: AsyncSession, employee_number: str) -> list[str]:
    """A person and everyone who reports to them, directly or not."""
    tree = (
        select(Employee.employee_number)
        .where(Employee.employee_number == employee_number)
        .cte("tree", recursive=True)
    )
    tree = tree.union(
        select(Employee.employee_number).where(
            Employee.manager_employee_number == tree.c.employee_number
        )
    )
    return list((await session.scalars(select(tree.c.employee_number))).all())


async def department_of(session: AsyncSession, person_id: str) -> str | None:
    """The person's department, if the directory knows them."""
    return await session.scalar(
        select(Employee.department).where(Employee.employee_number == person_id)
    )
