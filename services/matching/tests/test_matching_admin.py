"""A program owner's whole-program runs, pins and forbidden pairs; a participant's decline."""

import asyncio
import subprocess
import time
from typing import Any
from uuid import UUID

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import func, select

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching import optimiser, program_admin, solver_process
from crossgen_matching.program_admin import run_lock_key
from crossgen_shared.events import MatchDeclined, MatchProposed, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, publish_event

from .conftest import http_api, matching_service
from .test_matching_flow import enrol, program


async def events(matching: Service, kind: type) -> list[Any]:
    return [e.event for e in await outbox(matching.sessions) if isinstance(e.event, kind)]


async def admin(
    api: httpx.AsyncClient, tokens: TokenIssuer, method: str, url: str, **kw: Any
) -> Any:
    return await api.request(method, url, headers=tokens.headers("hr", "admin"), **kw)


async def cohort(api: httpx.AsyncClient, tokens: TokenIssuer) -> tuple[str, dict[str, str]]:
    """Two mentors of TikTok, a learner of TikTok and one of COBOL nobody teaches."""
    pid = await program(api, tokens)
    ids = {}
    for who, role, skills in [
        ("M1", "mentor", [{"name": "tiktok", "level": 5}]),
        ("M2", "mentor", [{"name": "tiktok", "level": 2}, "figma"]),
        ("L1", "learner", ["tiktok"]),
        ("L2", "learner", ["cobol"]),
    ]:
        ids[who] = (await enrol(api, tokens, pid, who, role=role, skills=skills))["id"]
    return pid, ids


async def test_preview_is_a_dry_run_with_reasons_for_the_unmatched(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, ids = await cohort(api, tokens)
    url = f"/programs/{pid}/matching/preview"
    assert (await api.post(url, headers=tokens.headers("L1", "participant"))).status_code == 403
    response = await admin(api, tokens, "POST", url)
    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["learners"], run["mentors"], run["accepted"], run["withdrawn"]) == (2, 2, 0, 0)
    [pairing] = run["proposed"]
    assert (pairing["learner_id"], pairing["mentor_id"]) == (ids["L1"], ids["M1"])
    assert pairing["explanation"][0].startswith("teaches tiktok (level 5)")
    assert run["scores"]["count"] == 1 and run["scores"]["maximum"] == pairing["score"]
    [unmatched] = run["unmatched"]
    assert unmatched["learner_id"] == ids["L2"] and "no mentor teaches cobol" in unmatched["reason"]
    assert run["free_capacity"] == {ids["M1"]: 0, ids["M2"]: 1} and run["problem"] is None
    assert not await events(matching, MatchProposed)
    assert (await admin(api, tokens, "GET", f"/programs/{pid}/pairings")).json() == []


