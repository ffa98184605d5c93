"""ParticipantErased in sessions: the person's text and employee number go, the numbers stay."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from crossgen_local.tokens import TokenIssuer
from crossgen_sessions.models import Feedback, Goal, Pairing, Session
from crossgen_sessions.pairings.consumers import ERASED
from crossgen_shared.events import MatchAccepted, ParticipantErased
from crossgen_shared.service import Service

Deliver = Callable[..., Awaitable[None]]
OpenPairing = Callable[..., Awaitable[MatchAccepted]]
Schedule = Callable[..., Awaitable[Any]]
MoveSession = Callable[[str, datetime], Awaitable[None]]

RATINGS = dict.fromkeys(
    ("knowledge", "skills", "communication", "perspectives", "cultural_awareness", "learning"), 4
)


async def test_erasure_forgets_the_persons_text_and_keeps_the_outcomes(
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    owner: Callable[..., dict[str, str]],
    deliver: Deliver,
    open_pairing: OpenPairing,
    schedule: Schedule,
    move_session: MoveSession,
) -> None:
    now = datetime.now(UTC)
    met = await open_pairing("E-1", "E-2", accepted_at=now - timedelta(days=2))
    other = await open_pairing("E-3", "E-4", program_id=met.program_id)
    learner, mentor = tokens.headers("E-1", "participant"), tokens.headers("E-2", "participant")
    held = await schedule(met, who="E-1")
    done = await api.post(
        f"/sessions/{held['id']}/complete",
        json={"held_minutes": 90, "feedback": {"ratings": RATINGS, "comment": "Linda: my boss"}},
        headers=learner,
    )
    assert done.status_code == 200, done.text
    rated = await api.post(
        f"/sessions/{held['id']}/feedback",
        json={"ratings": RATINGS, "comment": "Great mentee"},
        headers=mentor,
    )
    assert rated.status_code == 201, rated.text
    await move_session(held["id"], now - timedelta(hours=1))
    dropped = await schedule(met, who="E-2", starts_at=now + timedelta(days=9))
    cancelled = await api.post(
        f"/sessions/{dropped['id']}/cancel", json={"reason": "Linda is ill"}, headers=mentor
    )
    assert cancelled.status_code == 200, cancelled.text
    goal = await api.post(
        f"/pairings/{met.pairing_id}/goals",
        json={"title": "Linda's first prompt", "progress": 40},
        headers=learner,
    )
    assert goal.status_code == 201, goal.text
    await schedule(other, who="E-3")
    report_url = f"/programs/{met.program_id}/outcomes"
    before = (await api.get(report_url, headers=owner(met.program_id))).json()
    erased = ParticipantErased(
        participant_id=met.learner_id,
        program_id=met.program_id,
        person_id="E-1",
        erased_at=now,
    )

    await deliver(erased, erased)

    async with sessions_service.sessions() as db:
        comments = {f.participant_id: f.comment for f in await db.scalars(select(Feedback))}
        pairings = {p.id: p for p in await db.scalars(select(Pairing))}
        goals = list(await db.scalars(select(Goal)))
        sessions = {s.pairing_id: s for s in await db.scalars(select(Session))}
        texts = {
            (s.agenda, s.video_link, s.cancellation_reason)
            for s in await db.scalars(select(Session).where(Session.pairing_id == met.pairing_id))
        }
    assert comments == {met.learner_id: "", met.mentor_id: "Great mentee"}
    assert (
        pairings[met.pairing_id].learner_person_id,
        pairings[met.pairing_id].mentor_person_id,
    ) == (
        ERASED,
        "E-2",
    )
    assert [(g.title, g.progress) for g in goals] == [(ERASED, 40)]
    assert texts == {("", None, None), ("", None, ERASED)}
    # Someone else's pairing in the program is untouched.
    assert pairings[other.pairing_id].learner_person_id == "E-3"
    assert sessions[other.pairing_id].agenda == "Slack"
    after = (await api.get(report_url, headers=owner(met.program_id))).json()
    assert after | {"generated_at": None} == before | {"generated_at": None}
    assert any(row["ratings"] for row in after["rows"])
    # The erased person is no longer recognised as a member of the pair.
    refused = await api.get(f"/pairings/{met.pairing_id}/goals", headers=learner)
    assert refused.status_code in (403, 404)
