"""What a directory change means for the programs, in the unit of work of the change itself.

A person who leaves leaves every program; their open pairings close, and each partner is matched
again. A person whose place in the organisation changes may now manage their partner (or be
managed by them), which a pairing must never be: that pairing closes and both are matched again.

An accepted pairing ends (PairingEnded); a pairing still proposed is withdrawn (MatchDeclined),
since sessions only ever knew of accepted ones.

A person's new name or email reaches their participants (ParticipantUpdated), so that the other
services address them as the directory does.
"""

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Select, bindparam, exists, or_, select
from sqlalchemy.orm import aliased

from crossgen_matching import service
from crossgen_matching.directory import lookup, read_ahead
from crossgen_matching.directory.models import Employee
from crossgen_matching.models import Pairing, Participant
from crossgen_matching.roster import OPEN_PAIRING
from crossgen_shared.events import (
    MatchDeclined,
    PairingEnded,
    ParticipantLeft,
    ParticipantUpdated,
)
from crossgen_shared.unit_of_work import UnitOfWork


async def concerns_programs(uow: UnitOfWork, person_id: str) -> bool:
    """Whether a change of the person's details or place can matter to a program: they are
    active in one, or someone reports to them (their change moves the chain above others)."""
    ahead = read_ahead.of(uow)
    if ahead is not None and person_id in ahead.current:
        return person_id in ahead.concerned
    return bool(await uow.session.scalar(_CONCERNS_PROGRAMS, {"person_id": person_id}))


# Built once: asked for most HRIS records.
_CONCERNS_PROGRAMS = select(
    exists().where(Participant.person_id == bindparam("person_id"), Participant.status == "active")
    | exists().where(Employee.manager_employee_number == bindparam("person_id"))
)


async def person_left(uow: UnitOfWork, person_id: str, reason: str) -> None:
    now = datetime.now(UTC)
    leaving = await uow.session.scalars(
        select(Participant)
        .where(Participant.person_id == person_id, Participant.status == "active")
        .order_by(Participant.joined_at)
        .with_for_update()
    )
    freed: list[UUID] = []
    for participant in leaving.all():
        participant.status = "left"
        await uow.emit(
            ParticipantLeft(
                participant_id=participant.id,
                program_id=participant.program_id,
                reason=reason,
                left_at=now,
            )
        )
        for pairing, learner, mentor in await _open_pairings(uow, [participant.id]):
            await _close(
                uow, pairing, learner, mentor, participant, f"the {participant.role} {reason}"
            )
            freed.append(mentor.id if participant is learner else learner.id)
    await uow.session.flush()
    for partner in freed:
        await service.match_newcomer(uow, partner)


async def organisation_changed(uow: UnitOfWork, person_id: str) -> None:
    """Close the open pairings of ``person_id`` and those below them that now cross a chain."""
    people = await lookup.organisation_below(uow.session, person_id)
    mine = select(Participant.id).where(
        Participant.person_id.in_(people), Participant.status == "active"
    )
    for pairing, learner, mentor in await _open_pairings(uow, mine):
        if learner.person_id in await lookup.managers_of(uow.session, mentor.person_id):
            manager, report = learner, mentor
        elif mentor.person_id in await lookup.managers_of(uow.session, learner.person_id):
            manager, report = mentor, learner
        else:
            continue
        reason = f"the {manager.role} is now in the {report.role}'s management chain"
        await _close(uow, pairing, learner, mentor, report, reason)
        await uow.session.flush()
        await service.match_newcomer(uow, learner.id, excluded={mentor.id})
        await service.match_newcomer(uow, mentor.id, excluded={learner.id})


async def details_changed(uow: UnitOfWork, employee: Employee, changed: Collection[str]) -> None:
    """Give the person's active participants the name or email the directory just ``changed``;
    a value it cleared stays as the participant has it (they may have told us theirs)."""
    now = datetime.now(UTC)
    participants = await uow.session.scalars(
        select(Participant)
        .where(Participant.person_id == employee.employee_number, Participant.status == "active")
        .order_by(Participant.joined_at)
        .with_for_update()
    )
    for participant in participants.all():
        name = ("display_name" in changed and employee.display_name) or participant.display_name
        email = ("email" in changed and employee.email) or participant.email
        if (name, email) == (participant.display_name, participant.email):
            continue
        participant.display_name, participant.email = name, email
        await uow.emit(
            ParticipantUpdated(
                participant_id=participant.id,
                program_id=participant.program_id,
                display_name=name,
                email=email,
                skills=tuple(sorted(participant.skills)),
                updated_at=now,
            )
        )


async def _open_pairings(
    uow: UnitOfWork, participants: Sequence[UUID] | Select[UUID]
) -> list[tuple[Pairing, Participant, Participant]]:
    learner, mentor = aliased(Participant), aliased(Participant)
    rows = await uow.session.execute(
        select(Pairing, learner, mentor)
        .join(learner, Pairing.learner_id == learner.id)
        .join(mentor, Pairing.mentor_id == mentor.id)
        .where(
            Pairing.status.in_(OPEN_PAIRING),
            or_(Pairing.learner_id.in_(participants), Pairing.mentor_id.in_(participants)),
        )
        .order_by(Pairing.proposed_at)
        .with_for_update(of=Pairing)
    )
    return [(p, lr, mr) for p, lr, mr in rows]


async def _close(
    uow: UnitOfWork,
    pairing: Pairing,
    learner: Participant,
    mentor: Participant,
    because_of: Participant,
    reason: str,
) -> None:
    now = datetime.now(UTC)
    who = service.about_pairing(pairing, learner, mentor)
    if pairing.status == "accepted":
        pairing.status = "ended"
        await uow.emit(PairingEnded(**who, reason=reason, ended_at=now))
    else:
        pairing.status = "declined"
        await uow.emit(
            MatchDeclined(**who, declined_by=because_of.id, reason=reason, declined_at=now)
        )
