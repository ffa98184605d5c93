"""The sessions HTTP API over a real PostgreSQL; emitted events are read from the outbox."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from crossgen_local.tokens import TokenIssuer
from crossgen_sessions.models import Pairing
from crossgen_shared.events import (
    FeedbackSubmitted,
    MatchAccepted,
    SessionCompleted,
    SessionScheduled,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

RATINGS = {
    "knowledge": 5,
    "skills": 4,
    "communication": 5,
    "perspectives": 3,
    "cultural_awareness": 4,
    "learning": 5,
}
UNKNOWN = "00000000-0000-0000-0000-000000000000"


def next_week() -> str:
    return (datetime.now(UTC) + timedelta(days=7)).isoformat()


async def schedule(
    api: httpx.AsyncClient, tokens: TokenIssuer, pairing: MatchAccepted, who: str = "E-100"
) -> Any:
    response = await api.post(
        f"/pairings/{pairing.pairing_id}/sessions",
        json={"starts_at": next_week(), "duration_minutes": 45, "agenda": "Slack huddles"},
        headers=tokens.headers(who, "participant"),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_participant_schedules_a_session(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    session = await schedule(api, tokens, pairing, who="E-200")
    assert session["status"] == "scheduled" and session["agenda"] == "Slack huddles"

    [scheduled] = [e.event for e in await outbox(sessions_service.sessions)]
    assert isinstance(scheduled, SessionScheduled)
    assert str(scheduled.session_id) == session["id"]
    assert scheduled.learner_id == pairing.learner_id and scheduled.mentor_id == pairing.mentor_id
    assert scheduled.program_id == pairing.program_id and scheduled.duration_minutes == 45

    shown = await api.get(
        f"/pairings/{pairing.pairing_id}", headers=tokens.headers("E-100", "participant")
    )
    assert shown.status_code == 200
    assert [s["id"] for s in shown.json()["sessions"]] == [session["id"]]


async def test_scheduling_is_refused_in_the_past_and_in_an_ended_pairing(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    url = f"/pairings/{pairing.pairing_id}/sessions"
    learner = tokens.headers("E-100", "participant")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    past = await api.post(
        url, json={"starts_at": yesterday, "duration_minutes": 30}, headers=learner
    )
    assert past.status_code == 422 and "in the past" in past.json()["detail"]

    async with sessions_service.sessions() as db, db.begin():
        await db.execute(update(Pairing).values(status="ended"))
    ended = await api.post(
        url, json={"starts_at": next_week(), "duration_minutes": 30}, headers=learner
    )
    assert ended.status_code == 409 and "ended" in ended.json()["detail"]
    assert await outbox(sessions_service.sessions) == []


async def test_completing_records_the_session_and_the_callers_feedback(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    session = await schedule(api, tokens, pairing)
    complete = f"/sessions/{session['id']}/complete"
    body = {"held_minutes": 50, "feedback": {"ratings": RATINGS, "comment": "eye-opening"}}
    mentor = tokens.headers("E-200", "participant")

    done = await api.post(complete, json=body, headers=mentor)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["held_minutes"] == 50

    _, completed, feedback = [e.event for e in await outbox(sessions_service.sessions)]
    assert isinstance(completed, SessionCompleted) and completed.held_minutes == 50
    assert completed.learner_id == pairing.learner_id and completed.mentor_id == pairing.mentor_id
    assert isinstance(feedback, FeedbackSubmitted)
    assert feedback.participant_id == pairing.mentor_id
    assert feedback.ratings.perspectives == 3 and feedback.comment == "eye-opening"

    again = await api.post(complete, json=body, headers=tokens.headers("E-100", "participant"))
    assert again.status_code == 409 and "completed" in again.json()["detail"]


async def test_the_other_participant_gives_feedback_once(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    session = await schedule(api, tokens, pairing)
    feedback = f"/sessions/{session['id']}/feedback"
    learner = tokens.headers("E-100", "participant")
    mentor = tokens.headers("E-200", "participant")

    early = await api.post(feedback, json={"ratings": RATINGS}, headers=learner)
    assert early.status_code == 409 and "scheduled" in early.json()["detail"]

    body = {"held_minutes": 30, "feedback": {"ratings": RATINGS}}
    assert (
        await api.post(f"/sessions/{session['id']}/complete", json=body, headers=mentor)
    ).status_code == 200
    given = await api.post(feedback, json={"ratings": RATINGS, "comment": "fun"}, headers=learner)
    assert given.status_code == 201, given.text
    assert given.json()["participant_id"] == str(pairing.learner_id)

    for who in (learner, mentor):
        twice = await api.post(feedback, json={"ratings": RATINGS}, headers=who)
        assert twice.status_code == 409 and "already" in twice.json()["detail"]
    submitted = [
        e.event.participant_id
        for e in await outbox(sessions_service.sessions)
        if isinstance(e.event, FeedbackSubmitted)
    ]
    assert submitted == [pairing.mentor_id, pairing.learner_id]


async def test_participants_see_their_own_pairings_admins_see_any(
    api: httpx.AsyncClient, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    url = f"/pairings/{pairing.pairing_id}"
    for who in ("E-100", "E-200"):
        mine = await api.get("/me/pairings", headers=tokens.headers(who, "participant"))
        assert [p["id"] for p in mine.json()] == [str(pairing.pairing_id)]
    stranger = tokens.headers("E-999", "participant")
    assert (await api.get("/me/pairings", headers=stranger)).json() == []
    assert (await api.get(url, headers=stranger)).status_code == 403
    as_admin = await api.get(url, headers=tokens.headers("hr", "admin"))
    assert as_admin.status_code == 200 and as_admin.json()["sessions"] == []

    unknown = await api.get(f"/pairings/{UNKNOWN}", headers=tokens.headers("hr", "admin"))
    assert unknown.status_code == 404 and "not known to sessions (yet)" in unknown.json()["detail"]


async def test_http_rejects_bad_callers_and_bad_input(
    api: httpx.AsyncClient, sessions_service: Service, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    url = f"/pairings/{pairing.pairing_id}/sessions"
    body = {"starts_at": next_week(), "duration_minutes": 30}
    learner = tokens.headers("E-100", "participant")
    assert (await api.post(url, json=body)).status_code == 401
    bad_token = {"Authorization": "Bearer nonsense"}
    assert (await api.post(url, json=body, headers=bad_token)).status_code == 401
    wrong_role = await api.post(url, json=body, headers=tokens.headers("E-100", "integration"))
    assert wrong_role.status_code == 403
    stranger = await api.post(url, json=body, headers=tokens.headers("E-999", "participant"))
    assert stranger.status_code == 403

    invalid = await api.post(
        url,
        json={"starts_at": "2030-05-01T09:00:00", "duration_minutes": 5, "agenda": 3},
        headers=learner,
    )
    assert invalid.status_code == 422
    fields = {err["loc"][-1] for err in invalid.json()["detail"]}
    assert fields == {"starts_at", "duration_minutes", "agenda"}

    session = await schedule(api, tokens, pairing)
    complete = f"/sessions/{session['id']}/complete"
    bad_rating = {"held_minutes": -1, "feedback": {"ratings": RATINGS | {"skills": 6}}}
    rejected = await api.post(complete, json=bad_rating, headers=learner)
    assert rejected.status_code == 422
    assert {err["loc"][-1] for err in rejected.json()["detail"]} == {"held_minutes", "skills"}
    good = {"held_minutes": 30, "feedback": {"ratings": RATINGS}}
    not_in_it = await api.post(complete, json=good, headers=tokens.headers("E-999", "participant"))
    assert not_in_it.status_code == 403
    missing = await api.post(f"/sessions/{UNKNOWN}/complete", json=good, headers=learner)
    assert missing.status_code == 404
    events = [type(e.event) for e in await outbox(sessions_service.sessions)]
    assert events == [SessionScheduled]
