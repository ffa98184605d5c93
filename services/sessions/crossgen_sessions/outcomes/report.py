"""A program's outcomes from its pairings, sessions and ratings: pure functions over rows.

Learners and mentors are reported separately: each side's rows group the pairings by cohort (the
month the pairing opened) and that side's department, month by month. Months and weeks are UTC.
"""

import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import fmean
from uuid import UUID

from defusedcsv import csv

from crossgen_shared.events import Benefit, Role

# Where a side is reported whose department its pairing's events did not name: none in the HRIS,
# or a pairing accepted before the events named departments.
UNKNOWN_DEPARTMENT = "unknown"
SIDES: tuple[Role, ...] = ("learner", "mentor")
BENEFITS: tuple[str, ...] = tuple(benefit.value for benefit in Benefit)

Averages = dict[str, float | None]


@dataclass(frozen=True)
class PairingFacts:
    id: UUID
    opened_at: datetime
    ended_at: datetime | None
    learner_department: str = UNKNOWN_DEPARTMENT
    mentor_department: str = UNKNOWN_DEPARTMENT

    def department(self, side: Role) -> str:
        return self.learner_department if side == "learner" else self.mentor_department

    def active_between(self, start: datetime, end: datetime) -> bool:
        return self.opened_at < end and (self.ended_at is None or self.ended_at >= start)


@dataclass(frozen=True)
class SessionFacts:
    pairing_id: UUID
    status: str
    at: datetime  # when it was held; for any other status, its planned start
    held_minutes: int = 0


@dataclass(frozen=True)
class RatingFacts:
    pairing_id: UUID
    side: Role
    at: datetime  # when the rated session was held
    ratings: Mapping[str, int]


@dataclass(frozen=True)
class ProgramFacts:
    pairings: Sequence[PairingFacts]
    sessions: Sequence[SessionFacts]
    ratings: Sequence[RatingFacts]


@dataclass(frozen=True)
class OutcomeRow:
    """One side of one cohort and department, in one month."""

    cohort: str
    department: str
    side: Role
    month: str
    pairings_active: int
    sessions_held: int
    hours: float
    ratings: int
    averages: Averages
    change: Averages  # against this group's previous month with ratings


def outcomes(facts: ProgramFacts, *, until: datetime) -> list[OutcomeRow]:
    """Month by month from each cohort's first month to ``until``'s, skipping empty months."""
    held: dict[tuple[UUID, str], list[SessionFacts]] = defaultdict(list)
    for session in facts.sessions:
        if session.status == "completed":
            held[session.pairing_id, month_of(session.at)].append(session)
    rated: dict[tuple[UUID, Role, str], list[Mapping[str, int]]] = defaultdict(list)
    for rating in facts.ratings:
        rated[rating.pairing_id, rating.side, month_of(rating.at)].append(rating.ratings)
    groups: dict[tuple[str, str, Role], list[PairingFacts]] = defaultdict(list)
    for pairing in facts.pairings:
        for side in SIDES:
            groups[month_of(pairing.opened_at), pairing.department(side), side].append(pairing)

    rows = []
    for (cohort, department, side), members in sorted(groups.items()):
        previous: Averages | None = None
        for month in months(cohort, month_of(until)):
            start, end = month_bounds(month)
            sessions = [s for p in members for s in held.get((p.id, month), ())]
            ratings = [r for p in members for r in rated.get((p.id, side, month), ())]
            active = sum(p.active_between(start, end) for p in members)
            if not (active or sessions or ratings):
                continue
            averages = _averages(ratings)
            rows.append(
                OutcomeRow(
                    cohort=cohort,
                    department=department,
                    side=side,
                    month=month,
                    pairings_active=active,
                    sessions_held=len(sessions),
                    hours=round(sum(s.held_minutes for s in sessions) / 60, 2),
                    ratings=len(ratings),
                    averages=averages,
                    change=_change(averages, previous),
                )
            )
            if ratings:
                previous = averages
    return rows


