"""Matching's HTTP API and its consumer, over a real PostgreSQL and FastStream's test broker."""

from typing import Any

import httpx
from faststream.kafka import TestKafkaBroker

from crossgen_local.tokens import TokenIssuer
from crossgen_shared import topics
from crossgen_shared.events import MatchAccepted, MatchProposed, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, parked, publish_event

ENROL = {"display_name": "Lea", "email": "lea@example.com", "skills": ["TikTok", "AI tools"]}


async def program(api: httpx.AsyncClient, tokens: TokenIssuer) -> str:
    response = await api.post(
        "/programs", json={"name": "Digital"}, headers=tokens.headers("hr", "admin")
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def enrol(
    api: httpx.AsyncClient, tokens: TokenIssuer, pid: str, who: str, **body: Any
) -> Any:
    response = await api.post(
        f"/programs/{pid}/enrolments", json=ENROL | body, headers=tokens.headers(who, "participant")
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_enrolment_to_accepted_pairing(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "E-100", role="learner")
    await enrol(api, tokens, pid, "E-200", role="mentor", skills=["ai tools"])
    joined = await outbox(matching.sessions)
    assert [type(e.event) for e in joined] == [ParticipantJoined, ParticipantJoined]

    async with TestKafkaBroker(matching.broker) as broker:
        for envelope in joined:
            await publish_event(broker, envelope.event, event_id=envelope.id)
        # A redelivery of the same event has no second effect.
        await publish_event(broker, joined[1].event, event_id=joined[1].id)

    proposed = [
        e.event for e in await outbox(matching.sessions) if isinstance(e.event, MatchProposed)
    ]
    assert len(proposed) == 1
    assert proposed[0].learner_person_id == "E-100" and proposed[0].mentor_person_id == "E-200"
    assert "ai tools" in proposed[0].explanation[0]

    pairing = f"/pairings/{proposed[0].pairing_id}/accept"
    assert (
        await api.post(pairing, headers=tokens.headers("E-999", "participant"))
    ).status_code == 403
    assert (await api.post(pairing, headers=tokens.headers("E-100", "participant"))).json()[
        "status"
    ] == "proposed"
    accepted = await api.post(pairing, headers=tokens.headers("E-200", "participant"))
    assert accepted.json()["status"] == "accepted"
    assert (
        await api.post(pairing, headers=tokens.headers("E-200", "participant"))
    ).status_code == 200
    events = [e.event for e in await outbox(matching.sessions)]
    assert sum(isinstance(e, MatchAccepted) for e in events) == 1


async def test_an_invalid_record_is_dead_lettered_and_the_consumer_goes_on(
    matching: Service,
) -> None:
    async with TestKafkaBroker(matching.broker) as broker:
        await broker.publish(
            b"not json",
            topics.PARTICIPANTS,
            key=b"k",
            headers={
                "ce_id": "x1",
                "ce_type": ParticipantJoined.event_type(),
                "ce_source": "/test",
                "ce_specversion": "1.0",
            },
        )
        await broker.publish(b"{}", topics.PARTICIPANTS, key=b"k", headers={})
    letters = [row.headers for row in await parked(matching.sessions)]
    assert len(letters) == 2
    assert "not a CloudEvent" in letters[0]["dlq_reason"]
    assert letters[0]["dlq_origin_topic"] == topics.PARTICIPANTS
    assert "missing CloudEvents headers" in letters[1]["dlq_reason"]


async def test_http_rejects_bad_input_and_bad_callers(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    url = f"/programs/{pid}/enrolments"
    learner = tokens.headers("E-1", "participant")
    assert (await api.post(url, json=ENROL | {"role": "learner"})).status_code == 401
    bad_token = {"Authorization": "Bearer nonsense"}
    assert (
        await api.post(url, json=ENROL | {"role": "learner"}, headers=bad_token)
    ).status_code == 401
    admin_only = await api.post("/programs", json={"name": "x"}, headers=learner)
    assert admin_only.status_code == 403
    invalid = await api.post(
        url, json={"role": "boss", "email": "nope", "skills": []}, headers=learner
    )
    assert invalid.status_code == 422
    fields = {err["loc"][-1] for err in invalid.json()["detail"]}
    assert {"role", "email", "skills", "display_name"} <= fields
    capacity = await api.post(url, json=ENROL | {"role": "mentor", "capacity": 9}, headers=learner)
    assert capacity.status_code == 422
    unknown = await api.post(
        "/programs/00000000-0000-0000-0000-000000000000/enrolments",
        json=ENROL | {"role": "learner"},
        headers=learner,
    )
    assert unknown.status_code == 404
    assert (
        await api.post(url, json=ENROL | {"role": "learner"}, headers=learner)
    ).status_code == 201
    twice = await api.post(url, json=ENROL | {"role": "learner"}, headers=learner)
    assert twice.status_code == 409 and "already enrolled" in twice.json()["detail"]
    assert (await api.get("/health/live")).status_code == 200
