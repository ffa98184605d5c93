"""Use cases of the matching service. Each runs inside a unit of work the caller commits."""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from crossgen_matching import catalogue, live_cache, optimiser, roster
from crossgen_matching.directory import lookup
from crossgen_matching.directory.models import Employee
from crossgen_matching.models import Pairing, Participant, Program
from crossgen_shared.db import any_of_uuids
from crossgen_shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from crossgen_shared.events import (
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    ParticipantJoined,
    ParticipantUpdated,
    Role,
)
from crossgen_shared.unit_of_work import UnitOfWork

_PAIRINGS = select(Pairing).where(Pairing.id == any_of_uuids("ids"))
_PARTICIPANTS = select(Participant).where(Participant.id == any_of_uuids("ids"))


@dataclass(frozen=True)
class Profile:
    """What a participant tells matching about themselves beyond their skills."""

    languages: list[str] = field(default_factory=lambda: ["en"])
    timezone: str = "UTC"  # IANA name
    work_start: int = 9  # local hours
    work_end: int = 17
    goals: str = ""


async def create_program(uow: UnitOfWork, name: str) -> Program:
    program = Program(name=name)
    uow.session.add(program)
    await uow.session.flush()
    return program


async def enrol(
    uow: UnitOfWork,
    *,
    program_id: UUID,
    person_id: str,
    role: Role,
    display_name: str,
    email: str,
    skills: Mapping[str, int],
    capacity: int,
    profile: Profile | None = None,
    employee: Employee | None = None,
    write_now: bool = True,
) -> Participant:
    """Enrol a person; ``employee`` is their directory row when the caller holds it.

    ``write_now=False`` leaves the participant's row to be written with the caller's other new
    rows (a batch's, at its end): a conflict then fails the whole batch, not this call.
    """
    program = await uow.session.get(Program, program_id)
    if program is None:
        raise NotFound(f"program {program_id} does not exist")
    _check_skills(program, skills)
    await lookup.check_may_enrol(uow.session, person_id, employee)
    participant = Participant(
        id=uuid4(),  # known before the row is written: the event carries it
        program_id=program_id,
        person_id=person_id,
        role=role,
        display_name=display_name,
        email=email,
        skills=dict(skills),
        capacity=_places(role, capacity),
        **asdict(profile or Profile()),
        joined_at=datetime.now(UTC),
    )
    uow.session.add(participant)
    if write_now:
        try:
            await uow.session.flush()
        except IntegrityError as exc:
            raise Conflict(f"{person_id} is already enrolled in program {program_id}") from exc
    await uow.emit(
        ParticipantJoined(
            participant_id=participant.id,
            program_id=program_id,
            person_id=person_id,
            role=role,
            display_name=display_name,
            email=email,
            skills=tuple(sorted(participant.skills)),
            joined_at=participant.joined_at,
        )
    )
    return participant


def _check_skills(program: Program, skills: Collection[str]) -> None:
    """Refuse (422) skills outside the program's catalogue, each with the name it may have meant."""
    if unknown := catalogue.unknown_skills(skills, program.skill_catalogue):
        raise Unprocessable(
            f"{'; '.join(map(str, unknown))}; the program's skills are listed at"
            f" GET /programs/{program.id}/skills"
        )


def _places(role: str, capacity: int) -> int:
    """A learner has one mentor at a time; a mentor takes up to ``capacity`` learners."""
    return capacity if role == "mentor" else 1


async def participant_of(
    uow: UnitOfWork, program_id: UUID, person_id: str, *, lock: bool = False
) -> Participant:
    """The person's active participant in the program (404 when they are not active in it)."""
    query = select(Participant).where(
        Participant.program_id == program_id,
        Participant.person_id == person_id,
        Participant.status == "active",
    )
    # FOR NO KEY UPDATE: a proposal to them, made under the program's lock, takes only a key
    # share on this row, so it never waits for us while we wait for the program.
    found = await uow.session.scalar(query.with_for_update(key_share=True) if lock else query)
    if found is None:
        raise NotFound(f"{person_id} is not enrolled in program {program_id}")
    return found


