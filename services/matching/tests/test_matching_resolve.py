"""The scheduled full re-solve of every program."""

from uuid import UUID

import httpx
from sqlalchemy import func, select

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import resolve
from crossgen_matching.program_admin import run_lock_key
from crossgen_shared.events import MatchDeclined, MatchProposed
from crossgen_shared.service import Service

from .test_matching_admin import admin, cohort, events
from .test_matching_flow import enrol, program


async def test_every_program_is_re_solved_but_one_being_matched_is_skipped(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    free, _ = await cohort(api, tokens)
    busy, _ = await cohort(api, tokens)
    lonely = await program(api, tokens)  # no mentors: a publish would be refused
    await enrol(api, tokens, lonely, "L9", role="learner")

    async with matching.sessions() as other, other.begin():
        await other.execute(select(func.pg_advisory_xact_lock(run_lock_key(UUID(busy)))))
        assert await resolve.resolve_all(matching.unit_of_work) == 1
    [proposed] = await events(matching, MatchProposed)
    assert str(proposed.program_id) == free

    assert await resolve.resolve_all(matching.unit_of_work) == 2
    proposals = await events(matching, MatchProposed)
    assert [str(p.program_id) for p in proposals] == [free, busy]


async def test_a_re_solve_keeps_accepted_pairings(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, _ = await cohort(api, tokens)
    await resolve.resolve_all(matching.unit_of_work)
    [proposed] = await events(matching, MatchProposed)
    for who in ("L1", "M1"):
        accepted = await api.post(
            f"/pairings/{proposed.pairing_id}/accept", headers=tokens.headers(who, "participant")
        )
        assert accepted.status_code == 200
    # A learner who outbids L1 for M1 does not take an accepted pairing away.
    await enrol(api, tokens, pid, "L3", role="learner", skills=[{"name": "tiktok", "level": 5}])
    await resolve.resolve_all(matching.unit_of_work)
    assert not await events(matching, MatchDeclined)
    later = (await events(matching, MatchProposed))[1:]
    assert [(p.learner_person_id, p.mentor_person_id) for p in later] == [("L3", "M2")]
    pairings = (await admin(api, tokens, "GET", f"/programs/{pid}/pairings")).json()
    assert [p["status"] for p in pairings] == ["accepted", "proposed"]
