"""A participant completes or changes their profile at ``/programs/{id}/enrolments/me``."""

from typing import Any

import httpx
from faststream.kafka import TestKafkaBroker

from crossgen_local.tokens import TokenIssuer
from crossgen_shared.events import MatchProposed, ParticipantUpdated
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, publish_event

from .test_matching_admin import events
from .test_matching_flow import enrol, program


async def put_profile(
    api: httpx.AsyncClient, tokens: TokenIssuer, pid: str, who: str, **body: Any
) -> httpx.Response:
    return await api.put(
        f"/programs/{pid}/enrolments/me",
        json={"skills": ["tiktok"]} | body,
        headers=tokens.headers(who, "participant"),
    )


async def match_joiners(matching: Service) -> None:
    async with TestKafkaBroker(matching.broker) as broker:
        for envelope in await outbox(matching.sessions):
            await publish_event(broker, envelope.event, event_id=envelope.id)


async def test_a_learner_who_lists_what_a_waiting_mentor_teaches_is_matched(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    mentor = await enrol(api, tokens, pid, "M1", role="mentor", skills=["tiktok"])
    learner = await enrol(api, tokens, pid, "L1", role="learner", skills=["cobol"])
    await match_joiners(matching)
    assert not await events(matching, MatchProposed)

    changed = await put_profile(
        api,
        tokens,
        pid,
        "L1",
        skills=[{"name": "TikTok", "level": 5}, "Figma"],
        capacity=3,  # a learner's is always 1
        languages=["de", "EN"],
        timezone="Europe/Berlin",
        goals="reach younger customers",
    )
    assert changed.status_code == 200, changed.text
    profile = changed.json()
    assert profile["skills"] == [{"name": "figma", "level": 3}, {"name": "tiktok", "level": 5}]
    assert (profile["capacity"], profile["languages"], profile["timezone"]) == (
        1,
        ["de", "en"],
        "Europe/Berlin",
    )
    [updated] = await events(matching, ParticipantUpdated)
    assert (str(updated.participant_id), updated.skills) == (learner["id"], ("figma", "tiktok"))
    assert (updated.display_name, updated.email) == ("Lea", "lea@example.com")
    [proposed] = await events(matching, MatchProposed)
    assert (str(proposed.learner_id), str(proposed.mentor_id)) == (learner["id"], mentor["id"])

    # Proposed now: a further change keeps the proposal and asks for no other.
    again = await put_profile(api, tokens, pid, "L1", skills=["tiktok", "excel"])
    assert again.status_code == 200, again.text
    assert len(await events(matching, MatchProposed)) == 1
    assert len(await events(matching, ParticipantUpdated)) == 2
    mine = await api.get(
        f"/programs/{pid}/enrolments/me", headers=tokens.headers("L1", "participant")
    )
    assert mine.status_code == 200 and mine.json() == again.json()
    assert mine.json()["goals"] == "" and mine.json()["timezone"] == "UTC"  # the whole profile


async def test_a_mentor_s_capacity_never_goes_below_their_open_pairings(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "M1", role="mentor", skills=["tiktok"], capacity=2)
    for learner in ("L1", "L2"):
        await enrol(api, tokens, pid, learner, role="learner", skills=["tiktok"])
    await match_joiners(matching)
    assert len(await events(matching, MatchProposed)) == 2

    refused = await put_profile(api, tokens, pid, "M1", capacity=1)
    assert refused.status_code == 409
    assert "capacity 1 is below the 2 open pairings" in refused.text
    assert not await events(matching, ParticipantUpdated)
    kept = await put_profile(api, tokens, pid, "M1", capacity=2, skills=["tiktok", "figma"])
    assert kept.status_code == 200 and kept.json()["capacity"] == 2, kept.text
    assert len(await events(matching, MatchProposed)) == 2


async def test_only_an_active_participant_has_a_profile_here(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "L1", role="learner")
    url = f"/programs/{pid}/enrolments/me"
    assert (await put_profile(api, tokens, pid, "E-404")).status_code == 404
    missing = await api.get(url, headers=tokens.headers("E-404", "participant"))
    assert missing.status_code == 404 and "E-404 is not enrolled" in missing.text
    other = "00000000-0000-0000-0000-000000000001"
    assert (await put_profile(api, tokens, other, "L1")).status_code == 404
    assert (await api.put(url, json={"skills": ["tiktok"]})).status_code == 401
    assert (await api.get(url)).status_code == 401
    as_admin = tokens.headers("L1", "admin")
    assert (await api.put(url, json={"skills": ["x"]}, headers=as_admin)).status_code == 403
    assert (await api.get(url, headers=as_admin)).status_code == 403


async def test_bad_profiles_are_refused_naming_the_field(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "M1", role="mentor", skills=["tiktok"])
    for body, field in [
        ({"skills": []}, "skills"),
        ({"skills": ["  "]}, "skills"),
        ({"skills": [{"name": "figma", "level": 0}]}, "skills"),
        ({"capacity": 4}, "capacity"),
        ({"capacity": 0}, "capacity"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"work_end": 24}, "work_end"),
        ({"languages": []}, "languages"),
    ]:
        response = await put_profile(api, tokens, pid, "M1", **body)
        assert response.status_code == 422, (body, response.text)
        assert field in {str(part) for e in response.json()["detail"] for part in e["loc"]}, body