async def change_profile(
    uow: UnitOfWork,
    program_id: UUID,
    person_id: str,
    *,
    skills: Mapping[str, int],
    capacity: int,
    profile: Profile,
) -> Participant:
    """A participant completes or changes their profile; one with room is matched on it.

    Their skills must be in the program's catalogue, when it has one (422). Their open pairings
    stay as they are: a mentor's capacity cannot go below them (409).
    """
    participant = await participant_of(uow, program_id, person_id, lock=True)
    # No proposal reaches them between the count and the change.
    await lock_matching(uow, program_id)
    program = await uow.session.get(Program, program_id)
    assert program is not None  # the participant's foreign key
    _check_skills(program, skills)
    capacity = _places(participant.role, capacity)
    held = await open_pairings(uow, participant.id)
    if held > capacity:
        raise Conflict(
            f"capacity {capacity} is below the {held} open pairings (proposed or accepted)"
            " the mentor has"
        )
    participant.skills = dict(skills)
    participant.capacity = capacity
    for name, value in asdict(profile).items():
        setattr(participant, name, value)
    await uow.emit(
        ParticipantUpdated(
            participant_id=participant.id,
            program_id=program_id,
            display_name=participant.display_name,
            email=participant.email,
            skills=tuple(sorted(participant.skills)),
            updated_at=datetime.now(UTC),
        )
    )
    await uow.session.flush()
    if held < capacity:
        await match_newcomer(uow, participant.id)
    return participant


# Built once, with a bound parameter, as every matching decision takes it: building a statement
# and its cache key costs about as much CPU as running it.
_MATCHING_LOCK = (
    select(Program.revision)
    .where(Program.id == bindparam("program_id"))
    .with_for_update(key_share=True)
)


async def lock_matching(uow: UnitOfWork, program_id: UUID) -> int | None:
    """Take the program's matching lock, which every matching decision holds (one at a time per
    program, across replicas, and always before any pairing's row); returns the program's
    revision read under it, None if there is no such program. FOR NO KEY UPDATE: an enrolment's
    key share (its foreign key, automatic enrolment) does not wait for it."""
    return await uow.session.scalar(_MATCHING_LOCK, {"program_id": program_id})


async def open_pairings(uow: UnitOfWork, participant_id: UUID) -> int:
    """How many proposed or accepted pairings the participant is in."""
    return await uow.session.scalar(roster.open_pairings_of(participant_id)) or 0


async def match_newcomer(
    uow: UnitOfWork, participant_id: UUID, excluded: Collection[UUID] = ()
) -> Pairing | None:
    """Propose for a participant who just joined, or whose partner just went, by a local repair
    of the program's current matching; returns their new pairing, if any.

    ``excluded``: people not to propose, e.g. the partner of a pairing that just had to end.
    """
    session = uow.session
    newcomer = await session.get(Participant, participant_id)
    if newcomer is None or newcomer.status != "active":
        return None
    revision = await lock_matching(uow, newcomer.program_id)
    assert revision is not None  # the participant's foreign key
    now = datetime.now(UTC)
    read = await roster.newcomer(session, newcomer.id, now)
    room = newcomer.capacity - read.open_pairings
    if room <= 0:
        return None
    others = (
        await session.scalars(select(Participant.person_id).where(Participant.id.in_(excluded)))
        if excluded
        else ()
    )
    ruled_out = [
        optimiser.Pair(newcomer.person_id, other)
        if newcomer.role == "learner"
        else optimiser.Pair(other, newcomer.person_id)
        for other in others
    ]
    # Only one who just joined leaves the live matching whole: anyone else is matched afresh
    # without their partners, or with pairs ruled out that are no rule of the program.
    whole = not ruled_out and room == newcomer.capacity
    if whole:
        matching = await live_cache.checkout(session, newcomer, revision, read, now)
    else:
        matching = await live_cache.load(session, newcomer, ruled_out)
    made, _ = await repair(uow, matching, room)
    if whole:
        live_cache.settle(matching, {pair: p.id for pair, p in made.items()})
        await live_cache.keep(uow, matching)
    return next((p for p in made.values() if newcomer.id in (p.learner_id, p.mentor_id)), None)


