"""A session's life over the HTTP API and a real PostgreSQL; emitted events are read from the
outbox. Who may call what is in test_sessions_access.py."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from crossgen_local.tokens import TokenIssuer
from crossgen_sessions.models import Pairing
from crossgen_shared.events import (
    FeedbackSubmitted,
    MatchAccepted,
    SessionCancelled,
    SessionCompleted,
    SessionScheduled,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

OpenPairing = Callable[..., Awaitable[MatchAccepted]]
Schedule = Callable[..., Awaitable[Any]]
MoveSession = Callable[[str, datetime], Awaitable[None]]

RATINGS = {
    "knowledge": 5,
    "skills": 4,
    "communication": 5,
    "perspectives": 3,
    "cultural_awareness": 4,
    "learning": 5,
}


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def events(service: Service) -> list[Any]:
    return [e.event for e in await outbox(service.sessions)]


async def test_a_participant_schedules_a_session(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    response = await api.post(
        f"/pairings/{pairing.pairing_id}/sessions",
        json={
            "starts_at": in_days(7).isoformat(),
            "duration_minutes": 45,
            "agenda": "Slack huddles",
            "video_link": "https://meet.example.com/abc-defg",
        },
        headers=tokens.headers("E-200", "participant"),
    )
    assert response.status_code == 201, response.text
    session = response.json()
    assert session["status"] == "scheduled" and session["agenda"] == "Slack huddles"
    assert session["video_link"] == "https://meet.example.com/abc-defg"

    [scheduled] = await events(sessions_service)
    assert isinstance(scheduled, SessionScheduled)
    assert str(scheduled.session_id) == session["id"]
    assert scheduled.learner_id == pairing.learner_id and scheduled.mentor_id == pairing.mentor_id
    assert scheduled.program_id == pairing.program_id and scheduled.duration_minutes == 45

    shown = await api.get(
        f"/pairings/{pairing.pairing_id}", headers=tokens.headers("E-100", "participant")
    )
    assert shown.status_code == 200
    assert [s["id"] for s in shown.json()["sessions"]] == [session["id"]]


async def test_scheduling_says_why_it_is_refused(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    url = f"/pairings/{pairing.pairing_id}/sessions"
    learner = tokens.headers("E-100", "participant")

    past = await api.post(
        url, json={"starts_at": in_days(-1).isoformat(), "duration_minutes": 30}, headers=learner
    )
    assert past.status_code == 422 and "in the past" in past.json()["detail"]

    too_late = await api.post(
        url, json={"starts_at": in_days(200).isoformat(), "duration_minutes": 30}, headers=learner
    )
    assert too_late.status_code == 422
    assert "after the pairing's end date" in too_late.json()["detail"]

    invalid = await api.post(
        url,
        json={
            "starts_at": "2030-05-01T09:00:00",
            "duration_minutes": 5,
            "agenda": 3,
            "video_link": "not a link",
        },
        headers=learner,
    )
    assert invalid.status_code == 422
    fields = {err["loc"][-1] for err in invalid.json()["detail"]}
    assert fields == {"starts_at", "duration_minutes", "agenda", "video_link"}

    async with sessions_service.sessions() as db, db.begin():
        await db.execute(update(Pairing).values(status="ended"))
    ended = await api.post(
        url, json={"starts_at": in_days(7).isoformat(), "duration_minutes": 30}, headers=learner
    )
    assert ended.status_code == 409 and "ended" in ended.json()["detail"]
    assert await events(sessions_service) == []


async def test_nobody_is_in_two_sessions_at_once_across_their_pairings(
    api: httpx.AsyncClient,
    tokens: TokenIssuer,
    open_pairing: OpenPairing,
    schedule: Schedule,
) -> None:
    first = await open_pairing("E-100", "E-200")
    mentor_elsewhere = await open_pairing("E-300", "E-200")
    strangers = await open_pairing("E-500", "E-600")
    nine = in_days(3).replace(hour=9, minute=0, second=0, microsecond=0)
    taken = await schedule(first, starts_at=nine, minutes=60)

    clash = await api.post(
        f"/pairings/{mentor_elsewhere.pairing_id}/sessions",
        json={"starts_at": (nine + timedelta(minutes=30)).isoformat(), "duration_minutes": 60},
        headers=tokens.headers("E-300", "participant"),
    )
    assert clash.status_code == 409
    assert clash.json()["detail"].startswith("E-200 already has a session from")

    await schedule(mentor_elsewhere, who="E-300", starts_at=nine + timedelta(hours=1))
    await schedule(strangers, who="E-500", starts_at=nine)

    cancelled = await api.post(
        f"/sessions/{taken['id']}/cancel",
        json={"reason": "sick"},
        headers=tokens.headers("E-100", "participant"),
    )
    assert cancelled.status_code == 200
    await schedule(mentor_elsewhere, who="E-300", starts_at=nine - timedelta(minutes=15))


async def test_two_bookings_of_one_person_at_once_cannot_both_win(
    api: httpx.AsyncClient, tokens: TokenIssuer, open_pairing: OpenPairing
) -> None:
    mentor_of_two = [await open_pairing(f"E-{n}", "E-200") for n in (1, 2, 3, 4)]
    nine = in_days(5).replace(hour=9, minute=0, second=0, microsecond=0)

    async def book(pairing: MatchAccepted) -> int:
        response = await api.post(
            f"/pairings/{pairing.pairing_id}/sessions",
            json={"starts_at": nine.isoformat(), "duration_minutes": 60},
            headers=tokens.headers(pairing.learner_person_id, "participant"),
        )
        return response.status_code

    outcomes = await asyncio.gather(*(book(p) for p in mentor_of_two))
    assert sorted(outcomes) == [201, 409, 409, 409]


async def test_rescheduling_moves_the_session_and_announces_the_new_time(
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    pairing: MatchAccepted,
    schedule: Schedule,
) -> None:
    nine = in_days(3).replace(hour=9, minute=0, second=0, microsecond=0)
    session = await schedule(pairing, starts_at=nine, minutes=60)
    other = await schedule(pairing, starts_at=nine + timedelta(days=1), minutes=60)
    url = f"/sessions/{session['id']}/reschedule"
    mentor = tokens.headers("E-200", "participant")

    # overlapping its own old slot is fine: it moves
    moved = await api.post(
        url, json={"starts_at": (nine + timedelta(minutes=30)).isoformat()}, headers=mentor
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["duration_minutes"] == 60
    assert datetime.fromisoformat(moved.json()["starts_at"]) == nine + timedelta(minutes=30)

    onto_other = await api.post(
        url, json={"starts_at": other["starts_at"], "duration_minutes": 30}, headers=mentor
    )
    assert onto_other.status_code == 409 and "already has a session" in onto_other.json()["detail"]
    past = await api.post(url, json={"starts_at": in_days(-1).isoformat()}, headers=mentor)
    assert past.status_code == 422 and "in the past" in past.json()["detail"]

    announced = [e for e in await events(sessions_service) if str(e.session_id) == session["id"]]
    assert [type(e) for e in announced] == [SessionScheduled, SessionScheduled]
    assert announced[-1].starts_at == nine + timedelta(minutes=30)


async def test_a_participant_cancels_saying_why(
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    pairing: MatchAccepted,
    schedule: Schedule,
) -> None:
    session = await schedule(pairing)
    url = f"/sessions/{session['id']}/cancel"
    mentor = tokens.headers("E-200", "participant")

    assert (await api.post(url, json={"reason": ""}, headers=mentor)).status_code == 422
    done = await api.post(url, json={"reason": "travelling that week"}, headers=mentor)
    assert done.status_code == 200
    assert done.json()["status"] == "cancelled"
    assert done.json()["cancelled_by"] == str(pairing.mentor_id)
    assert done.json()["cancellation_reason"] == "travelling that week"

    _, cancelled = await events(sessions_service)
    assert isinstance(cancelled, SessionCancelled)
    assert (cancelled.cancelled_by, cancelled.reason) == (pairing.mentor_id, "travelling that week")

    again = await api.post(url, json={"reason": "twice"}, headers=mentor)
    assert again.status_code == 409 and "session is cancelled" in again.json()["detail"]
    moved = await api.post(
        f"/sessions/{session['id']}/reschedule",
        json={"starts_at": in_days(9).isoformat()},
        headers=mentor,
    )
    assert moved.status_code == 409


async def test_a_held_session_is_announced_and_then_rated_by_both(
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    pairing: MatchAccepted,
    schedule: Schedule,
) -> None:
    session = await schedule(pairing)
    learner = tokens.headers("E-100", "participant")
    mentor = tokens.headers("E-200", "participant")
    feedback = f"/sessions/{session['id']}/feedback"

    early = await api.post(feedback, json={"ratings": RATINGS}, headers=learner)
    assert early.status_code == 409
    assert early.json()["detail"] == "session is scheduled; feedback is given on a held session"

    held = await api.post(
        f"/sessions/{session['id']}/held", json={"held_minutes": 40}, headers=mentor
    )
    assert held.status_code == 200
    assert (held.json()["status"], held.json()["held_minutes"]) == ("completed", 40)
    for who in (learner, mentor):
        given = await api.post(feedback, json={"ratings": RATINGS}, headers=who)
        assert given.status_code == 201

    kinds = [type(e) for e in await events(sessions_service)]
    assert kinds == [SessionScheduled, SessionCompleted, FeedbackSubmitted, FeedbackSubmitted]
    twice = await api.post(
        f"/sessions/{session['id']}/held", json={"held_minutes": 40}, headers=mentor
    )
    assert twice.status_code == 409


async def test_a_no_show_is_recorded_once_the_session_has_started(
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    pairing: MatchAccepted,
    schedule: Schedule,
    move_session: MoveSession,
) -> None:
    first, second = await schedule(pairing), await schedule(pairing, starts_at=in_days(8))
    learner = tokens.headers("E-100", "participant")

    early = await api.post(f"/sessions/{first['id']}/no-show", json={}, headers=learner)
    assert early.status_code == 422 and "once it has started" in early.json()["detail"]

    await move_session(first["id"], in_days(-1))
    await move_session(second["id"], in_days(-2))
    missed = await api.post(f"/sessions/{first['id']}/no-show", json={}, headers=learner)
    assert missed.status_code == 200
    assert (missed.json()["status"], missed.json()["absent"]) == ("no_show", "mentor")
    own = await api.post(
        f"/sessions/{second['id']}/no-show", json={"absent": "learner"}, headers=learner
    )
    assert own.json()["absent"] == "learner"

    rate = await api.post(
        f"/sessions/{first['id']}/feedback", json={"ratings": RATINGS}, headers=learner
    )
    assert rate.status_code == 409 and "session is no_show" in rate.json()["detail"]
    hold = await api.post(
        f"/sessions/{first['id']}/held", json={"held_minutes": 30}, headers=learner
    )
    assert hold.status_code == 409


async def test_completing_records_the_session_and_the_callers_feedback(
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    pairing: MatchAccepted,
    schedule: Schedule,
) -> None:
    session = await schedule(pairing)
    complete = f"/sessions/{session['id']}/complete"
    body = {"held_minutes": 50, "feedback": {"ratings": RATINGS, "comment": "eye-opening"}}
    mentor = tokens.headers("E-200", "participant")

    done = await api.post(complete, json=body, headers=mentor)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["held_minutes"] == 50

    _, completed, feedback = await events(sessions_service)
    assert isinstance(completed, SessionCompleted) and completed.held_minutes == 50
    assert isinstance(feedback, FeedbackSubmitted)
    assert feedback.participant_id == pairing.mentor_id
    assert feedback.ratings.perspectives == 3 and feedback.comment == "eye-opening"

    again = await api.post(complete, json=body, headers=tokens.headers("E-100", "participant"))
    assert again.status_code == 409 and "completed" in again.json()["detail"]
    given = await api.post(
        f"/sessions/{session['id']}/feedback",
        json={"ratings": RATINGS},
        headers=tokens.headers("E-200", "participant"),
    )
    assert given.status_code == 409 and "already" in given.json()["detail"]


async def test_ratings_are_one_to_five_on_each_of_the_six_benefits(
    api: httpx.AsyncClient, tokens: TokenIssuer, pairing: MatchAccepted, schedule: Schedule
) -> None:
    session = await schedule(pairing)
    learner = tokens.headers("E-100", "participant")
    bad = {"held_minutes": -1, "feedback": {"ratings": RATINGS | {"skills": 6, "learning": 0}}}
    rejected = await api.post(f"/sessions/{session['id']}/complete", json=bad, headers=learner)
    assert rejected.status_code == 422
    assert {e["loc"][-1] for e in rejected.json()["detail"]} == {
        "held_minutes",
        "skills",
        "learning",
    }
    missing = {k: v for k, v in RATINGS.items() if k != "perspectives"}
    incomplete = await api.post(
        f"/sessions/{session['id']}/complete",
        json={"held_minutes": 30, "feedback": {"ratings": missing}},
        headers=learner,
    )
    assert incomplete.status_code == 422
    assert [e["loc"][-1] for e in incomplete.json()["detail"]] == ["perspectives"]


async def test_the_pair_finishes_early_or_extends_with_the_end_date(
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    pairing: MatchAccepted,
    schedule: Schedule,
) -> None:
    url = f"/pairings/{pairing.pairing_id}/end-date"
    learner = tokens.headers("E-100", "participant")
    extended = await api.put(
        url, json={"ends_on": in_days(400).date().isoformat()}, headers=learner
    )
    assert extended.status_code == 200
    assert extended.json()["ends_on"] == in_days(400).date().isoformat()
    await schedule(pairing, starts_at=in_days(300))

    soon, later = await schedule(pairing, starts_at=in_days(2)), await schedule(pairing)
    finish_on = in_days(3).date()
    early = await api.put(url, json={"ends_on": finish_on.isoformat()}, headers=learner)
    assert early.status_code == 200
    history = await api.get(f"/pairings/{pairing.pairing_id}", headers=learner)
    assert [s["status"] for s in history.json()["sessions"]] == [
        "scheduled",
        "cancelled",
        "cancelled",
    ]
    assert history.json()["sessions"][0]["id"] == soon["id"]
    assert history.json()["sessions"][1]["id"] == later["id"]
    cancelled = [e for e in await events(sessions_service) if isinstance(e, SessionCancelled)]
    assert {c.reason for c in cancelled} == {f"the pairing now ends on {finish_on.isoformat()}"}
    assert {c.cancelled_by for c in cancelled} == {pairing.learner_id}

    past = await api.put(url, json={"ends_on": in_days(-1).date().isoformat()}, headers=learner)
    assert past.status_code == 422 and "in the past" in past.json()["detail"]


async def test_unknown_pairings_and_sessions_are_404_with_a_reason(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    learner = tokens.headers("E-100", "participant")
    pairing = await api.get(f"/pairings/{unknown}", headers=learner)
    assert pairing.status_code == 404 and "not known to sessions (yet)" in pairing.json()["detail"]
    body = {"held_minutes": 30, "feedback": {"ratings": RATINGS}}
    session = await api.post(f"/sessions/{unknown}/complete", json=body, headers=learner)
    assert session.status_code == 404 and session.json()["detail"].endswith("does not exist")


async def test_text_the_database_refuses_is_a_422_and_writes_nothing(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    response = await api.post(
        f"/pairings/{pairing.pairing_id}/sessions",
        json={"starts_at": in_days(7).isoformat(), "duration_minutes": 45, "agenda": "a\x00b"},
        headers=tokens.headers("E-100", "participant"),
    )
    assert response.status_code == 422, response.text  # was a 500
    assert "data refused" in response.json()["detail"]
    assert await events(sessions_service) == []
