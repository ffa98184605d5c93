"""Erasing people a grace period after they left the company, on a real PostgreSQL."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crossgen_matching.directory.models import Employee
from crossgen_matching.erasure import ERASED_EMAIL, ERASED_NAME, ERASURE, erase_due
from crossgen_matching.models import Participant, Program
from crossgen_matching.settings import MatchingSettings
from crossgen_shared.events import ParticipantErased
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

NOW = datetime(2030, 6, 1, tzinfo=UTC)
GRACE = timedelta(days=30)


def employee(number: str, *, removed: int | None = None, inactive: int | None = None) -> Employee:
    """An employee deleted ``removed`` days ago, or made inactive ``inactive`` days ago."""
    return Employee(
        employee_number=number,
        external_id=f"x-{number}",
        user_name=f"{number}@corp.example",
        display_name=f"Person {number}",
        email=f"{number}@corp.example",
        active=inactive is None,
        department="IT",
        title="Engineer",
        location="Berlin",
        languages=["de"],
        hire_date=NOW.date() - timedelta(days=900),
        source="scim",
        source_timestamp=NOW - timedelta(days=100),
        removed_at=None if removed is None else NOW - timedelta(days=removed),
        updated_at=NOW - timedelta(days=inactive or removed or 100),
    )


def participant(program: Program, person: str, status: str = "left") -> Participant:
    return Participant(
        program_id=program.id,
        person_id=person,
        role="mentor",
        display_name=f"Person {person}",
        email=f"{person}@corp.example",
        skills=["excel"],
        status=status,
        joined_at=NOW - timedelta(days=200),
    )


@pytest.fixture
async def people(matching: Service) -> dict[str, list[uuid.UUID]]:
    """Participants by person: two enrolments of E-1 (gone 31 days), E-2 (gone 5 days), E-3
    (inactive 40 days) and E-4 (still here)."""
    programs = [Program(id=uuid.uuid4(), name="A"), Program(id=uuid.uuid4(), name="B")]
    async with matching.unit_of_work() as uow:
        uow.session.add_all(programs)
        await uow.session.flush()  # no relationship tells the flush that programs come first
        uow.session.add_all(
            [
                employee("E-1", removed=31),
                employee("E-2", removed=5),
                employee("E-3", inactive=40),
                employee("E-4"),
            ]
        )
        enrolled = {
            "E-1": [participant(programs[0], "E-1"), participant(programs[1], "E-1")],
            "E-2": [participant(programs[0], "E-2")],
            "E-3": [participant(programs[0], "E-3")],
            "E-4": [participant(programs[0], "E-4", status="active")],
        }
        uow.session.add_all([p for ps in enrolled.values() for p in ps])
        await uow.commit()
        return {person: [p.id for p in ps] for person, ps in enrolled.items()}


async def erase(matching: Service, now: datetime = NOW) -> int:
    async with matching.unit_of_work() as uow:
        erased = await erase_due(uow, now, GRACE)
        await uow.commit()
    return erased


async def erasures(matching: Service) -> list[ParticipantErased]:
    return [
        e.event for e in await outbox(matching.sessions) if isinstance(e.event, ParticipantErased)
    ]


async def test_replicas_and_reruns_announce_each_participant_once(
    matching: Service, people: dict[str, list[uuid.UUID]]
) -> None:
    counts = await asyncio.gather(*(erase(matching) for _ in range(3)))
    assert sum(counts) == 2  # E-1 and E-3; E-2 is still in their grace period
    assert await erase(matching) == 0

    events = await erasures(matching)
    assert sorted((e.person_id, e.participant_id) for e in events) == sorted(
        [("E-1", p) for p in people["E-1"]] + [("E-3", p) for p in people["E-3"]]
    )
    assert {e.erased_at for e in events} == {NOW}


async def test_personal_data_is_overwritten_and_aggregates_kept(
    matching: Service, people: dict[str, list[uuid.UUID]]
) -> None:
    await erase(matching)

    async with matching.sessions() as db:
        gone = await db.get(Employee, "E-1")
        waiting = await db.get(Employee, "E-2")
        enrolments = {p.id: p for p in await db.scalars(select(Participant))}
    assert gone is not None and waiting is not None
    assert (gone.user_name, gone.display_name, gone.email, gone.title, gone.location) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert gone.languages == [] and gone.source == ERASURE
    assert (gone.department, gone.hire_date, gone.removed_at) == (
        "IT",
        NOW.date() - timedelta(days=900),
        NOW - timedelta(days=31),
    )
    for erased in people["E-1"] + people["E-3"]:
        p = enrolments[erased]
        assert (p.display_name, p.email, p.status) == (ERASED_NAME, ERASED_EMAIL, "erased")
        assert (p.role, p.skills, p.joined_at) == ("mentor", ["excel"], NOW - timedelta(days=200))
    assert waiting.display_name == "Person E-2"
    assert enrolments[people["E-2"][0]].email == "E-2@corp.example"
    assert enrolments[people["E-4"][0]].status == "active"


async def test_the_grace_period_is_respected(
    matching: Service, people: dict[str, list[uuid.UUID]]
) -> None:
    await erase(matching)
    assert await erase(matching, NOW + timedelta(days=24)) == 0
    assert await erase(matching, NOW + timedelta(days=26)) == 1

    events = await erasures(matching)
    assert [e.participant_id for e in events if e.person_id == "E-2"] == people["E-2"]


def test_the_grace_period_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATCHING_DATABASE_URL", "postgresql+asyncpg://db/matching")
    monkeypatch.setenv("MATCHING_JWT_ISSUER", "issuer")
    monkeypatch.setenv("MATCHING_JWT_PUBLIC_KEY", "key")
    assert MatchingSettings().erasure_grace == timedelta(days=30)
    monkeypatch.setenv("MATCHING_ERASURE_GRACE_DAYS", "7")
    assert MatchingSettings().erasure_grace == timedelta(days=7)
