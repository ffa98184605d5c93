"""A program's outcomes over HTTP: the JSON report, its CSV export and the dashboard overview,
from sessions held and rated through the API on a real PostgreSQL."""

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crossgen_local.tokens import TokenIssuer
from crossgen_sessions.at_risk.service import check
from crossgen_sessions.outcomes.report import CSV_COLUMNS, month_of
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared.events import MatchAccepted
from crossgen_shared.service import Service

OpenPairing = Callable[..., Awaitable[MatchAccepted]]
Schedule = Callable[..., Awaitable[Any]]
MoveSession = Callable[[str, datetime], Awaitable[None]]

NOW = datetime.now(UTC)


def ratings(score: int) -> dict[str, int]:
    benefits = ("knowledge", "skills", "communication", "perspectives", "cultural_awareness")
    return dict.fromkeys(benefits, score) | {"learning": 5}


async def test_the_owner_reads_the_programs_outcomes_as_json_and_csv(
    api: httpx.AsyncClient,
    sessions_service: Service,
    settings: SessionsSettings,
    tokens: TokenIssuer,
    owner: Callable[..., dict[str, str]],
    open_pairing: OpenPairing,
    schedule: Schedule,
    move_session: MoveSession,
) -> None:
    met = await open_pairing(
        "E-1", "E-2", accepted_at=NOW - timedelta(days=2), departments=("Finance", "Digital")
    )
    quiet = await open_pairing(
        "E-3", "E-4", program_id=met.program_id, accepted_at=NOW - timedelta(days=40)
    )
    await open_pairing("E-5", "E-6", accepted_at=NOW - timedelta(days=2))  # another program
    learner, mentor = tokens.headers("E-1", "participant"), tokens.headers("E-2", "participant")

    session = await schedule(met, who="E-1", minutes=60)
    done = await api.post(
        f"/sessions/{session['id']}/complete",
        json={"held_minutes": 90, "feedback": {"ratings": ratings(4)}},
        headers=learner,
    )
    assert done.status_code == 200
    rated = await api.post(
        f"/sessions/{session['id']}/feedback", json={"ratings": ratings(2)}, headers=mentor
    )
    assert rated.status_code == 201
    await move_session(session["id"], NOW - timedelta(hours=1))
    await schedule(met, who="E-2")  # upcoming
    await check(sessions_service.unit_of_work, settings.at_risk_policy(), NOW)
    headers = owner(met.program_id)

    report = await api.get(f"/programs/{met.program_id}/outcomes", headers=headers)
    assert report.status_code == 200
    this_month = month_of(NOW)
    rows = {(r["cohort"], r["side"], r["month"]): r for r in report.json()["rows"]}
    learners = rows[month_of(met.accepted_at), "learner", this_month]
    assert (learners["department"], learners["sessions_held"], learners["hours"]) == (
        "Finance",
        1,
        1.5,
    )
    assert learners["ratings"] == 1 and learners["averages"]["knowledge"] == 4.0
    mentors = rows[month_of(met.accepted_at), "mentor", this_month]
    assert mentors["department"] == "Digital"
    assert mentors["averages"]["knowledge"] == 2.0 and mentors["averages"]["learning"] == 5.0
    quiet_cohort = rows[month_of(quiet.accepted_at), "learner", month_of(quiet.accepted_at)]
    assert (quiet_cohort["pairings_active"], quiet_cohort["sessions_held"]) == (1, 0)

    exported = await api.get(f"/programs/{met.program_id}/outcomes.csv", headers=headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in exported.headers["content-disposition"]
    parsed = list(csv.DictReader(io.StringIO(exported.text)))
    assert tuple(parsed[0]) == CSV_COLUMNS
    assert len(parsed) == len(report.json()["rows"])
    [line] = [
        r
        for r in parsed
        if (r["side"], r["month"], r["sessions_held"]) == ("mentor", this_month, "1")
    ]
    assert (line["hours"], line["knowledge"], line["learning"]) == ("1.5", "2.0", "5.0")

    overview = await api.get(f"/programs/{met.program_id}/overview", headers=headers)
    assert overview.status_code == 200
    body = overview.json()
    assert body["pairings"] == {
        "accepted": 2,
        "scheduled": 1,
        "met": 1,
        "rated": 1,
        "active": 2,
        "ended": 0,
        "at_risk": 1,
    }
    assert body["hours_held"] == 1.5
    assert len(body["sessions_per_week"]) == 12
    assert sum(w["held"] for w in body["sessions_per_week"]) == 1
    assert body["benefits"]["learner"]["knowledge"] == 4.0
    assert body["benefits"]["mentor"]["skills"] == 2.0


async def test_a_program_without_pairings_has_an_empty_report(
    api: httpx.AsyncClient, owner: Callable[..., dict[str, str]]
) -> None:
    program_id = "7a1b5e1e-0000-4000-8000-000000000001"
    headers = owner(program_id)
    report = await api.get(f"/programs/{program_id}/outcomes", headers=headers)
    assert report.status_code == 200 and report.json()["rows"] == []
    exported = await api.get(f"/programs/{program_id}/outcomes.csv", headers=headers)
    assert list(csv.reader(io.StringIO(exported.text))) == [list(CSV_COLUMNS)]
    overview = (await api.get(f"/programs/{program_id}/overview", headers=headers)).json()
    assert overview["pairings"]["accepted"] == 0
    assert overview["benefits"]["learner"]["skills"] is None
