"""A program's outcomes from its pairings, sessions and ratings: pure functions over rows.

Learners and mentors are reported separately: each side's rows group the pairings by cohort (the
month the pairing opened) and that side's department, month by month. Months and weeks are UTC.
"""

import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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


class Tally:
    """Ratings added up: how many, and their sum for each benefit."""

    def __init__(self) -> None:
        self.count = 0
        self.sums = dict.fromkeys(BENEFITS, 0)

    def add(self, ratings: Mapping[str, int]) -> None:
        self.count += 1
        for benefit in BENEFITS:
            self.sums[benefit] += ratings[benefit]

    def averages(self) -> Averages:
        """Each benefit's mean, to two decimals (None without ratings)."""
        return {
            b: round(total / self.count, 2) if self.count else None
            for b, total in self.sums.items()
        }


Group = tuple[str, str, Role]  # cohort, that side's department, side


def outcomes(facts: ProgramFacts, *, until: datetime) -> list[OutcomeRow]:
    """Month by month from each cohort's first month to ``until``'s, skipping empty months.

    Each pairing, session and rating is looked at once, put in its group's month: a program of
    10,000 pairings has some 100,000 sessions and twice as many ratings.
    """
    last = month_of(until)
    groups: dict[UUID, list[Group]] = {}  # each pairing's group on each side
    # How many of a group's pairings open, and stay active no further than, each month.
    opened: dict[Group, Counter[str]] = defaultdict(Counter)
    closed: dict[Group, Counter[str]] = defaultdict(Counter)
    for pairing in facts.pairings:
        cohort = month_of(pairing.opened_at)
        # Active in a month it has not ended before: up to the month it ended in.
        through = min(month_of(pairing.ended_at), last) if pairing.ended_at else last
        groups[pairing.id] = [(cohort, pairing.department(side), side) for side in SIDES]
        for group in groups[pairing.id]:
            opened[group]  # a group with no active month still reports its sessions and ratings
            if through >= cohort:
                opened[group][cohort] += 1
                closed[group][through] += 1
    held: dict[tuple[Group, str], list[int]] = defaultdict(list)  # minutes of each session
    for session in facts.sessions:
        if session.status == "completed" and session.pairing_id in groups:
            month = month_of(session.at)
            for group in groups[session.pairing_id]:
                held[group, month].append(session.held_minutes)
    rated: dict[tuple[Group, str], Tally] = defaultdict(Tally)
    for rating in facts.ratings:
        if rating.pairing_id in groups:
            group = groups[rating.pairing_id][SIDES.index(rating.side)]
            rated[group, month_of(rating.at)].add(rating.ratings)

    rows = []
    for group in sorted(opened):
        cohort, department, side = group
        previous: Averages | None = None
        active = 0
        for month in months(cohort, last):
            active += opened[group][month]
            minutes = held.get((group, month), [])
            ratings = rated.get((group, month), Tally())
            if active or minutes or ratings.count:
                averages = ratings.averages()
                rows.append(
                    OutcomeRow(
                        cohort=cohort,
                        department=department,
                        side=side,
                        month=month,
                        pairings_active=active,
                        sessions_held=len(minutes),
                        hours=round(sum(minutes) / 60, 2),
                        ratings=ratings.count,
                        averages=averages,
                        change=_change(averages, previous),
                    )
                )
                if ratings.count:
                    previous = averages
            active -= closed[group][month]
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
    tallies = {side: Tally() for side in SIDES}
    for rating in facts.ratings:
        tallies[rating.side].add(rating.ratings)
    return {side: tally.averages() for side, tally in tallies.items()}


def hours_held(facts: ProgramFacts) -> float:
    return round(sum(s.held_minutes for s in facts.sessions if s.status == "completed") / 60, 2)


def month_of(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"  # strftime took 7 µs a call


def months(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (``YYYY-MM``), both included."""
    year, month = map(int, first.split("-"))
    found = []
    while (current := f"{year:04d}-{month:02d}") <= last:
        found.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _change(averages: Averages, previous: Averages | None) -> Averages:
    change: Averages = {}
    for benefit in BENEFITS:
        now, before = averages[benefit], previous[benefit] if previous else None
        change[benefit] = None if now is None or before is None else round(now - before, 2)
    return change


def _cell(value: float | None) -> str | float:
    return "" if value is None else value
