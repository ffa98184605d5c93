"""A switch to automatic enrolment: the admin's request answers at once, and a run in the
background enrols the directory's eligible people, a batch per transaction (the worker itself:
test_matching_loops.py); a batch, an HRIS batch and a self-enrolment wait for each other only
over the same person."""

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select, text, update

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import admission, automatic_enrolment, service
from crossgen_matching.directory import employees, intake
from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.models import AutomaticEnrolment, Participant, Program
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.unit_of_work import UnitOfWork

from .test_directory_kafka import eventually
from .test_matching_admin import admin, events
from .test_matching_eligibility import JUNIOR_DESIGNERS, company, hire
from .test_matching_flow import enrol, program

AUTOMATIC = JUNIOR_DESIGNERS | {"enrolment": "automatic"}


async def next_batch(uow: UnitOfWork) -> bool:
    """The batch the worker runs next, if any is due; whether there was one."""
    program_id = await automatic_enrolment.due(uow)
    if program_id is not None:
        await automatic_enrolment.enrol_batch(uow, program_id)
    return program_id is not None


async def run_batches(matching: Service) -> int:
    """Run batches as the worker does, until there is nothing left to do; how many ran."""
    ran = 0
    while True:
        async with matching.unit_of_work() as uow:
            more = await next_batch(uow)
            await uow.commit()
        if not more:
            return ran
        ran += 1


async def automatic_program(api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer) -> str:
    """The company's directory, and a program just switched to automatic enrolment."""
    await company(matching)
    pid = await program(api, tokens)
    await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=AUTOMATIC)
    return pid


def renaming(number: str, name: str) -> EmployeeRecord:
    """An HRIS record that gives an employee a new name."""
    return EmployeeRecord(
        employee_number=number, source="test", source_timestamp=datetime.now(UTC), display_name=name
    )


async def joined(matching: Service) -> list[tuple[str, str]]:
    return [(e.person_id, e.role) for e in await events(matching, ParticipantJoined)]


async def test_a_switch_answers_at_once_and_the_run_enrols_the_eligible_directory(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    await company(matching)
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "S1", role="mentor")  # enrolled already: left as is
    url = f"/programs/{pid}/automatic-enrolment"
    switched = await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=AUTOMATIC)
    assert switched.status_code == 200, switched.text
    # To look at: D1 and F1; not D2 (no email), S1 (in the program), X1 (left).
    started = switched.json()["automatic_enrolment"]
    assert started | {"started_at": None} == {
        "state": "enrolling", "to_check": 2, "checked": 0, "enrolled": 0,
        "started_at": None, "finished_at": None,
        "failures": 0, "last_error": None, "next_attempt_at": None,
    }  # fmt: skip
    assert (await admin(api, tokens, "GET", url)).json() == started
    assert await joined(matching) == [("S1", "mentor")]

    assert await run_batches(matching) == 1
    done = (await admin(api, tokens, "GET", url)).json()
    assert (done["state"], done["checked"], done["enrolled"]) == ("done", 2, 1)
    assert done["finished_at"] >= done["started_at"]
    assert await joined(matching) == [("S1", "mentor"), ("D1", "mentor")]  # F1 is not eligible
    dana = (await events(matching, ParticipantJoined))[1]
    assert (dana.display_name, dana.email, dana.skills) == ("Dana", "dana@example.com", ())
    async with matching.sessions() as session:
        row = await session.scalar(select(Participant).where(Participant.person_id == "D1"))
    assert row is not None and (row.languages, row.timezone) == (["de"], "Europe/Berlin")

    again = await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=AUTOMATIC)
    assert again.json()["automatic_enrolment"]["to_check"] == 1  # F1
    await run_batches(matching)
    assert (await admin(api, tokens, "GET", url)).json()["enrolled"] == 0
    assert len(await joined(matching)) == 2


