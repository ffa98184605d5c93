"""The background loops themselves, started with the service on short intervals.

The state is set up over HTTP first; then a second instance of the service on the same database
runs as in production (consumers, outbox relay and loops) over FastStream's test broker, so
whatever changes after that is the loops' doing.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import update

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import automatic_enrolment, expiry, resolve
from crossgen_matching.app import build
from crossgen_matching.models import Pairing
from crossgen_matching.settings import MatchingSettings
from crossgen_shared.events import MatchDeclined, MatchProposed, ParticipantJoined
from crossgen_shared.service import Service

from .test_automatic_enrolment import AUTOMATIC
from .test_matching_admin import admin, events
from .test_matching_eligibility import company
from .test_matching_flow import enrol, program
from .test_matching_pins_at_join import join, mentors

PATIENCE = 10.0  # seconds a loop gets to do what the test waits for


async def proposed_to_m1(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> tuple[str, dict[str, str], MatchProposed]:
    """A program with a strong (M1) and a weak (M2) mentor, and L1 proposed to M1."""
    pid, ids = await mentors(api, tokens)
    ids["L1"] = (await enrol(api, tokens, pid, "L1", role="learner", skills=["tiktok"]))["id"]
    await join(matching, "L1")
    [proposed] = await events(matching, MatchProposed)
    assert proposed.mentor_person_id == "M1"
    return pid, ids, proposed


def failing_once(real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``real``, but its first call raises, as when the database is briefly away."""
    calls = 0

    async def flaky(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return await real(*args)

    return flaky


def with_loops(matching: Service, **intervals: float) -> Service:
    """Another instance of ``matching``, its loops on ``intervals``."""
    assert isinstance(matching.settings, MatchingSettings)
    return build(matching.settings.model_copy(update={"create_topics": False, **intervals}))


async def until(matching: Service, kind: type, count: int) -> list[Any]:
    """The events of ``kind`` once there are ``count`` of them; fails after PATIENCE."""
    async with asyncio.timeout(PATIENCE):
        while len(found := await events(matching, kind)) < count:  # noqa: ASYNC110 - polls a table
            await asyncio.sleep(0.05)
    return found


async def test_the_expiry_loop_expires_an_unanswered_proposal_after_a_failed_round(
    api: httpx.AsyncClient,
    matching: Service,
    tokens: TokenIssuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, _, proposed = await proposed_to_m1(api, matching, tokens)
    async with matching.sessions() as session, session.begin():
        await session.execute(
            update(Pairing)
            .where(Pairing.id == proposed.pairing_id)
            .values(proposed_at=datetime.now(UTC) - timedelta(days=2))
        )
    monkeypatch.setattr(expiry, "expire_due", failing_once(expiry.expire_due))
    service = with_loops(
        matching,
        proposal_expiry_days=1,
        proposal_expiry_check_interval=0.2,
        resolve_interval_hours=0,
    )
    with caplog.at_level(logging.ERROR, logger=expiry.__name__):
        async with TestKafkaBroker(service.broker), service.running():
            [expired] = await until(matching, MatchDeclined, 1)
            await until(matching, MatchProposed, 2)
    assert expired.pairing_id == proposed.pairing_id and expired.reason == "expired after 1 days"
    assert "expiring proposals failed; the next run retries" in caplog.text
    again = (await events(matching, MatchProposed))[1:]
    assert [(p.learner_person_id, p.mentor_person_id) for p in again] == [("L1", "M2")]


async def test_the_resolve_loop_re_matches_a_program_after_a_failed_round(
    api: httpx.AsyncClient,
    matching: Service,
    tokens: TokenIssuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid, ids, proposed = await proposed_to_m1(api, matching, tokens)
    # A pin changes nothing until the next whole-program run.
    pin = {"learner_id": ids["L1"], "mentor_id": ids["M2"]}
    assert (await admin(api, tokens, "POST", f"/programs/{pid}/pins", json=pin)).status_code == 204
    assert len(await events(matching, MatchProposed)) == 1
    monkeypatch.setattr(resolve, "resolve_all", failing_once(resolve.resolve_all))
    service = with_loops(matching, resolve_interval_hours=0.2 / 3600)
    with caplog.at_level(logging.ERROR, logger=resolve.__name__):
        async with TestKafkaBroker(service.broker), service.running():
            [_, pinned] = await until(matching, MatchProposed, 2)
    assert (pinned.learner_person_id, pinned.mentor_person_id) == ("L1", "M2")
    [withdrawn] = await events(matching, MatchDeclined)
    assert withdrawn.pairing_id == proposed.pairing_id and withdrawn.reason == "re-matched"
    assert "re-solving the programs failed; the next run retries" in caplog.text


async def test_the_enrolment_loop_enrols_a_switched_program_after_a_failed_round(
    api: httpx.AsyncClient,
    matching: Service,
    tokens: TokenIssuer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await company(matching)
    pid = await program(api, tokens)
    await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=AUTOMATIC)
    batch = failing_once(automatic_enrolment.enrol_batch)
    monkeypatch.setattr(automatic_enrolment, "enrol_batch", batch)
    service = with_loops(matching, automatic_enrolment_check_interval=0.2)
    with caplog.at_level(logging.INFO, logger=automatic_enrolment.__name__):
        async with TestKafkaBroker(service.broker), service.running():
            joined = await until(matching, ParticipantJoined, 2)
            done = await admin(api, tokens, "GET", f"/programs/{pid}/automatic-enrolment")
    assert [e.person_id for e in joined] == ["D1", "S1"] and done.json()["state"] == "done"
    assert f"program {pid}: automatic enrolment failed; 1 failure(s) in a row" in caplog.text
    assert f"program {pid}: automatic enrolment done: 2 enrolled of 3 looked at" in caplog.text
