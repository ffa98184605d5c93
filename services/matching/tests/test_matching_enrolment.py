"""The enrolment profile and proposals by the optimiser's incremental repair."""

from typing import Any

import httpx
from faststream.kafka import TestKafkaBroker

from crossgen_local.tokens import TokenIssuer
from crossgen_shared.events import MatchDeclined, MatchProposed
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, publish_event

from .test_matching_flow import ENROL, enrol, program


async def enrolment(api: httpx.AsyncClient, tokens: TokenIssuer, pid: str, **body: Any) -> Any:
    return await api.post(
        f"/programs/{pid}/enrolments",
        json=ENROL | {"role": "learner"} | body,
        headers=tokens.headers("E-1", "participant"),
    )


async def test_the_profile_is_kept_and_plain_skill_names_are_level_3(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    body = await enrol(
        api,
        tokens,
        pid,
        "E-1",
        role="mentor",
        skills=[{"name": " TikTok ", "level": 5}, "AI  tools", {"name": "tiktok", "level": 2}],
        capacity=2,
        languages=["EN", "de"],
        timezone="Europe/Berlin",
        work_start=8,
        work_end=16,
        goals="share what I know about short video",
    )
    assert body["skills"] == [{"name": "ai tools", "level": 3}, {"name": "tiktok", "level": 5}]
    assert body["languages"] == ["de", "en"] and body["timezone"] == "Europe/Berlin"
    assert (body["work_start"], body["work_end"], body["capacity"]) == (8, 16, 2)
    assert body["goals"] == "share what I know about short video"


async def test_defaults_are_english_utc_nine_to_five(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    body = await enrol(api, tokens, await program(api, tokens), "E-1", role="learner")
    assert (body["languages"], body["timezone"], body["work_start"], body["work_end"]) == (
        ["en"],
        "UTC",
        9,
        17,
    )


async def test_bad_profiles_are_refused_naming_the_field(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    for body, field in [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"skills": []}, "skills"),
        ({"skills": ["  "]}, "skills"),
        ({"skills": [{"name": "figma", "level": 6}]}, "skills"),
        ({"skills": [{"level": 2}]}, "skills"),
        ({"work_start": 24}, "work_start"),
        ({"capacity": 4}, "capacity"),
        ({"languages": []}, "languages"),
    ]:
        response = await enrolment(api, tokens, pid, **body)
        assert response.status_code == 422, (body, response.text)
        assert field in {str(part) for e in response.json()["detail"] for part in e["loc"]}, body


async def test_a_newcomer_gets_the_mentor_who_fits_best(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    # Each join is handled before the next person enrols.
    async with TestKafkaBroker(matching.broker) as broker:
        for who, role, more in [
            ("E-201", "mentor", {"skills": [{"name": "tiktok", "level": 2}]}),
            ("E-202", "mentor", {"skills": [{"name": "tiktok", "level": 5}]}),
            ("E-203", "mentor", {"skills": ["tiktok"], "languages": ["fr"]}),
            ("E-100", "learner", {"skills": ["tiktok"]}),
        ]:
            await enrol(api, tokens, pid, who, role=role, **more)
            envelope = (await outbox(matching.sessions))[-1]
            await publish_event(broker, envelope.event, event_id=envelope.id)
    proposed = [
        e.event for e in await outbox(matching.sessions) if isinstance(e.event, MatchProposed)
    ]
    assert [(p.learner_person_id, p.mentor_person_id) for p in proposed] == [("E-100", "E-202")]
    assert proposed[0].explanation[0].startswith("teaches tiktok (level 5)")
    assert any("both speak en" in line for line in proposed[0].explanation)
    assert 0 < proposed[0].score <= 1


async def test_a_newcomer_only_one_mentor_fits_may_move_a_mere_proposal(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    async with TestKafkaBroker(matching.broker) as broker:
        for who, role, skills in [
            ("E-201", "mentor", [{"name": "tiktok", "level": 5}, "figma"]),
            ("E-202", "mentor", [{"name": "tiktok", "level": 3}]),
            ("E-101", "learner", ["tiktok"]),
            ("E-102", "learner", ["figma"]),
        ]:
            await enrol(api, tokens, pid, who, role=role, skills=skills)
            envelope = (await outbox(matching.sessions))[-1]
            await publish_event(broker, envelope.event, event_id=envelope.id)
    events = [e.event for e in await outbox(matching.sessions)]
    proposed = [
        (e.learner_person_id, e.mentor_person_id) for e in events if isinstance(e, MatchProposed)
    ]
    assert proposed == [("E-101", "E-201"), ("E-102", "E-201"), ("E-101", "E-202")]
    [withdrawn] = [e for e in events if isinstance(e, MatchDeclined)]
    assert (withdrawn.learner_person_id, withdrawn.mentor_person_id) == ("E-101", "E-201")
    assert withdrawn.reason == "re-matched"
