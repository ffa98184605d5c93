"""A program as the optimiser sees it, read from the tables and the company directory.

Optimiser ids are person ids (employee numbers), so the directory's manager links apply as they
are. A person the directory does not know is matched on what they told us at enrolment.

Matching reads the whole program for every decision, so it reads columns, not ORM objects, a few
thousand rows at a time: a whole-program run reads tens of thousands, on the service's event loop.
A decision that withdraws an open proposal loads its ``Pairing`` then.
"""

import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import Select, SQLColumnExpression, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crossgen_matching import optimiser
from crossgen_matching.directory.models import Employee
from crossgen_matching.eligibility import job_level as _job_level
from crossgen_matching.eligibility import years_since as _years_since
from crossgen_matching.models import Pairing, PairRule, Participant, Program
from crossgen_shared.db import a_few_at_a_time, any_of_uuids
from crossgen_shared.time_zones import zone

OPEN_PAIRING = ("proposed", "accepted")
# Never proposed again; an expired proposal went unanswered, as good as declined. A proposal the
# matcher withdrew ("withdrawn") may come back.
CLOSED_PAIRING = ("declined", "ended", "expired")


class Member(NamedTuple):
    """An active participant, as much as matching reads of them."""

    id: UUID
    person_id: str
    role: str
    skills: dict[str, int]
    capacity: int
    languages: Sequence[str]
    timezone: str
    work_start: int
    work_end: int


class Proposal(NamedTuple):
    """An open proposal, as much as the live matching reads of it."""

    id: UUID
    score: float
    explanation: list[str]


class Position(NamedTuple):
    """What matching reads of a person's directory entry."""

    employee_number: str
    department: str | None
    hire_date: date | None
    job_level: str | None
    manager_employee_number: str | None


# Each participant with their directory entry, if the directory knows them.
_MEMBERS = select(
    *(getattr(Participant, name) for name in Member._fields),
    *(getattr(Employee, name) for name in Position._fields),
).outerjoin(Employee, Employee.employee_number == Participant.person_id)
_MANAGER_LINKS = select(Employee.employee_number, Employee.manager_employee_number).where(
    Employee.removed_at.is_(None)
)


@dataclass
class Roster:
    program: optimiser.Program
    participants: dict[str, Member]  # by person id
    people: dict[str, optimiser.Person]  # every active participant, even one left out
    proposals: dict[optimiser.Pair, Proposal] = field(default_factory=dict)  # open, not accepted

    def learner(self, member: Member) -> optimiser.Learner:
        return optimiser.Learner(self.people[member.person_id], member.skills)

    def mentor(self, member: Member, capacity: int) -> optimiser.Mentor:
        return optimiser.Mentor(self.people[member.person_id], member.skills, capacity)

    def last_result(self) -> optimiser.MatchResult:
        """The open proposals, as the run that made them would have returned them."""
        pairings = tuple(
            optimiser.Pairing(pair.learner_id, pair.mentor_id, p.score, tuple(p.explanation))
            for pair, p in sorted(self.proposals.items())
        )
        stats = optimiser.ScoreStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return optimiser.MatchResult(pairings, (), stats, {})


async def load(
    session: AsyncSession,
    program_id: UUID,
    *,
    leaving_out: Participant | None = None,
    forbidden: Collection[optimiser.Pair] = (),
) -> Roster:
    """The program's active participants, its accepted pairings and open proposals.

    ``leaving_out``: a participant to match afresh, left out with their open pairings and the
    partners of those; their pins stay in the program, for the live matching to honour.
    """
    now = datetime.now(UTC)
    rows = await session.execute(
        _MEMBERS.where(
            Participant.program_id == program_id, Participant.status == "active"
        ).order_by(Participant.joined_at)
    )
    members = [_member(row, now) async for some in a_few_at_a_time(rows) for row in some]
    people = [member for member, _ in members]
    by_id = {p.id: p for p in people}
    links = await session.execute(_MANAGER_LINKS)
    org: dict[str, str | None] = {e: m async for some in a_few_at_a_time(links) for e, m in some}
    found = await session.execute(
        select(Pairing.id, Pairing.learner_id, Pairing.mentor_id, Pairing.status).where(
            Pairing.program_id == program_id,
            Pairing.status.in_(OPEN_PAIRING + CLOSED_PAIRING),
        )
    )
    pairings = [p async for some in a_few_at_a_time(found) for p in some]
    # A mentor matched afresh keeps their open pairings: those learners are set aside too.
    aside = {leaving_out.id} if leaving_out else set()
    partners = {p.learner_id for p in pairings if p.mentor_id in aside and p.status in OPEN_PAIRING}
    aside |= partners
    accepted: set[optimiser.Pair] = set()
    ended: set[optimiser.Pair] = set()
    proposed: dict[UUID, optimiser.Pair] = {}
    for pairing in pairings:
        learner, mentor = by_id.get(pairing.learner_id), by_id.get(pairing.mentor_id)
        if learner is None or mentor is None:
            continue  # one of them left; their pairing closed then
        pair = optimiser.Pair(learner.person_id, mentor.person_id)
        if pairing.status in CLOSED_PAIRING:
            ended.add(pair)
        elif aside & {learner.id, mentor.id}:
            continue
        elif pairing.status == "accepted":
            accepted.add(pair)
        else:
            proposed[pairing.id] = pair
    owner_rules: dict[str, set[optimiser.Pair]] = {"pinned": set(), "forbidden": set(forbidden)}
    for rule in await session.execute(
        select(PairRule.kind, PairRule.learner_id, PairRule.mentor_id).where(
            PairRule.program_id == program_id
        )
    ):
        learner, mentor = by_id.get(rule.learner_id), by_id.get(rule.mentor_id)
        if learner is not None and mentor is not None and not partners & {learner.id, mentor.id}:
            owner_rules[rule.kind].add(optimiser.Pair(learner.person_id, mentor.person_id))
    stored = await session.scalar(select(Program.weights).where(Program.id == program_id))
    persons = {member.person_id: person for member, person in members}
    roster = Roster(
        optimiser.Program((), ()),
        {p.person_id: p for p in people},
        persons,
        await _proposals(session, program_id, proposed),
    )
    present = [p for p in people if p.id not in aside]
    roster.program = optimiser.Program(
        learners=tuple(roster.learner(p) for p in present if p.role == "learner"),
        mentors=tuple(roster.mentor(p, p.capacity) for p in present if p.role == "mentor"),
        weights=optimiser.Weights(**stored) if stored else optimiser.Weights(),
        org=org,
        pinned=frozenset(owner_rules["pinned"]),
        forbidden=frozenset(owner_rules["forbidden"]),
        ended=frozenset(ended),
        accepted=frozenset(accepted),
        proposed=frozenset(proposed.values()),
    )
    return roster