CSV_COLUMNS = (
    "cohort",
    "department",
    "side",
    "month",
    "pairings_active",
    "sessions_held",
    "hours",
    "ratings",
    *BENEFITS,
    *(f"{benefit}_change" for benefit in BENEFITS),
)


def as_csv(rows: Iterable[OutcomeRow]) -> str:
    """The rows for a spreadsheet: one line each, an empty cell where there is no rating. The
    departments come from the HRIS: one a spreadsheet would run as a formula (``=``, ``+``,
    ``-``, ``@`` …) is written as text, after a ``'``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.cohort,
                row.department,
                row.side,
                row.month,
                row.pairings_active,
                row.sessions_held,
                row.hours,
                row.ratings,
                *(_cell(row.averages[b]) for b in BENEFITS),
                *(_cell(row.change[b]) for b in BENEFITS),
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class Funnel:
    """How far the program's pairings got, and where they stand."""

    accepted: int
    scheduled: int  # at least one session planned
    met: int  # at least one session held
    rated: int  # at least one rating given
    active: int
    ended: int
    at_risk: int


def funnel(facts: ProgramFacts, *, at_risk: int) -> Funnel:
    scheduled = {s.pairing_id for s in facts.sessions}
    met = {s.pairing_id for s in facts.sessions if s.status == "completed"}
    ended = sum(p.ended_at is not None for p in facts.pairings)
    return Funnel(
        accepted=len(facts.pairings),
        scheduled=len(scheduled),
        met=len(met),
        rated=len({r.pairing_id for r in facts.ratings}),
        active=len(facts.pairings) - ended,
        ended=ended,
        at_risk=at_risk,
    )


@dataclass(frozen=True)
class Week:
    week: str  # ISO week, e.g. 2030-W18
    starts_on: date
    held: int
    no_shows: int


def sessions_per_week(facts: ProgramFacts, *, until: datetime, weeks: int = 12) -> list[Week]:
    """The last ``weeks`` ISO weeks up to ``until``'s, oldest first."""
    today = until.astimezone(UTC).date()
    first = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    counts: dict[tuple[date, str], int] = defaultdict(int)
    for session in facts.sessions:
        day = session.at.astimezone(UTC).date()
        counts[day - timedelta(days=day.weekday()), session.status] += 1
    mondays = [first + timedelta(weeks=n) for n in range(weeks)]
    return [
        Week(
            week=f"{monday.isocalendar().year}-W{monday.isocalendar().week:02d}",
            starts_on=monday,
            held=counts[monday, "completed"],
            no_shows=counts[monday, "no_show"],
        )
        for monday in mondays
    ]


def benefit_profile(facts: ProgramFacts) -> dict[Role, Averages]:
    """Each side's average rating of each benefit over the whole program."""
    return {side: _averages([r.ratings for r in facts.ratings if r.side == side]) for side in SIDES}


def hours_held(facts: ProgramFacts) -> float:
    return round(sum(s.held_minutes for s in facts.sessions if s.status == "completed") / 60, 2)


def month_of(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m}"


def months(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (``YYYY-MM``), both included."""
    year, month = map(int, first.split("-"))
    found = []
    while (current := f"{year:04d}-{month:02d}") <= last:
        found.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def month_bounds(month: str) -> tuple[datetime, datetime]:
    year, number = map(int, month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if number == 12 else start.replace(month=number + 1)
    return start, end


def _averages(ratings: Sequence[Mapping[str, int]]) -> Averages:
    return {
        benefit: round(fmean(r[benefit] for r in ratings), 2) if ratings else None
        for benefit in BENEFITS
    }


def _change(averages: Averages, previous: Averages | None) -> Averages:
    change: Averages = {}
    for benefit in BENEFITS:
        now, before = averages[benefit], previous[benefit] if previous else None
        change[benefit] = None if now is None or before is None else round(now - before, 2)
    return change


def _cell(value: float | None) -> str | float:
    return "" if value is None else value
