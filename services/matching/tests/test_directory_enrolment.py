"""What the HRIS feed does to automatic programs and to the participants it describes: eligible
people join with the skills or interests the directory has, and a new name or email reaches their
participants."""

import json
import logging
from datetime import date
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import admission
from crossgen_shared.events import (
    MatchProposed,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, publish_event

from .test_directory_intake import publish
from .test_matching_admin import admin, events
from .test_matching_flow import enrol, program

CROSSGEN = "urn:ietf:params:scim:schemas:extension:crossgen:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RULES = {
    "enrolment": "automatic",
    "learner": {"job_level_min": 6},
    "mentor": {"job_level_max": 3, "tenure_years_max": 5},
}


def scim_user(
    number: str,
    version: int,
    *,
    level: str,
    skills: tuple[str, ...] = (),
    interests: tuple[str, ...] = (),
    **core: Any,
) -> bytes:
    """The full SCIM view of a person, as an HRIS integration publishes it."""
    crossgen = {"jobLevel": level, "hireDate": date.today().replace(day=1).isoformat()}
    crossgen |= {"skills": list(skills)} if skills else {}
    crossgen |= {"interests": list(interests)} if interests else {}
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CROSSGEN],
        "userName": f"{number.lower()}@acme.example",
        "displayName": f"Person {number}",
        "emails": [{"value": f"{number.lower()}@acme.example", "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE: {"employeeNumber": number, "department": "Marketing"},
        CROSSGEN: crossgen,
        "meta": {"lastModified": f"2026-01-01T09:00:{version:02d}Z", "version": f'W/"{version}"'},
    }
    return json.dumps(user | core).encode()


async def automatic_program(api: httpx.AsyncClient, tokens: TokenIssuer) -> str:
    pid = await program(api, tokens)
    put = await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=RULES)
    assert put.status_code == 200, put.text
    assert put.json()["automatic_enrolment"]["to_check"] == 0  # nobody in the directory yet
    return pid


async def test_an_eligible_hire_on_the_hris_topic_joins_once_and_stays(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await automatic_program(api, tokens)
    async with TestKafkaBroker(matching.broker) as broker:
        await publish(broker, scim_user("E-7", 1, level="L2"), "r1", "scim")
        await publish(broker, scim_user("E-7", 2, level="L2", title="Designer"), "r2", "scim")
        await publish(broker, scim_user("E-8", 3, level="L4"), "r3", "scim")  # neither role
        # Promoted out of the mentor rules: stays a mentor all the same.
        await publish(broker, scim_user("E-7", 4, level="L5"), "r4", "scim")
    [joined] = await events(matching, ParticipantJoined)
    assert (str(joined.program_id), joined.person_id, joined.role) == (pid, "E-7", "mentor")
    assert (joined.display_name, joined.email, joined.skills) == (
        "Person E-7",
        "e-7@acme.example",
        (),
    )
    assert not await events(matching, ParticipantLeft)


async def test_automatically_enrolled_people_are_matched_on_the_directory_s_skills(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await automatic_program(api, tokens)
    mentor = scim_user("E-7", 1, level="L2", skills=("Figma", "TikTok"), interests=("Excel",))
    learner = scim_user("E-9", 2, level="L8", skills=("Excel",), interests=("tiktok", "AI  tools"))
    async with TestKafkaBroker(matching.broker) as broker:
        await publish(broker, mentor, "r1", "scim")
        await publish(broker, learner, "r2", "scim")
        for envelope in await outbox(matching.sessions):
            await publish_event(broker, envelope.event, event_id=envelope.id)
        # The profile is the participant's now: the directory's new lists leave it as it is.
        relisted = scim_user("E-9", 3, level="L8", interests=("cobol",))
        await publish(broker, relisted, "r3", "scim")
    joined = await events(matching, ParticipantJoined)
    assert [(e.person_id, e.role, e.skills) for e in joined] == [
        ("E-7", "mentor", ("figma", "tiktok")),
        ("E-9", "learner", ("ai tools", "tiktok")),
    ]
    [proposed] = await events(matching, MatchProposed)
    assert (proposed.learner_person_id, proposed.mentor_person_id) == ("E-9", "E-7")
    assert "tiktok" in proposed.explanation[0]
    assert not await events(matching, ParticipantUpdated)
    learner_me = tokens.headers("E-9", "participant")
    me = await api.get(f"/programs/{pid}/enrolments/me", headers=learner_me)
    assert me.json()["skills"] == [{"name": "ai tools", "level": 3}, {"name": "tiktok", "level": 3}]


async def test_interests_outside_the_catalogue_are_left_out_and_logged(
    api: httpx.AsyncClient,
    matching: Service,
    tokens: TokenIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = await automatic_program(api, tokens)
    catalogue = {"skills": ["tiktok", "ai tools"]}
    assert (await admin(api, tokens, "PUT", f"/programs/{pid}/skills", json=catalogue)).is_success
    learner = scim_user("E-9", 1, level="L8", interests=("TikTok", "Tik Tok", "cobol"))
    with caplog.at_level(logging.INFO, logger=admission.__name__):
        async with TestKafkaBroker(matching.broker) as broker:
            await publish(broker, learner, "r1", "scim")
    [joined] = await events(matching, ParticipantJoined)
    assert (joined.person_id, joined.skills) == ("E-9", ("tiktok",))
    assert f"E-9 joins program {pid} without skills outside its catalogue: cobol, tik tok" in (
        caplog.text
    )


async def test_a_learner_without_interests_joins_and_is_told_to_list_some(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await automatic_program(api, tokens)
    async with TestKafkaBroker(matching.broker) as broker:
        await publish(broker, scim_user("E-7", 1, level="L2", skills=("tiktok",)), "r1", "scim")
        await publish(broker, scim_user("E-9", 2, level="L8"), "r2", "scim")
    preview = await admin(api, tokens, "POST", f"/programs/{pid}/matching/preview")
    assert preview.status_code == 200, preview.text
    [unmatched] = preview.json()["unmatched"]
    assert unmatched["reason"] == "has listed no skills to learn yet"


async def test_a_new_name_or_email_reaches_each_participant_in_order(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    first, second = await program(api, tokens), await program(api, tokens)
    async with TestKafkaBroker(matching.broker) as broker:
        await publish(broker, scim_user("E-7", 1, level="L2"), "r1", "scim")
        await enrol(api, tokens, first, "E-7", role="mentor")
        await enrol(api, tokens, second, "E-7", role="learner")
        await publish(broker, scim_user("E-7", 2, level="L2", displayName="Kim Park"), "r2", "scim")
        moved = [{"value": "kim.park@acme.example", "type": "work", "primary": True}]
        await publish(
            broker,
            scim_user("E-7", 3, level="L2", displayName="Kim Park", emails=moved),
            "r3",
            "scim",
        )
        await publish(  # nothing a participant shows changed
            broker,
            scim_user("E-7", 4, level="L3", displayName="Kim Park", emails=moved),
            "r4",
            "scim",
        )
    updated = await events(matching, ParticipantUpdated)
    # Only what changed: the email Lea enrolled with stays until the directory's changes.
    assert [(str(e.program_id), e.display_name, e.email) for e in updated] == [
        (first, "Kim Park", "lea@example.com"),
        (second, "Kim Park", "lea@example.com"),
        (first, "Kim Park", "kim.park@acme.example"),
        (second, "Kim Park", "kim.park@acme.example"),
    ]
    assert updated[0].skills == ("ai tools", "tiktok")
