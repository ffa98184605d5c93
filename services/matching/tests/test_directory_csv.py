"""``python -m crossgen_matching import-employees FILE.csv`` against a real PostgreSQL."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Select, make_url, select, text

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import service
from crossgen_matching.directory.models import Employee
from crossgen_shared.events import ParticipantLeft
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

from .test_automatic_enrolment import WAITING_FOR_A_LOCK
from .test_directory_kafka import eventually
from .test_matching_eligibility import hire

FIRST_LOAD = """\
Employee Number,User Name,Display Name,Email,Active,Department,Manager Employee Number,Hire Date,Timezone,Languages,Skills,Interests,Favourite Colour
100,ana@acme.example,Ana Lima,ana@acme.example,true,Sales,,2020-01-06,Europe/Lisbon,pt;en,Negotiation; Key Accounts,TikTok;AI tools,blue
101,ben@acme.example,Ben Okafor,ben@acme.example,yes,Sales,100,2021-03-01,Africa/Lagos,en,tiktok,,
102,,Cleo,not-an-email,true,IT,,2022-02-02,,,,,
,dan@acme.example,Dan,dan@acme.example,true,IT,,,,,,,
103,eve@acme.example,Eve,eve@acme.example,true,IT,100,2019-05-05,Mars/Olympus,,,,
104,ANA@acme.example,Ana Two,ana2@acme.example,true,IT,,,,,,,
105,fay@acme.example,Fay,fay@acme.example,false,HR,,,,,,,
106,gus@acme.example,"Gus, Jr.",gus@acme.example,true,HR,101,2023-07-01,,,,,
"""  # noqa: E501

SECOND_LOAD = """\
employee_number,department,title
100,Sales,Head of Sales
101,Sales,
"""


def run(
    file: Path, matching: Service, tokens: TokenIssuer, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossgen_matching", "import-employees", str(file)],
        env=os.environ
        | tokens.service_env("MATCHING")
        | {"MATCHING_DATABASE_URL": database_url or matching.settings.database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
async def fay_enrolled(matching: Service) -> None:
    """Fay enrolled before the directory knew her; the file says she has left."""
    async with matching.unit_of_work() as uow:
        program = await service.create_program(uow, "Digital")
        await service.enrol(
            uow,
            program_id=program.id,
            person_id="105",
            role="learner",
            display_name="Fay",
            email="fay@acme.example",
            skills={"ai tools": 3},
            capacity=1,
        )
        await uow.commit()


async def test_a_file_with_good_and_bad_rows(
    matching: Service, tokens: TokenIssuer, tmp_path: Path, fay_enrolled: None
) -> None:
    first = tmp_path / "people.csv"
    first.write_text(FIRST_LOAD)
    result = run(first, matching, tokens)

    assert result.returncode == 1 and result.stdout, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "created 4, updated 0, unchanged 0, rejected 4"
    assert lines[1] == "ignored columns: favourite_colour"
    assert lines[2].startswith("line 4: email: value is not a valid email address")
    assert lines[3] == "line 5: employee_number is empty"
    assert lines[4].startswith("line 6: timezone: Value error, 'Mars/Olympus' is not an IANA")
    assert lines[5] == "line 7: userName 'ANA@acme.example' belongs to employee 100"

    async with matching.sessions() as session:
        stored = {e.employee_number: e for e in await session.scalars(select(Employee))}
    assert stored.keys() == {"100", "101", "105", "106"}
    assert stored["101"].manager_employee_number == "100"
    assert stored["100"].languages == ["pt", "en"] and stored["106"].display_name == "Gus, Jr."
    assert stored["100"].skills == ["key accounts", "negotiation"]
    assert stored["100"].interests == ["ai tools", "tiktok"]
    assert (stored["101"].skills, stored["101"].interests) == (["tiktok"], [])
    events = [e.event for e in await outbox(matching.sessions)]
    assert [e.reason for e in events if isinstance(e, ParticipantLeft)] == [
        "is no longer active in the company directory"
    ]

    second = tmp_path / "titles.csv"
    second.write_text(SECOND_LOAD)
    result = run(second, matching, tokens)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["created 0, updated 1, unchanged 1, rejected 0"]
    async with matching.sessions() as session:
        ana = await session.get(Employee, "100")
    assert ana is not None and ana.title == "Head of Sales" and ana.email == "ana@acme.example"


async def test_a_file_without_employee_numbers_is_refused_whole(
    matching: Service, tokens: TokenIssuer, tmp_path: Path
) -> None:
    file = tmp_path / "people.csv"
    file.write_text("name,email\nAna,ana@acme.example\n")
    result = run(file, matching, tokens)
    assert result.returncode == 2 and "no employee_number column" in result.stderr

    result = run(tmp_path / "elsewhere.csv", matching, tokens)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("cannot import: [Errno 2] No such file")


async def test_a_database_that_cannot_be_used_is_named_with_what_to_do(
    matching: Service, tokens: TokenIssuer, tmp_path: Path
) -> None:
    file = tmp_path / "titles.csv"
    file.write_text(SECOND_LOAD)
    url = make_url(matching.settings.database_url).set(database="not_created")

    result = run(file, matching, tokens, database_url=url.render_as_string(hide_password=False))

    assert result.returncode == 1 and result.stdout == ""
    where = url.render_as_string(hide_password=True)
    assert result.stderr.splitlines()[-1] == (
        f'PostgreSQL at {where} cannot be used: database "not_created" does not exist. '
        "MATCHING_DATABASE_URL says where it is and as whom. No row was imported. Importing the "
        "file again is safe: rows already imported come out unchanged."
    )


def many_rows(count: int, first: int = 1000) -> str:
    rows = (f"{n},Person {n},p{n}@acme.example\n" for n in range(first, first + count))
    return "employee_number,display_name,email\n" + "".join(rows)


async def imported_numbers(matching: Service) -> set[str]:
    async with matching.sessions() as session:
        return set(await session.scalars(select(Employee.employee_number)))


async def test_a_line_the_reader_cannot_read_stops_the_import_and_says_how_far_it_got(
    matching: Service, tokens: TokenIssuer, tmp_path: Path
) -> None:
    file = tmp_path / "people.csv"
    huge = "x" * 200_000  # past the CSV reader's field size limit
    file.write_text(many_rows(428) + f'2000,"{huge}",q@acme.example\n' + many_rows(20, 3000))

    result = run(file, matching, tokens)

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-3:] == [
        "cannot import: line 430: field larger than field limit (131072)",
        "Rows up to line 401 were imported: created 400, updated 0, unchanged 0, rejected 0",
        "Importing the file again is safe: rows already imported come out unchanged.",
    ]
    assert await imported_numbers(matching) == {str(n) for n in range(1000, 1400)}


async def test_ctrl_c_stops_the_import_and_says_how_far_it_got(
    matching: Service, tokens: TokenIssuer, tmp_path: Path
) -> None:
    file = tmp_path / "people.csv"
    file.write_text(many_rows(20_000))
    env = os.environ | tokens.service_env("MATCHING")
    importing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crossgen_matching", "import-employees", str(file),
        env=env | {"MATCHING_DATABASE_URL": matching.settings.database_url},
        stderr=subprocess.PIPE,
        # Ctrl-C as a terminal sends it, whatever this run ignores (a background job's SIGINT).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        for _ in range(1200):  # a minute at most, until the first batch is in
            if await imported_numbers(matching):
                break
            await asyncio.sleep(0.05)
        importing.send_signal(signal.SIGINT)
        _, said = await asyncio.wait_for(importing.communicate(), 60)
    finally:
        if importing.returncode is None:
            importing.kill()
    stderr = said.decode()

    assert importing.returncode == 130, stderr
    imported = await imported_numbers(matching)
    assert 200 <= len(imported) < 20_000 and len(imported) % 200 == 0
    assert stderr.splitlines()[-2:] == [
        f"stopped. Rows up to line {len(imported) + 1} were imported: created {len(imported)}, "
        "updated 0, unchanged 0, rejected 0",
        "Importing the file again is safe: rows already imported come out unchanged.",
    ]


async def test_an_import_locks_its_people_in_order_as_a_run_of_automatic_enrolment_does(
    matching: Service, tokens: TokenIssuer, tmp_path: Path
) -> None:
    """A run's batch locks the people it looks at in employee-number order. An import that
    locked them in the file's order would hold 101 while waiting for 100, which the batch holds
    while waiting for 101: a deadlock, and one of the two fails."""
    for number in ("100", "101"):
        await hire(matching, number)
    file = tmp_path / "people.csv"
    file.write_text("employee_number,title\n101,Lead\n100,Head\n")

    def locking(number: str) -> Select[tuple[Employee]]:
        return select(Employee).where(Employee.employee_number == number).with_for_update()

    async with matching.sessions() as session, session.begin():
        await session.execute(locking("100"))
        importing = asyncio.create_task(asyncio.to_thread(run, file, matching, tokens))

        async def import_waits() -> bool:
            async with matching.sessions() as other:
                return importing.done() or bool(await other.scalar(text(WAITING_FOR_A_LOCK)))

        await eventually(import_waits)
        await session.execute(locking("101"))
    result = await importing
    assert result.returncode == 0, result.stderr
    async with matching.sessions() as session:
        rows = await session.execute(select(Employee.employee_number, Employee.title))
    assert {number: title for number, title in rows} == {"100": "Head", "101": "Lead"}
