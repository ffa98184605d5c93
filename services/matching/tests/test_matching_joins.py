"""The participant-joined consumer's batches (joins.py): the joins of a batch propose exactly what
the same joins one at a time do, taking the program's lock once rather than once each."""

import random
from typing import Any
from uuid import UUID

import pytest
from aiokafka.structs import ConsumerRecord

from crossgen_matching import service
from crossgen_shared import topics
from crossgen_shared.events import ParticipantJoined, Role
from crossgen_shared.service import Service
from crossgen_shared.testing import consumer_record, outbox

from .test_matching_live_cache import SKILLS, directory, enrol, join, new_program, proposals


async def joined_records(matching: Service, ids: list[UUID]) -> list[ConsumerRecord[Any, Any]]:
    """The participant-joined events enrolment emitted for ``ids``, as the consumer reads them."""
    found = {
        envelope.event.participant_id: (envelope.event, envelope.id)
        for envelope in await outbox(matching.sessions)
        if isinstance(envelope.event, ParticipantJoined)
    }
    return [
        consumer_record(found[i][0], offset, event_id=found[i][1]) for offset, i in enumerate(ids)
    ]


async def enrol_people(
    matching: Service, program_id: UUID, people: list[tuple[str, Role, dict[str, int], int]]
) -> list[UUID]:
    return [await enrol(matching, program_id, *person) for person in people]


def sixty_people() -> list[tuple[str, Role, dict[str, int], int]]:
    """People of the directory, learners and mentors of varied skills and places, in a fixed
    order."""
    rng = random.Random(1)
    people: list[tuple[str, Role, dict[str, int], int]] = []
    for i in rng.sample(range(60), 60):
        role: Role = "mentor" if rng.random() < 0.5 else "learner"
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS[:3], rng.randint(1, 2))}
        people.append((f"E{i}", role, skills, rng.randint(1, 2)))
    return people


@pytest.fixture
def locks(monkeypatch: pytest.MonkeyPatch) -> list[UUID]:
    """The programs whose matching lock was taken, one entry a time."""
    taken: list[UUID] = []
    lock = service.lock_matching

    async def counted(uow: Any, program_id: UUID) -> int | None:
        taken.append(program_id)
        return await lock(uow, program_id)

    monkeypatch.setattr(service, "lock_matching", counted)
    return taken


@pytest.mark.parametrize("size", [7, 60])
@pytest.mark.parametrize("enrolled_first", [False, True], ids=["as-they-come", "enrolled-first"])
async def test_a_batch_of_joins_proposes_what_the_joins_one_at_a_time_do(
    matching: Service, locks: list[UUID], size: int, enrolled_first: bool
) -> None:
    """As they come, a batch's people are enrolled just before it, as the HRIS intake enrols
    them. Enrolled first, the first join reads everyone as waiting: later newcomers of the batch
    are partnered before their own join, which then matches them the usual way."""
    await directory(matching, 60)
    people = sixty_people()
    one_by_one, batched = await new_program(matching), await new_program(matching)
    joins = next(c for c in matching.consumers if c.topic == topics.PARTICIPANTS)
    waves = [people] if enrolled_first else chunks(people, size)
    for wave in waves:
        for participant in await enrol_people(matching, one_by_one, wave):
            await join(matching, participant)
    for wave in waves:
        for batch in chunks(await enrol_people(matching, batched, wave), size):
            await joins.handle(await joined_records(matching, batch))

    made = await proposals(matching, batched)
    assert made == await proposals(matching, one_by_one)
    assert locks.count(batched) < locks.count(one_by_one) == len(people)
    await matching.engine.dispose()


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