async def repair(
    uow: UnitOfWork, matching: live_cache.Matching, room: int
) -> tuple[dict[optimiser.Pair, Pairing], list[Pairing]]:
    """Take the newcomer of ``matching`` in with ``room`` places: the pairings it proposes, and
    the proposals it withdraws to make way."""
    return await carry_out(uow, matching, matching.join(room))


async def carry_out(
    uow: UnitOfWork, matching: live_cache.Matching, repaired: optimiser.Repair
) -> tuple[dict[optimiser.Pair, Pairing], list[Pairing]]:
    """Write what a repair of ``matching`` did: the pairings it proposes, and the proposals it
    withdraws to make way."""
    withdrawn = await pairings(uow, [matching.proposals.pop(pair) for pair in repaired.withdrawn])
    await withdraw(uow, withdrawn, None, "re-matched")
    made = {
        optimiser.Pair(proposal.learner_id, proposal.mentor_id): await propose(
            uow, matching.program_id, matching.members, proposal
        )
        for proposal in repaired.proposed
    }
    return made, withdrawn


async def propose(
    uow: UnitOfWork,
    program_id: UUID,
    members: Mapping[str, roster.Member],
    proposal: optimiser.Pairing,
) -> Pairing:
    """Propose the optimiser's ``proposal`` between two of the program's ``members``."""
    learner, mentor = members[proposal.learner_id], members[proposal.mentor_id]
    pairing = Pairing(
        id=uuid4(),  # known now: written with the transaction's next flush, with its neighbours
        program_id=program_id,
        learner_id=learner.id,
        mentor_id=mentor.id,
        score=proposal.score,
        explanation=list(proposal.explanation),
        proposed_at=datetime.now(UTC),
    )
    uow.session.add(pairing)
    await uow.emit(
        MatchProposed(
            **about_pairing(pairing, learner, mentor),
            score=pairing.score,
            explanation=proposal.explanation,
            proposed_at=pairing.proposed_at,
        )
    )
    return pairing


class _Side(Protocol):
    """A learner or a mentor, as an event about their pairing names them."""

    @property
    def id(self) -> UUID: ...

    @property
    def person_id(self) -> str: ...


def about_pairing(pairing: Pairing, learner: _Side, mentor: _Side) -> dict[str, Any]:
    """What every event about ``pairing`` says of it first: its ids and both sides'."""
    return {
        "pairing_id": pairing.id,
        "program_id": pairing.program_id,
        "learner_id": learner.id,
        "mentor_id": mentor.id,
        "learner_person_id": learner.person_id,
        "mentor_person_id": mentor.person_id,
    }


async def pairings(uow: UnitOfWork, ids: Sequence[UUID]) -> list[Pairing]:
    """The pairings of ``ids``, in that order, read in one statement."""
    if not ids:
        return []
    by_id = {pairing.id: pairing for pairing in await uow.session.scalars(_PAIRINGS, {"ids": ids})}
    return [by_id[pairing_id] for pairing_id in ids]


async def withdraw(
    uow: UnitOfWork,
    pairings: Sequence[Pairing],
    by: UUID | None,
    reason: str,
    status: str = "withdrawn",
) -> None:
    """Close proposals: ``withdrawn`` by the matcher or ``expired`` unanswered (``by`` None for
    both), or ``declined`` by a person. The sides of all of them are read in one statement: one
    at a time, each read is a statement after a flush (an expiry and a swap close several)."""
    sides = [side for pairing in pairings for side in (pairing.learner_id, pairing.mentor_id)]
    if not sides:
        return
    read = await uow.session.scalars(_PARTICIPANTS, {"ids": sides})
    participant = {p.id: p for p in read}
    for pairing in pairings:
        learner, mentor = participant[pairing.learner_id], participant[pairing.mentor_id]
        pairing.status = status
        await uow.emit(
            MatchDeclined(
                **about_pairing(pairing, learner, mentor),
                declined_by=by,
                reason=reason,
                declined_at=datetime.now(UTC),
            )
        )