async def test_a_large_run_solves_its_flow_in_a_process_of_its_own(
    api: httpx.AsyncClient, tokens: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OR-Tools keeps the interpreter lock while it solves; elsewhere, the answer is the same."""
    pid, _ = await cohort(api, tokens)
    url = f"/programs/{pid}/matching/preview"
    here = (await admin(api, tokens, "POST", url)).json()
    ran = []

    class Noting:  # the subprocess module, noting the processes run
        def __getattr__(self, name: str) -> Any:
            return getattr(subprocess, name)

        def run(self, *args: Any, **kw: Any) -> Any:
            ran.append(subprocess.run(*args, **kw))
            return ran[-1]

    monkeypatch.setattr(solver_process, "subprocess", Noting())
    monkeypatch.setattr(solver_process, "ASIDE_FROM_LEARNERS", 1)
    aside = (await admin(api, tokens, "POST", url)).json()
    assert aside["proposed"] == here["proposed"] and aside["proposed"]
    [process] = ran
    assert process.returncode == 0


async def test_a_whole_program_run_leaves_the_service_answering_meanwhile(
    api: httpx.AsyncClient, tokens: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large program's run takes many seconds of CPU: the event loop goes on meanwhile, so
    Kafka heartbeats, health checks and other requests are not held up by it."""
    pid, _ = await cohort(api, tokens)
    match_program = optimiser.match_program

    def slow(program: Any, **kw: Any) -> Any:
        time.sleep(1.0)  # the CPU a large program takes, without its size
        return match_program(program, **kw)

    monkeypatch.setattr(optimiser, "match_program", slow)
    run = asyncio.create_task(admin(api, tokens, "POST", f"/programs/{pid}/matching/preview"))
    ticks = 0
    while not run.done():
        await asyncio.sleep(0.01)
        ticks += 1
    assert (await run).status_code == 200
    assert ticks >= 20


@pytest.fixture
def impatient(postgres: LocalPostgres, tokens: TokenIssuer) -> Service:
    """A matching service whose transactions may sit idle for 1 s at most. At 0.3 s the publish
    once got a 503 late in the suite, most likely as a pause of the test process outlasted the
    limit between two statements of its transaction, before the run's own limit was set."""
    return matching_service(postgres, tokens, database_idle_transaction_timeout=1.0)


async def test_a_run_outlasting_the_idle_transaction_limit_still_publishes(
    impatient: Service, tokens: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The services' transactions may sit idle only briefly (a hung process would hold its
    locks); a publish waits for its run inside one, on purpose, under a limit of its own."""
    match_program = optimiser.match_program

    def slow(program: Any, **kw: Any) -> Any:
        time.sleep(2.0)  # twice the limit
        return match_program(program, **kw)

    monkeypatch.setattr(optimiser, "match_program", slow)
    async with http_api(impatient) as api:
        pid, _ = await cohort(api, tokens)
        published = await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")
        assert published.status_code == 200, published.text
        assert len(published.json()["proposed"]) == 1


async def test_publish_proposes_once_and_re_matches_what_changed(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, ids = await cohort(api, tokens)
    url = f"/programs/{pid}/matching/publish"
    assert (await api.post(url, headers=tokens.headers("L1", "participant"))).status_code == 403
    first = (await admin(api, tokens, "POST", url)).json()
    assert len(first["proposed"]) == 1
    [proposed] = await events(matching, MatchProposed)
    assert (proposed.learner_person_id, proposed.mentor_person_id) == ("L1", "M1")
    again = (await admin(api, tokens, "POST", url)).json()
    assert (again["kept"], again["withdrawn"], again["proposed"]) == (1, 0, [])

    pin = {"learner_id": ids["L1"], "mentor_id": ids["M2"]}
    assert (await admin(api, tokens, "POST", f"/programs/{pid}/pins", json=pin)).status_code == 204
    moved = (await admin(api, tokens, "POST", url)).json()
    assert moved["withdrawn"] == 1 and moved["proposed"][0]["pinned"]
    [withdrawn] = await events(matching, MatchDeclined)
    assert withdrawn.pairing_id == proposed.pairing_id and withdrawn.reason == "re-matched"
    latest = (await events(matching, MatchProposed))[-1]
    assert (latest.learner_person_id, latest.mentor_person_id) == ("L1", "M2")
    statuses = [
        p["status"] for p in (await admin(api, tokens, "GET", f"/programs/{pid}/pairings")).json()
    ]
    assert statuses == ["withdrawn", "proposed"]
    # A page at a time, the oldest first: a program's list grows with the company.
    pages = [
        await admin(api, tokens, "GET", f"/programs/{pid}/pairings", params=params)
        for params in ({"limit": 1}, {"limit": 1, "offset": 1}, {"limit": 0}, {"limit": 201})
    ]
    assert [p["status"] for p in pages[0].json()] == ["withdrawn"]
    assert [p["status"] for p in pages[1].json()] == ["proposed"]
    assert [page.status_code for page in pages[2:]] == [422, 422]


async def test_a_run_is_proposed_a_few_at_a_time_each_pair_once(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written as they go (20,000 at once held the event loop for seconds), in parts."""
    monkeypatch.setattr(program_admin, "PROPOSALS_AT_A_TIME", 2)
    pid = await program(api, tokens)
    for n in range(1, 6):
        await enrol(api, tokens, pid, f"M{n}", role="mentor", skills=["tiktok"])
        await enrol(api, tokens, pid, f"L{n}", role="learner", skills=["tiktok"])
    url = f"/programs/{pid}/matching/publish"
    run = (await admin(api, tokens, "POST", url)).json()
    proposed = await events(matching, MatchProposed)
    assert len(run["proposed"]) == len(proposed) == 5
    assert {p.learner_person_id for p in proposed} == {f"L{n}" for n in range(1, 6)}
    assert {p.mentor_person_id for p in proposed} == {f"M{n}" for n in range(1, 6)}
    pairings = (await admin(api, tokens, "GET", f"/programs/{pid}/pairings")).json()
    assert [p["status"] for p in pairings] == ["proposed"] * 5
    again = (await admin(api, tokens, "POST", url)).json()
    assert (again["kept"], again["withdrawn"], again["proposed"]) == (5, 0, [])


async def test_a_second_run_at_the_same_time_is_refused(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, _ = await cohort(api, tokens)
    async with matching.sessions() as other, other.begin():
        await other.execute(select(func.pg_advisory_xact_lock(run_lock_key(UUID(pid)))))
        busy = await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")
        assert busy.status_code == 409
        assert "a matching run is in progress" in busy.text
    assert not await events(matching, MatchProposed)
    done = await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")
    assert done.status_code == 200


async def test_a_program_without_mentors_is_not_published(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "L1", role="learner")
    preview = await admin(api, tokens, "POST", f"/programs/{pid}/matching/preview")
    assert preview.status_code == 422
    assert preview.json()["detail"] == "the program has no mentors: nobody is enrolled as mentor"
    published = await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")
    assert published.status_code == 422 and "no mentors" in published.text


async def test_pins_and_forbidden_pairs(api: httpx.AsyncClient, tokens: TokenIssuer) -> None:
    pid, ids = await cohort(api, tokens)
    pins, forbidden = f"/programs/{pid}/pins", f"/programs/{pid}/forbidden"
    breaking = await admin(
        api, tokens, "POST", pins, json={"learner_id": ids["L2"], "mentor_id": ids["M1"]}
    )
    assert breaking.status_code == 422 and "no_shared_skill" in breaking.text
    backwards = await admin(
        api, tokens, "POST", pins, json={"learner_id": ids["M1"], "mentor_id": ids["L1"]}
    )
    assert backwards.status_code == 422
    assert (
        await api.post(
            forbidden,
            json={"learner_id": ids["L1"], "mentor_id": ids["M1"]},
            headers=tokens.headers("L1", "participant"),
        )
    ).status_code == 403

    pair = {"learner_id": ids["L1"], "mentor_id": ids["M1"]}
    assert (await admin(api, tokens, "POST", forbidden, json=pair)).status_code == 204
    assert (await admin(api, tokens, "POST", forbidden, json=pair)).status_code == 409
    run = (await admin(api, tokens, "POST", f"/programs/{pid}/matching/preview")).json()
    assert [p["mentor_id"] for p in run["proposed"]] == [ids["M2"]]
    assert (await admin(api, tokens, "DELETE", forbidden, json=pair)).status_code == 204
    assert (await admin(api, tokens, "DELETE", forbidden, json=pair)).status_code == 404


async def test_a_declined_proposal_is_not_made_again_and_both_are_matched_anew(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    async with TestKafkaBroker(matching.broker) as broker:
        for who, role in [("M1", "mentor"), ("L1", "learner"), ("M2", "mentor")]:
            await enrol(api, tokens, pid, who, role=role, skills=["tiktok"])
            [joined] = [
                e for e in await outbox(matching.sessions) if isinstance(e.event, ParticipantJoined)
            ][-1:]
            await publish_event(broker, joined.event, event_id=joined.id)
    [first] = await events(matching, MatchProposed)
    assert (first.learner_person_id, first.mentor_person_id) == ("L1", "M1")

    url = f"/pairings/{first.pairing_id}/decline"
    stranger = await api.post(url, json={"reason": "x"}, headers=tokens.headers("Z", "participant"))
    assert stranger.status_code == 403
    assert (
        await api.post(url, json={"reason": ""}, headers=tokens.headers("L1", "participant"))
    ).status_code == 422
    declined = await api.post(
        url, json={"reason": "our hours never meet"}, headers=tokens.headers("M1", "participant")
    )
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    [event] = await events(matching, MatchDeclined)
    assert event.reason == "our hours never meet" and event.declined_by == first.mentor_id
    proposals = await events(matching, MatchProposed)
    assert [(p.learner_person_id, p.mentor_person_id) for p in proposals[1:]] == [("L1", "M2")]
    twice = await api.post(url, json={"reason": "x"}, headers=tokens.headers("M1", "participant"))
    assert twice.status_code == 409

    # A whole run does not bring the declined pair back.
    run = (await admin(api, tokens, "POST", f"/programs/{pid}/matching/preview")).json()
    assert (run["kept"], run["withdrawn"], run["proposed"]) == (1, 0, [])


async def test_a_mentor_freed_by_a_decline_is_not_proposed_to_their_own_learner_again(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    async with TestKafkaBroker(matching.broker) as broker:
        for who, role in [
            ("M1", "mentor"),
            ("L1", "learner"),
            ("L2", "learner"),
            ("L3", "learner"),
        ]:
            await enrol(api, tokens, pid, who, role=role, skills=["tiktok"], capacity=2)
            [joined] = [
                e for e in await outbox(matching.sessions) if isinstance(e.event, ParticipantJoined)
            ][-1:]
            await publish_event(broker, joined.event, event_id=joined.id)
    proposed = await events(matching, MatchProposed)
    assert [p.learner_person_id for p in proposed] == ["L1", "L2"]
    declined = await api.post(
        f"/pairings/{proposed[1].pairing_id}/decline",
        json={"reason": "no time after all"},
        headers=tokens.headers("L2", "participant"),
    )
    assert declined.status_code == 200
    again = (await events(matching, MatchProposed))[2:]
    assert [(p.learner_person_id, p.mentor_person_id) for p in again] == [("L3", "M1")]


async def test_forbidding_a_proposed_pair_withdraws_it_and_matches_both_again(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, ids = await cohort(api, tokens)
    assert (
        await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")
    ).status_code == 200
    [proposed] = await events(matching, MatchProposed)
    assert (proposed.learner_person_id, proposed.mentor_person_id) == ("L1", "M1")

    pair = {"learner_id": ids["L1"], "mentor_id": ids["M1"]}
    forbidden = f"/programs/{pid}/forbidden"
    assert (await admin(api, tokens, "POST", forbidden, json=pair)).status_code == 204
    [withdrawn] = await events(matching, MatchDeclined)
    assert withdrawn.pairing_id == proposed.pairing_id and withdrawn.declined_by is None
    assert withdrawn.reason == "the program owner forbade this pair"
    [_, again] = await events(matching, MatchProposed)
    assert (again.learner_person_id, again.mentor_person_id) == ("L1", "M2")


async def test_a_run_that_would_match_nobody_says_why_and_publishes_nothing(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "M1", role="mentor", skills=["figma"])
    for learner in ("L1", "L2"):
        await enrol(api, tokens, pid, learner, role="learner", skills=["cobol"])
    run = (await admin(api, tokens, "POST", f"/programs/{pid}/matching/preview")).json()
    says = "no waiting learner has an eligible mentor: no mentor teaches cobol (2)"
    assert run["problem"] == says
    published = await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")
    assert published.status_code == 422 and published.json()["detail"] == says
    assert not await events(matching, MatchProposed)
