"""A program owner's pins and forbidden pairs hold when someone joins between full runs."""

from typing import Any

import httpx
from faststream.kafka import TestKafkaBroker

from crossgen_local.tokens import TokenIssuer
from crossgen_shared.events import MatchDeclined, MatchProposed, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, publish_event

from .test_matching_admin import admin, events
from .test_matching_flow import enrol, program

MENTORS = [("M1", [{"name": "tiktok", "level": 5}]), ("M2", [{"name": "tiktok", "level": 1}])]


async def mentors(api: httpx.AsyncClient, tokens: TokenIssuer) -> tuple[str, dict[str, str]]:
    """A program with a strong and a weak TikTok mentor."""
    pid = await program(api, tokens)
    ids = {
        who: (await enrol(api, tokens, pid, who, role="mentor", skills=skills))["id"]
        for who, skills in MENTORS
    }
    return pid, ids


async def join(matching: Service, person_id: str) -> None:
    """Deliver the person's ParticipantJoined to the consumer, which matches them."""
    [joined] = [
        e
        for e in await outbox(matching.sessions)
        if isinstance(e.event, ParticipantJoined) and e.event.person_id == person_id
    ]
    async with TestKafkaBroker(matching.broker) as broker:
        await publish_event(broker, joined.event, event_id=joined.id)


async def rule(api: httpx.AsyncClient, tokens: TokenIssuer, url: str, pair: dict[str, Any]) -> None:
    assert (await admin(api, tokens, "POST", url, json=pair)).status_code == 204


async def test_a_pinned_learner_gets_their_mentor_on_joining_though_a_better_one_is_free(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, ids = await mentors(api, tokens)
    learner = (await enrol(api, tokens, pid, "L1", role="learner", skills=["tiktok"]))["id"]
    await rule(
        api, tokens, f"/programs/{pid}/pins", {"learner_id": learner, "mentor_id": ids["M2"]}
    )
    await join(matching, "L1")
    [proposed] = await events(matching, MatchProposed)
    assert (proposed.learner_person_id, proposed.mentor_person_id) == ("L1", "M2")
    assert "pinned by the program owner" in proposed.explanation


async def test_a_pin_to_a_full_mentor_moves_their_proposal_on(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, ids = await mentors(api, tokens)
    await enrol(api, tokens, pid, "L1", role="learner", skills=["tiktok"])
    await join(matching, "L1")
    [first] = await events(matching, MatchProposed)
    assert first.mentor_person_id == "M1"
    pinned = (await enrol(api, tokens, pid, "L2", role="learner", skills=["tiktok"]))["id"]
    await rule(api, tokens, f"/programs/{pid}/pins", {"learner_id": pinned, "mentor_id": ids["M1"]})
    await join(matching, "L2")
    [withdrawn] = await events(matching, MatchDeclined)
    assert withdrawn.pairing_id == first.pairing_id and withdrawn.reason == "re-matched"
    proposed = (await events(matching, MatchProposed))[1:]
    assert [(p.learner_person_id, p.mentor_person_id) for p in proposed] == [
        ("L2", "M1"),
        ("L1", "M2"),
    ]


async def test_a_forbidden_pair_is_not_proposed_on_joining(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, ids = await mentors(api, tokens)
    learner = (await enrol(api, tokens, pid, "L1", role="learner", skills=["tiktok"]))["id"]
    pair = {"learner_id": learner, "mentor_id": ids["M1"]}
    await rule(api, tokens, f"/programs/{pid}/forbidden", pair)
    await join(matching, "L1")
    [proposed] = await events(matching, MatchProposed)
    assert proposed.mentor_person_id == "M2"
