"""Use cases of the matching service. Each runs inside a unit of work the caller commits."""

from collections.abc import Collection
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crossgen_matching import rules
from crossgen_matching.directory import lookup
from crossgen_matching.models import Pairing, Participant, Program
from crossgen_shared.errors import Conflict, Forbidden, NotFound
from crossgen_shared.events import MatchAccepted, MatchProposed, ParticipantJoined, Role
from crossgen_shared.unit_of_work import UnitOfWork

OPEN_PAIRING = ("proposed", "accepted")


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
    skills: list[str],
    capacity: int,
) -> Participant:
    if await uow.session.get(Program, program_id) is None:
        raise NotFound(f"program {program_id} does not exist")
    await lookup.check_may_enrol(uow.session, person_id)
    participant = Participant(
        program_id=program_id,
        person_id=person_id,
        role=role,
        display_name=display_name,
        email=email,
        skills=sorted(rules.normalise(skills)),
        capacity=capacity if role == "mentor" else 1,
        joined_at=datetime.now(UTC),
    )
    uow.session.add(participant)
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
            skills=tuple(participant.skills),
            joined_at=participant.joined_at,
        )
    )
    return participant


async def match_newcomer(
    uow: UnitOfWork, participant_id: UUID, excluded: Collection[UUID] = ()
) -> Pairing | None:
    """Propose a pairing for a participant who just joined, if a partner is free.

    ``excluded``: people not to propose, e.g. the partner of a pairing that just had to end.
    """
    session = uow.session
    newcomer = await session.get(Participant, participant_id)
    if newcomer is None or newcomer.status != "active":
        return None
    # One matching decision per program at a time, across replicas.
    await session.execute(
        select(Program).where(Program.id == newcomer.program_id).with_for_update()
    )
    load = await _open_pairings_by_participant(uow, newcomer.program_id)
    others = (
        await session.scalars(
            select(Participant)
            .where(
                Participant.program_id == newcomer.program_id,
                Participant.status == "active",
                Participant.role != newcomer.role,
                Participant.id.not_in(excluded),
            )
            .order_by(Participant.joined_at)
        )
    ).all()

    def candidate(p: Participant) -> rules.Candidate:
        return rules.Candidate(p.id, frozenset(p.skills), p.capacity - load.get(p.id, 0))

    if newcomer.role == "learner":
        if load.get(newcomer.id):
            return None
        proposal = rules.propose(candidate(newcomer), [candidate(m) for m in others])
    else:
        # A new mentor takes the first waiting learner they can teach.
        mentor = candidate(newcomer)
        proposal = next(
            (
                found
                for learner in others
                if not load.get(learner.id)
                and (found := rules.propose(candidate(learner), [mentor]))
            ),
            None,
        )
    if proposal is None:
        return None
    by_id = {p.id: p for p in [newcomer, *others]}
    pairing = Pairing(
        program_id=newcomer.program_id,
        learner_id=proposal.learner_id,
        mentor_id=proposal.mentor_id,
        score=proposal.score,
        explanation=list(proposal.explanation),
        proposed_at=datetime.now(UTC),
    )
    session.add(pairing)
    await session.flush()
    learner, mentor_p = by_id[proposal.learner_id], by_id[proposal.mentor_id]
    await uow.emit(
        MatchProposed(
            pairing_id=pairing.id,
            program_id=pairing.program_id,
            learner_id=learner.id,
            mentor_id=mentor_p.id,
            learner_person_id=learner.person_id,
            mentor_person_id=mentor_p.person_id,
            score=pairing.score,
            explanation=proposal.explanation,
            proposed_at=pairing.proposed_at,
        )
    )
    return pairing


async def _open_pairings_by_participant(uow: UnitOfWork, program_id: UUID) -> dict[UUID, int]:
    load: dict[UUID, int] = {}
    for column in (Pairing.learner_id, Pairing.mentor_id):
        rows = await uow.session.execute(
            select(column, func.count())
            .where(Pairing.program_id == program_id, Pairing.status.in_(OPEN_PAIRING))
            .group_by(column)
        )
        for participant_id, count in rows:
            load[participant_id] = load.get(participant_id, 0) + count
    return load


async def accept(uow: UnitOfWork, pairing_id: UUID, person_id: str) -> Pairing:
    """Record one side's acceptance; when both have accepted, the pairing is on."""
    pairing = await uow.session.get(Pairing, pairing_id, with_for_update=True)
    if pairing is None:
        raise NotFound(f"pairing {pairing_id} does not exist")
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
                pairing_id=pairing.id,
                program_id=pairing.program_id,
                learner_id=learner.id,
                mentor_id=mentor.id,
                learner_person_id=learner.person_id,
                mentor_person_id=mentor.person_id,
                accepted_at=datetime.now(UTC),
            )
        )
    return pairing


async def pairings_of(uow: UnitOfWork, person_id: str) -> list[Pairing]:
    mine = select(Participant.id).where(Participant.person_id == person_id)
    rows = await uow.session.scalars(
        select(Pairing)
        .where(Pairing.learner_id.in_(mine) | Pairing.mentor_id.in_(mine))
        .order_by(Pairing.proposed_at)
    )
    return list(rows)


async def pairings_in(uow: UnitOfWork, program_id: UUID) -> list[Pairing]:
    rows = await uow.session.scalars(
        select(Pairing).where(Pairing.program_id == program_id).order_by(Pairing.proposed_at)
    )
    return list(rows)


async def on_participant_joined(event: ParticipantJoined, _: object, uow: UnitOfWork) -> None:
    await match_newcomer(uow, event.participant_id)