async def test_a_run_goes_on_where_its_last_batch_ended_and_stops_at_a_switch_back(
    api: httpx.AsyncClient,
    matching: Service,
    tokens: TokenIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(automatic_enrolment, "BATCH", 1)
    await company(matching)
    await hire(matching, "D3", email="dee@example.com", department="Design", job_level="L2",
               hire_date=date.today().replace(day=1))  # fmt: skip
    pid = await program(api, tokens)
    url = f"/programs/{pid}/automatic-enrolment"
    await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=AUTOMATIC)
    async with matching.unit_of_work() as uow:
        assert await next_batch(uow)
        await uow.commit()
    progress = (await admin(api, tokens, "GET", url)).json()
    assert (progress["state"], progress["to_check"], progress["checked"]) == ("enrolling", 4, 1)
    assert await joined(matching) == [("D1", "mentor")]
    # A batch that never commits (the replica died) leaves no trace: its person is enrolled later.
    async with matching.unit_of_work() as uow:
        assert await next_batch(uow)

    # Back to self-enrolment: the run stops where it is.
    to_self = await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=JUNIOR_DESIGNERS)
    assert to_self.json()["automatic_enrolment"] is None
    stopped = await admin(api, tokens, "GET", url)
    assert stopped.status_code == 404
    assert (
        f'PUT /programs/{pid}/eligibility with "enrolment": "automatic"' in stopped.json()["detail"]
    )
    assert await run_batches(matching) == 0 and await joined(matching) == [("D1", "mentor")]

    # Automatic again: a new run from the first employee, which finds D1 in the program.
    await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=AUTOMATIC)
    assert await run_batches(matching) == 4  # D3, F1, S1 and the empty batch that ends it
    assert await joined(matching) == [("D1", "mentor"), ("D3", "mentor"), ("S1", "learner")]
    done = (await admin(api, tokens, "GET", url)).json()
    assert (done["state"], done["to_check"], done["checked"], done["enrolled"]) == (
        "done", 3, 3, 2,
    )  # fmt: skip
    unknown = "/programs/00000000-0000-0000-0000-000000000000/automatic-enrolment"
    assert (await admin(api, tokens, "GET", unknown)).status_code == 404


