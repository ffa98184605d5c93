"""The live matching kept between joins (live_cache.py): the same proposals as loading afresh,
forgotten whenever something a decision reads changes, and never kept from a rollback."""

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import Update, select, update
from sqlalchemy.orm import aliased

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import live_cache, service
from crossgen_matching.directory.models import Employee
from crossgen_matching.models import Pairing, Participant, Program
from crossgen_shared.events import Role
from crossgen_shared.service import Service

from .test_matching_admin import admin

SKILLS = ("tiktok", "ai tools", "figma", "excel", "notion", "canva")
DEPARTMENTS = ("Design", "Sales", "Finance")


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[UUID]:
    """The programs whose live matching was read afresh, one entry a load."""
    read: list[UUID] = []
    fresh = live_cache.load

    async def counted(session: Any, newcomer: Participant, *args: Any) -> live_cache.Matching:
        read.append(newcomer.program_id)
        return await fresh(session, newcomer, *args)

    monkeypatch.setattr(live_cache, "load", counted)
    return read


def employee(number: str, manager: str | None, rng: random.Random) -> Employee:
    return Employee(
        employee_number=number,
        department=rng.choice(DEPARTMENTS),
        hire_date=date(rng.randint(1990, 2024), rng.randint(1, 12), 1),
        job_level=f"L{rng.randint(1, 9)}",
        manager_employee_number=manager,
        source="test",
        source_timestamp=datetime.now(UTC),
    )


async def directory(matching: Service, size: int) -> None:
    """``size`` employees E0.. in a tree (E1..E3 report to E0, E4..E7 to E1, ...)."""
    rng = random.Random(7)
    async with matching.unit_of_work() as uow:
        uow.session.add_all(
            employee(f"E{i}", f"E{(i - 1) // 4}" if i else None, rng) for i in range(size)
        )
        await uow.commit()


async def hire(matching: Service, number: str, manager: str | None) -> None:
    async with matching.unit_of_work() as uow:
        uow.session.add(employee(number, manager, random.Random(number)))
        await uow.commit()


async def new_program(matching: Service) -> UUID:
    async with matching.unit_of_work() as uow:
        program = await service.create_program(uow, "Digital")
        await uow.commit()
        return program.id


async def enrol(
    matching: Service,
    program_id: UUID,
    person: str,
    role: Role,
    skills: dict[str, int],
    places: int = 1,
) -> UUID:
    async with matching.unit_of_work() as uow:
        participant = await service.enrol(
            uow,
            program_id=program_id,
            person_id=person,
            role=role,
            display_name=person,
            email=f"{person.lower()}@example.com",
            skills=skills,
            capacity=places,
        )
        await uow.commit()
        return participant.id


async def join(matching: Service, participant_id: UUID) -> None:
    async with matching.unit_of_work() as uow:
        await service.match_newcomer(uow, participant_id)
        await uow.commit()


async def proposals(matching: Service, program_id: UUID) -> list[tuple[Any, ...]]:
    """Every pairing of the program, in the order proposed, by the people in it."""
    learner, mentor = aliased(Participant), aliased(Participant)
    async with matching.sessions() as session:
        rows = await session.execute(
            select(
                learner.person_id,
                mentor.person_id,
                Pairing.status,
                Pairing.score,
                Pairing.explanation,
            )
            .join(learner, Pairing.learner_id == learner.id)
            .join(mentor, Pairing.mentor_id == mentor.id)
            .where(Pairing.program_id == program_id)
            .order_by(Pairing.proposed_at, learner.person_id)
        )
        return [tuple(row) for row in rows]


async def revision(matching: Service, program_id: UUID) -> int:
    async with matching.sessions() as session:
        found = await session.scalar(select(Program.revision).where(Program.id == program_id))
        assert found is not None
        return found


async def enrol_everyone(
    matching: Service, program_id: UUID, before_each_join: Callable[[], None]
) -> None:
    """Sixty people of the directory, learners and mentors of varied skills, in a fixed order,
    each enrolled and then matched, as the participant-joined consumer does."""
    rng = random.Random(1)
    for i in rng.sample(range(60), 60):
        role: Role = "mentor" if rng.random() < 0.5 else "learner"
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS[:3], rng.randint(1, 2))}
        participant = await enrol(matching, program_id, f"E{i}", role, skills, rng.randint(1, 2))
        before_each_join()
        await join(matching, participant)


