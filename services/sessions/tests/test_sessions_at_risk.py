"""The scheduled at-risk check over a real PostgreSQL: each episode announced exactly once, however
often and from however many replicas it runs; and the program owner's list of pairings at risk."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crossgen_local.tokens import TokenIssuer
from crossgen_sessions.at_risk.service import check, watch
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared.events import MatchAccepted, PairingAtRisk, PairingEnded
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

OpenPairing = Callable[..., Awaitable[MatchAccepted]]
Schedule = Callable[..., Awaitable[Any]]
MoveSession = Callable[[str, datetime], Awaitable[None]]
Deliver = Callable[..., Awaitable[None]]

NOW = datetime.now(UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def announced(service: Service) -> list[PairingAtRisk]:
    return [e.event for e in await outbox(service.sessions) if isinstance(e.event, PairingAtRisk)]


async def test_a_stalled_pairing_is_announced_once_however_often_the_check_runs(
    sessions_service: Service, settings: SessionsSettings, open_pairing: OpenPairing
) -> None:
    stalled = await open_pairing(accepted_at=days_ago(30))
    await open_pairing(accepted_at=days_ago(3))
    policy = settings.at_risk_policy()

    assert await check(sessions_service.unit_of_work, policy, NOW) == 1
    assert await check(sessions_service.unit_of_work, policy, NOW) == 0
    assert await check(sessions_service.unit_of_work, policy, NOW + timedelta(days=5)) == 0

    [event] = await announced(sessions_service)
    assert (event.pairing_id, event.program_id) == (stalled.pairing_id, stalled.program_id)
    assert (event.learner_id, event.mentor_id) == (stalled.learner_id, stalled.mentor_id)
    assert event.reason == "no session held in 30 days" and event.detected_at == NOW


async def test_checks_running_at_once_on_several_replicas_announce_each_pairing_once(
    sessions_service: Service, settings: SessionsSettings, open_pairing: OpenPairing
) -> None:
    stalled = [await open_pairing(f"L-{n}", f"M-{n}", accepted_at=days_ago(40)) for n in range(25)]
    policy = settings.at_risk_policy()

    def replica() -> Awaitable[int]:
        return check(sessions_service.unit_of_work, policy, NOW, batch_size=4)

    counts = await asyncio.gather(replica(), replica(), replica())
    assert sum(counts) == 25
    assert sum(await asyncio.gather(replica(), replica())) == 0
    per_pairing = Counter(e.pairing_id for e in await announced(sessions_service))
    assert per_pairing == Counter({p.pairing_id: 1 for p in stalled})


async def test_no_shows_in_a_row_are_announced_and_meeting_again_starts_afresh(
    api: httpx.AsyncClient,
    sessions_service: Service,
    settings: SessionsSettings,
    tokens: TokenIssuer,
    open_pairing: OpenPairing,
    schedule: Schedule,
    move_session: MoveSession,
) -> None:
    pairing = await open_pairing(accepted_at=days_ago(10))
    learner = tokens.headers("E-100", "participant")
    policy = settings.at_risk_policy()

    async def session_days_ago(days: float, outcome: str) -> None:
        session = await schedule(pairing, starts_at=NOW + timedelta(days=1 + days))
        await move_session(session["id"], days_ago(days))
        path, body = ("no-show", {}) if outcome == "missed" else ("held", {"held_minutes": 45})
        marked = await api.post(f"/sessions/{session['id']}/{path}", json=body, headers=learner)
        assert marked.status_code == 200, marked.text

    await session_days_ago(7, "missed")
    assert await check(sessions_service.unit_of_work, policy, NOW) == 0
    await session_days_ago(3, "missed")
    assert await check(sessions_service.unit_of_work, policy, NOW) == 1
    await session_days_ago(2, "missed")  # the same streak goes on
    assert await check(sessions_service.unit_of_work, policy, NOW) == 0

    await session_days_ago(1, "held")
    assert await check(sessions_service.unit_of_work, policy, NOW) == 0
    # three weeks later, without meeting again: a new episode, announced again
    assert await check(sessions_service.unit_of_work, policy, NOW + timedelta(days=21)) == 1
    reasons = [e.reason for e in await announced(sessions_service)]
    assert reasons == ["2 no-shows in a row", "no session held in 22 days"]


async def test_ended_pairings_and_pairings_past_their_end_date_are_not_at_risk(
    api: httpx.AsyncClient,
    sessions_service: Service,
    settings: SessionsSettings,
    tokens: TokenIssuer,
    open_pairing: OpenPairing,
    deliver: Deliver,
) -> None:
    ended = await open_pairing("E-1", "E-2", accepted_at=days_ago(60))
    await deliver(
        PairingEnded(
            **ended.model_dump(exclude={"accepted_at"}), reason="done", ended_at=days_ago(1)
        )
    )
    finished = await open_pairing("E-3", "E-4", accepted_at=days_ago(60))
    finish_today = await api.put(
        f"/pairings/{finished.pairing_id}/end-date",
        json={"ends_on": NOW.date().isoformat()},
        headers=tokens.headers("E-3", "participant"),
    )
    assert finish_today.status_code == 200
    tomorrow = NOW + timedelta(days=1)
    assert await check(sessions_service.unit_of_work, settings.at_risk_policy(), tomorrow) == 0


async def test_the_worker_checks_on_its_interval_and_announces_once(
    sessions_service: Service, settings: SessionsSettings, open_pairing: OpenPairing
) -> None:
    await open_pairing(accepted_at=days_ago(22))
    worker = asyncio.create_task(
        watch(sessions_service.unit_of_work, settings.at_risk_policy(), interval=0.05)
    )
    await asyncio.sleep(0.5)  # several rounds
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    assert len(await announced(sessions_service)) == 1
    assert sessions_service.workers  # the service runs it while it runs


async def test_the_owner_lists_the_pairings_still_at_risk(
    api: httpx.AsyncClient,
    sessions_service: Service,
    settings: SessionsSettings,
    tokens: TokenIssuer,
    owner: Callable[..., dict[str, str]],
    open_pairing: OpenPairing,
    schedule: Schedule,
) -> None:
    quiet = await open_pairing("E-1", "E-2", accepted_at=days_ago(30))
    recovers = await open_pairing(
        "E-3", "E-4", program_id=quiet.program_id, accepted_at=days_ago(30)
    )
    await open_pairing("E-5", "E-6", accepted_at=days_ago(30))  # another program
    await check(sessions_service.unit_of_work, settings.at_risk_policy(), NOW)
    url = f"/programs/{quiet.program_id}/pairings-at-risk"

    listed = await api.get(url, headers=owner(quiet.program_id))
    assert listed.status_code == 200
    assert {
        (r["learner_person_id"], r["mentor_person_id"], r["reason"]) for r in listed.json()
    } == {
        ("E-1", "E-2", "stalled"),
        ("E-3", "E-4", "stalled"),
    }
    assert listed.json()[0]["detail"] == "no session held in 30 days"
    assert datetime.fromisoformat(listed.json()[0]["since"]) == days_ago(30)

    session = await schedule(recovers, who="E-3")
    held = await api.post(
        f"/sessions/{session['id']}/held",
        json={"held_minutes": 30},
        headers=tokens.headers("E-3", "participant"),
    )
    assert held.status_code == 200
    listed = await api.get(url, headers=owner(quiet.program_id))
    assert [r["pairing_id"] for r in listed.json()] == [str(quiet.pairing_id)]