async def _locked_pairing(uow: UnitOfWork, pairing_id: UUID) -> Pairing:
    """The pairing, locked after its program: the order every matching decision locks in (a
    change to a pairing also stamps the program's revision), so an answer and a join that
    withdraws the same proposal wait for each other instead of deadlocking."""
    program_id = await uow.session.scalar(
        select(Pairing.program_id).where(Pairing.id == pairing_id)
    )
    if program_id is None:
        raise NotFound(f"pairing {pairing_id} does not exist")
    await lock_matching(uow, program_id)
    pairing = await uow.session.get(Pairing, pairing_id, with_for_update=True)
    assert pairing is not None  # pairings are never deleted
    return pairing


async def accept(uow: UnitOfWork, pairing_id: UUID, person_id: str) -> Pairing:
    """Record one side's acceptance; when both have accepted, the pairing is on."""
    pairing = await _locked_pairing(uow, pairing_id)
    learner = await uow.session.get(Participant, pairing.learner_id)
    mentor = await uow.session.get(Participant, pairing.mentor_id)
    assert learner is not None and mentor is not None  # foreign keys
    if person_id not in (learner.person_id, mentor.person_id):
        raise Forbidden("only the learner or the mentor of a pairing can accept it")
    if pairing.status == "accepted":
        return pairing  # accepting twice is harmless
    if pairing.status != "proposed":
        raise Conflict(f"pairing is {pairing.status}; only a proposed pairing can be accepted")
    if person_id == learner.person_id:
        pairing.learner_accepted = True
    if person_id == mentor.person_id:
        pairing.mentor_accepted = True
    if pairing.learner_accepted and pairing.mentor_accepted:
        pairing.status = "accepted"
        await uow.emit(
            MatchAccepted(
                **about_pairing(pairing, learner, mentor),
                accepted_at=datetime.now(UTC),
                learner_department=await lookup.department_of(uow.session, learner.person_id),
                mentor_department=await lookup.department_of(uow.session, mentor.person_id),
            )
        )
    return pairing


async def decline(uow: UnitOfWork, pairing_id: UUID, person_id: str, reason: str) -> Pairing:
    """One side turns a proposal down: the pair is never proposed again, both are matched anew."""
    pairing = await _locked_pairing(uow, pairing_id)
    learner = await uow.session.get(Participant, pairing.learner_id)
    mentor = await uow.session.get(Participant, pairing.mentor_id)
    assert learner is not None and mentor is not None  # foreign keys
    if person_id not in (learner.person_id, mentor.person_id):
        raise Forbidden("only the learner or the mentor of a pairing can decline it")
    if pairing.status != "proposed":
        raise Conflict(f"pairing is {pairing.status}; only a proposed pairing can be declined")
    by = learner if person_id == learner.person_id else mentor
    await withdraw(uow, [pairing], by.id, reason, status="declined")
    await uow.session.flush()
    for side in (learner, mentor):
        await match_newcomer(uow, side.id)
    return pairing


async def pairings_of(uow: UnitOfWork, person_id: str) -> list[Pairing]:
    mine = select(Participant.id).where(Participant.person_id == person_id)
    rows = await uow.session.scalars(
        select(Pairing)
        .where(Pairing.learner_id.in_(mine) | Pairing.mentor_id.in_(mine))
        .order_by(Pairing.proposed_at)
    )
    return list(rows)


async def pairings_in(uow: UnitOfWork, program_id: UUID, limit: int, offset: int) -> list[Pairing]:
    rows = await uow.session.scalars(
        select(Pairing)
        .where(Pairing.program_id == program_id)
        .order_by(Pairing.proposed_at, Pairing.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows)