async def test_joins_through_the_kept_matching_propose_what_loading_afresh_does(
    matching: Service, loads: list[UUID]
) -> None:
    await directory(matching, 60)
    kept, fresh = await new_program(matching), await new_program(matching)
    await enrol_everyone(matching, kept, lambda: None)
    await enrol_everyone(matching, fresh, live_cache._kept.clear)
    made = await proposals(matching, kept)
    assert made == await proposals(matching, fresh)
    assert any(status == "withdrawn" for _, _, status, _, _ in made)  # swaps happened
    assert loads.count(kept) == 1  # the first join; every other one took the kept matching
    assert loads.count(fresh) == 60
    await matching.engine.dispose()


async def moves(matching: Service, program_id: UUID, change: Awaitable[Any]) -> bool:
    """Whether ``change`` moves the program's revision."""
    before = await revision(matching, program_id)
    await change
    return await revision(matching, program_id) != before


async def changed(matching: Service, statement: Update) -> None:
    async with matching.unit_of_work() as uow:
        await uow.session.execute(statement)
        await uow.commit()


async def directory_change(matching: Service, person: str, **values: str) -> None:
    await changed(
        matching, update(Employee).where(Employee.employee_number == person).values(**values)
    )


async def participant_change(matching: Service, participant: UUID, **values: Any) -> None:
    await changed(
        matching, update(Participant).where(Participant.id == participant).values(**values)
    )