async def test_a_batch_waits_for_a_self_enrolment_under_way(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    """A batch writes its participants at its end, all at once: it must not meet one that a
    self-enrolment committed meanwhile. It does not: the enrolment holds the person's directory
    row, and the batch asks who is enrolled once it has locked the people it looks at."""
    pid = await automatic_program(api, matching, tokens)
    async with matching.unit_of_work() as dana:
        await service.enrol(
            dana, program_id=UUID(pid), person_id="D1", role="mentor", display_name="Dana",
            email="dana@example.com", skills={}, capacity=1,
        )  # fmt: skip
        batches = asyncio.create_task(run_batches(matching))

        async def batch_waits() -> bool:
            async with matching.sessions() as session:
                return bool(await session.scalar(text(WAITING_FOR_A_LOCK)))

        await eventually(batch_waits)
        await dana.commit()
    assert await batches == 1
    assert await joined(matching) == [("D1", "mentor"), ("S1", "learner")]


async def test_a_batch_does_not_wait_for_hris_records_of_people_it_does_not_enrol(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    """A batch locks the people it looks at, not the program: an HRIS batch under way about
    someone else (D2 has no email) does not hold up the run, nor the run it."""
    await automatic_program(api, matching, tokens)
    renamed = renaming("D2", "Dee")
    async with matching.unit_of_work() as hris:
        async with intake.reading_ahead(hris, [[renamed]]):
            await employees.record(hris, renamed)
            await asyncio.wait_for(run_batches(matching), timeout=10)
        await hris.commit()
    assert await joined(matching) == [("D1", "mentor"), ("S1", "learner")]


async def test_an_hris_rename_waits_for_a_self_enrolment_under_way_and_reaches_it(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    """An HRIS batch reads ahead who is in a program. Had it read before a self-enrolment
    committed, the participant would keep the name they enrolled with; the enrolment locks the
    person's directory row, so the batch waits and then finds them."""
    await company(matching)
    pid = await program(api, tokens)
    renamed = renaming("D1", "Dana Renamed")

    async def rename() -> None:
        async with matching.unit_of_work() as hris:
            async with intake.reading_ahead(hris, [[renamed]]):
                await employees.record(hris, renamed)
            await hris.commit()

    async with matching.unit_of_work() as dana:
        await service.enrol(
            dana, program_id=UUID(pid), person_id="D1", role="mentor", display_name="Dana",
            email="dana@example.com", skills={}, capacity=1,
        )  # fmt: skip
        hris_batch = asyncio.create_task(rename())

        async def done_or_waiting() -> bool:
            async with matching.sessions() as session:
                waiting = await session.scalar(text(WAITING_FOR_A_LOCK))
                return hris_batch.done() or bool(waiting)

        await eventually(done_or_waiting)
        await dana.commit()
    await hris_batch
    async with matching.sessions() as session:
        name = await session.scalar(
            select(Participant.display_name).where(Participant.person_id == "D1")
        )
    assert name == "Dana Renamed"


WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def test_a_run_whose_batch_fails_says_so_waits_longer_each_time_and_lets_others_go_on(
    api: httpx.AsyncClient,
    matching: Service,
    tokens: TokenIssuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await company(matching)
    broken, other = await program(api, tokens), await program(api, tokens)
    for pid in (broken, other):
        await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=AUTOMATIC)
    url = f"/programs/{broken}/automatic-enrolment"
    real = admission.enrol_from_directory
    trouble: list[Exception] = [ConnectionResetError("the database went away")]

    async def enrol(uow: UnitOfWork, chosen: Program, *args: Any, **kwargs: Any) -> None:
        if str(chosen.id) == broken and trouble:
            raise trouble[0]
        await real(uow, chosen, *args, **kwargs)

    async def round_of_batches() -> None:
        await automatic_enrolment.enrol_due(matching.unit_of_work, interval=1.0)

    async def due_now() -> None:
        async with matching.sessions() as session, session.begin():
            await session.execute(update(AutomaticEnrolment).values(retry_at=func.now()))

    monkeypatch.setattr(admission, "enrol_from_directory", enrol)
    # The database's trouble is the service's, not the run's: the round ends, to come again.
    with pytest.raises(ConnectionResetError):
        await round_of_batches()
    assert (await admin(api, tokens, "GET", url)).json()["failures"] == 0

    trouble[0] = ValueError("a bug in the enrolment")
    with caplog.at_level(logging.ERROR, logger=automatic_enrolment.__name__):
        await round_of_batches()
        before = datetime.now(UTC)
        await round_of_batches()  # not due yet: left alone
    failing = (await admin(api, tokens, "GET", url)).json()
    assert (failing["state"], failing["checked"], failing["failures"]) == ("retrying", 0, 1)
    assert failing["last_error"] == "ValueError: a bug in the enrolment"
    waits = datetime.fromisoformat(failing["next_attempt_at"]) - before
    assert timedelta(seconds=1) < waits <= timedelta(seconds=2)
    [logged] = caplog.records
    assert f"program {broken}: automatic enrolment failed" in logged.getMessage()
    assert f"GET {url} shows the error" in logged.getMessage()
    # The other program's run did not wait behind it.
    others = (await admin(api, tokens, "GET", f"/programs/{other}/automatic-enrolment")).json()
    assert (others["state"], others["enrolled"]) == ("done", 2)

    await due_now()
    await round_of_batches()
    again = (await admin(api, tokens, "GET", url)).json()
    assert (again["state"], again["failures"]) == ("retrying", 2)
    waits = datetime.fromisoformat(again["next_attempt_at"]) - datetime.now(UTC)
    assert timedelta(seconds=2) < waits <= timedelta(seconds=4)

    trouble.clear()  # put right: the next attempt goes on, and the error is gone
    await due_now()
    await round_of_batches()
    done = (await admin(api, tokens, "GET", url)).json()
    assert (done["state"], done["enrolled"], done["failures"]) == ("done", 2, 0)
    assert done["last_error"] is None and done["next_attempt_at"] is None
    assert len(await joined(matching)) == 4


async def test_an_hris_batch_and_a_run_batch_see_each_others_changes(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    """An HRIS batch reads ahead whether its people are in programs. Had it read before a run's
    batch committed their enrolment, it would enrol them again (refused: the record dead-lettered,
    a lost change) and leave their participant with the old name. It locks its people before it
    reads, and the run's batch locks those it looks at before it asks who is enrolled: whichever
    comes second waits, then sees the other's enrolment."""
    await automatic_program(api, matching, tokens)
    renamed = renaming("D1", "Dana Renamed")
    async with matching.unit_of_work() as hris:
        async with intake.reading_ahead(hris, [[renamed]]):
            run = asyncio.create_task(run_batches(matching))

            async def run_done_or_waiting() -> bool:
                async with matching.sessions() as session:
                    return run.done() or bool(await session.scalar(text(WAITING_FOR_A_LOCK)))

            await eventually(run_done_or_waiting)
            await employees.record(hris, renamed)
        await hris.commit()
    await run
    assert await joined(matching) == [("D1", "mentor"), ("S1", "learner")]
    async with matching.sessions() as session:
        name = await session.scalar(
            select(Participant.display_name).where(Participant.person_id == "D1")
        )
    assert name == "Dana Renamed"
