"""What a batch of HRIS records will ask of the directory, read at once when the batch begins.

The Kafka intake applies up to a hundred records in one transaction, and each record asked the
database the same four things: the employee's row (locked), who holds their userName, whether a
change of theirs can matter to a program, and whether they are already in each automatic
program. Read for the whole batch at its start, that is two statements a batch, not four a
record: the rows, which the ORM loads and locks, and the three other answers in one.

A batch of more than one source record also writes its new rows together: they go to the database
at its end (or at the first query that needs them), not one flush a record. A conflict there fails
the batch, which is then redone one record at a time, where each row is written at once and a
conflict is named.

An answer holds until the batch itself changes what it says. A person's row is the session's own
object, which the batch's writes keep current; a userName moves as the records move it. What a
person's programs and reports are is forgotten once a record of theirs is applied, or once a
record names them as manager: the next question about them asks the database, as every question
does outside a batch.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import String, any_, bindparam, cast, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY

from crossgen_matching.directory import lookup
from crossgen_matching.directory.models import Employee
from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.models import Participant
from crossgen_shared.unit_of_work import UnitOfWork

_KEY = "directory read-ahead"


@dataclass
class ReadAhead:
    employees: dict[str, Employee | None]  # by number, locked; None: not in the directory
    owners: dict[str, str | None]  # the number holding each userName asked about (lower case)
    current: set[str]  # numbers whose answers below still hold
    concerned: set[str]  # of those: active in a program, or someone's manager
    active: set[tuple[UUID, str]]  # their active participations: (program id, number)
    together: bool = False  # new rows are written at the batch's end, not one by one

    def forget(self, number: str | None) -> None:
        """What the programs and reports of ``number`` are: the batch may have changed it."""
        self.current.discard(number or "")

    def moved(self, employee: Employee) -> None:
        """``employee`` was written: the userName they hold now is theirs, no other is."""
        number = employee.employee_number
        for name in [name for name, owner in self.owners.items() if owner == number]:
            self.owners[name] = None
        if employee.user_name and employee.removed_at is None:
            self.owners[employee.user_name.lower()] = number


def of(uow: UnitOfWork) -> ReadAhead | None:
    """The batch's read-ahead, if the unit of work is a batch's."""
    found: ReadAhead | None = uow.memo.get(_KEY)
    return found


async def read(uow: UnitOfWork, records: Iterable[EmployeeRecord], *, together: bool) -> None:
    """Read what ``records`` will ask, for the rest of the unit of work; ``together``: they
    come from more than one source record, and their new rows are written together."""
    records = list(records)
    numbers = sorted({r.employee_number for r in records if r.employee_number})
    names = sorted({r.user_name.lower() for r in records if r.user_name})
    session = uow.session
    rows = await session.scalars(lookup.LOCKED_IN_ORDER, {"numbers": numbers})
    employees: dict[str, Employee | None] = dict.fromkeys(numbers)
    employees.update((row.employee_number, row) for row in rows)
    owners: dict[str, str | None] = dict.fromkeys(names)
    active: set[tuple[UUID, str]] = set()
    managers: set[str] = set()
    for kind, key, number in await session.execute(_ANSWERS, {"numbers": numbers, "names": names}):
        if kind == _OWNER:
            owners[key] = number
        elif kind == _ACTIVE:
            active.add((UUID(key), number))
        else:
            managers.add(number)
    concerned = {number for _, number in active} | managers
    uow.memo[_KEY] = ReadAhead(employees, owners, set(numbers), concerned, active, together)


_NUMBERS = bindparam("numbers", type_=ARRAY(String))
# One statement for the three other answers, each row tagged with the answer it belongs to:
# (owner, userName, number), (active, program id, number), (manager, -, number).
_OWNER, _ACTIVE, _MANAGER = "owner", "active", "manager"
_ANSWERS = union_all(
    select(literal(_OWNER), func.lower(Employee.user_name), Employee.employee_number).where(
        func.lower(Employee.user_name) == any_(bindparam("names", type_=ARRAY(String))),
        Employee.removed_at.is_(None),
    ),
    select(literal(_ACTIVE), cast(Participant.program_id, String), Participant.person_id).where(
        Participant.person_id == any_(_NUMBERS), Participant.status == "active"
    ),
    select(literal(_MANAGER), literal(""), Employee.manager_employee_number)
    .where(Employee.manager_employee_number == any_(_NUMBERS))
    .distinct(),
)