async def test_what_a_decision_reads_moves_the_revision(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    await directory(matching, 20)
    pid = await new_program(matching)
    mentor = await enrol(matching, pid, "E4", "mentor", {"tiktok": 4})
    # A participant's insert does not: their own join takes them in.
    assert not await moves(matching, pid, enrol(matching, pid, "E5", "learner", {"tiktok": 3}))
    async with matching.sessions() as session:
        learner = await session.scalar(select(Participant.id).where(Participant.person_id == "E5"))
    assert learner is not None
    assert await moves(matching, pid, join(matching, learner))  # proposed
    # A new name or email (the directory's, say) does not: no decision reads them.
    new_name = participant_change(matching, mentor, display_name="Eve", email="eve@example.com")
    assert not await moves(matching, pid, new_name)
    assert await moves(matching, pid, participant_change(matching, mentor, capacity=2))
    url = f"/programs/{pid}"
    pair = {"learner_id": str(learner), "mentor_id": str(mentor)}
    assert await moves(matching, pid, admin(api, tokens, "POST", f"{url}/pins", json=pair))
    async with matching.sessions() as session:
        pairing = await session.scalar(select(Pairing.id).where(Pairing.program_id == pid))
    accept = f"/pairings/{pairing}/accept"
    await api.post(accept, headers=tokens.headers("E5", "participant"))
    both = api.post(accept, headers=tokens.headers("E4", "participant"))
    assert await moves(matching, pid, both)
    weights = {"skills": 1.0, "cross_department": 0.0, "cross_generation": 0.0}
    weights |= {"working_hours": 0.0, "full_tenure_gap": 10.0, "full_level_gap": 3.0}
    assert await moves(matching, pid, admin(api, tokens, "PUT", f"{url}/weights", json=weights))
    assert await moves(matching, pid, directory_change(matching, "E5", department="Legal"))
    # Not a participant's department; but anyone's manager is the org chart's.
    assert not await moves(matching, pid, directory_change(matching, "E9", department="Legal"))
    assert await moves(
        matching, pid, directory_change(matching, "E9", manager_employee_number="E3")
    )
    # A hire moves it only when someone already reports to them: the chart gains a link above.
    assert not await moves(matching, pid, hire(matching, "E90", "E0"))
    assert await moves(
        matching, pid, directory_change(matching, "E9", manager_employee_number="E91")
    )
    assert await moves(matching, pid, hire(matching, "E91", "E0"))
    await matching.engine.dispose()


async def test_a_run_of_changes_moves_the_revision_once_and_a_change_after_a_keep_again(
    matching: Service,
) -> None:
    """A transaction that writes thousands of pairings (a published run) moved the revision at
    each, and PostgreSQL walks every version of the program's row the transaction made to find
    the last: quadratic. Only a revision a live matching is kept at needs moving past."""
    pid = await new_program(matching)
    learner = await enrol(matching, pid, "L1", "learner", {"tiktok": 3})
    mentor = await enrol(matching, pid, "M1", "mentor", {"tiktok": 4}, places=3)
    now_at = select(Program.revision).where(Program.id == pid)

    def proposal() -> Pairing:
        return Pairing(
            program_id=pid, learner_id=learner, mentor_id=mentor, score=1.0, explanation=[]
        )

    async with matching.unit_of_work() as uow:
        session = uow.session
        before = await session.scalar(now_at)
        first = proposal()
        session.add(first)
        await session.flush()
        moved = await session.scalar(now_at)
        assert moved != before
        session.add(proposal())
        first.status = "withdrawn"
        await session.flush()
        assert await session.scalar(now_at) == moved  # nothing can be kept at ``moved``
        kept = await session.scalar(live_cache._NEXT_REVISION, {"program_id": pid})
        session.add(proposal())
        await session.flush()
        assert await session.scalar(now_at) not in (moved, kept)
        await uow.commit()
    after = await revision(matching, pid)
    # The next transaction's change moves it again.
    async with matching.unit_of_work() as uow:
        uow.session.add(proposal())
        await uow.commit()
    assert await revision(matching, pid) != after
    await matching.engine.dispose()


async def test_a_pair_forbidden_after_a_kept_join_is_honoured_at_the_next(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer, loads: list[UUID]
) -> None:
    pid = await new_program(matching)
    strong = await enrol(matching, pid, "M1", "mentor", {"tiktok": 5}, places=2)
    await enrol(matching, pid, "M2", "mentor", {"tiktok": 1})
    await join(matching, await enrol(matching, pid, "L1", "learner", {"tiktok": 3}))
    second = await enrol(matching, pid, "L2", "learner", {"tiktok": 3})
    pair = {"learner_id": str(second), "mentor_id": str(strong)}
    assert (await admin(api, tokens, "POST", f"/programs/{pid}/forbidden", json=pair)).is_success
    await join(matching, second)
    assert [(lr, mr) for lr, mr, *_ in await proposals(matching, pid)] == [
        ("L1", "M1"),
        ("L2", "M2"),
    ]
    assert loads == [pid, pid]
    await matching.engine.dispose()


async def test_a_join_that_rolls_back_keeps_nothing(matching: Service, loads: list[UUID]) -> None:
    pid = await new_program(matching)
    await enrol(matching, pid, "M1", "mentor", {"tiktok": 5})
    await enrol(matching, pid, "M2", "mentor", {"tiktok": 1})
    await join(matching, await enrol(matching, pid, "L1", "learner", {"tiktok": 3}))
    # A mentor who joins inside a savepoint that rolls back, nobody waiting for them: the join
    # writes nothing, yet the kept matching would have them.
    async with matching.unit_of_work() as uow:
        savepoint = await uow.session.begin_nested()
        participant = await service.enrol(
            uow,
            program_id=pid,
            person_id="M3",
            role="mentor",
            display_name="M3",
            email="m3@example.com",
            skills={"tiktok": 5},
            capacity=1,
        )
        await service.match_newcomer(uow, participant.id)
        await savepoint.rollback()
        await uow.commit()
    await join(matching, await enrol(matching, pid, "L2", "learner", {"tiktok": 3}))
    # A join that takes the kept matching and then rolls back.
    third = await enrol(matching, pid, "L3", "learner", {"tiktok": 3})
    async with matching.unit_of_work() as uow:
        await service.match_newcomer(uow, third)
    await join(matching, third)
    assert loads == [pid] * 3  # L1's; L2's, as M3's entry named a state that never was; L3's
    assert [(lr, mr, st) for lr, mr, st, *_ in await proposals(matching, pid)] == [
        ("L1", "M1", "proposed"),
        ("L2", "M2", "proposed"),
    ]
    await matching.engine.dispose()