async def _proposals(
    session: AsyncSession, program_id: UUID, pairs: dict[UUID, optimiser.Pair]
) -> dict[optimiser.Pair, Proposal]:
    """The open proposals of ``pairs`` (by pairing id)."""
    if not pairs:
        return {}
    found = await session.execute(
        select(Pairing.id, Pairing.score, Pairing.explanation).where(
            Pairing.program_id == program_id, Pairing.status == "proposed"
        )
    )
    return {
        pairs[p.id]: Proposal._make(p)
        async for some in a_few_at_a_time(found)
        for p in some
        if p.id in pairs
    }


class Newcomer(NamedTuple):
    """A participant to match, as ``load`` reads each of the program's, with their open pairings
    (proposed or accepted)."""

    member: Member
    person: optimiser.Person
    open_pairings: int


async def newcomer(session: AsyncSession, participant_id: UUID, now: datetime) -> Newcomer:
    return (await newcomers(session, [participant_id], now))[participant_id]


async def newcomers(
    session: AsyncSession, participant_ids: Collection[UUID], now: datetime
) -> dict[UUID, Newcomer]:
    """Each participant of ``participant_ids``, by id, with their open pairings."""
    found = await session.execute(_NEWCOMERS, {"participant_ids": list(participant_ids)})
    return {row.id: Newcomer(*_member(row[:-1], now), open_pairings=row[-1]) for row in found}


def open_pairings_of(participant_id: SQLColumnExpression[UUID] | UUID) -> Select[int]:
    """How many proposed or accepted pairings the participant is in."""
    return select(func.count()).where(
        Pairing.status.in_(OPEN_PAIRING),
        (Pairing.learner_id == participant_id) | (Pairing.mentor_id == participant_id),
    )


# Built once: every join reads it, under the program's lock.
_NEWCOMERS = _MEMBERS.add_columns(
    open_pairings_of(Participant.id).correlate(Participant).scalar_subquery()
).where(Participant.id == any_of_uuids("participant_ids"))


def _member(row: Sequence[Any], now: datetime) -> tuple[Member, optimiser.Person]:
    member = _sharing_words(Member._make(row[: len(Member._fields)]))
    position = Position._make(row[len(Member._fields) :])
    return member, _person(member, position if position.employee_number else None, now)


def _person(member: Member, employee: Position | None, now: datetime) -> optimiser.Person:
    offset = zone(member.timezone).utcoffset(now)
    hired = employee.hire_date if employee else None
    return optimiser.Person(
        id=member.person_id,
        # Interned as the words of ``_sharing_words`` are.
        department=sys.intern((employee.department if employee else None) or ""),
        languages=_shared_languages(frozenset(member.languages)),
        utc_offset=offset.total_seconds() / 3600 if offset else 0.0,
        work_start=member.work_start,
        work_end=member.work_end,
        tenure_years=_years_since(hired, now.date()) if hired else 0.0,
        job_level=_job_level(employee.job_level if employee else None),
        manager_id=employee.manager_employee_number if employee else None,
    )


def _sharing_words(member: Member) -> Member:
    """``member`` with one copy of each word participants have in common: a program's live
    matching keeps every member, and each row read brings its own role, skill names, languages
    and time zone."""
    return member._replace(
        role=sys.intern(member.role),
        skills={sys.intern(skill): level for skill, level in member.skills.items()},
        languages=tuple(sys.intern(language) for language in member.languages),
        timezone=sys.intern(member.timezone),
    )


@lru_cache(maxsize=1024)
def _shared_languages(languages: frozenset[str]) -> frozenset[str]:
    """The first of the equal sets of languages: a set of one costs 216 bytes, and most
    participants speak one of a few."""
    return languages
