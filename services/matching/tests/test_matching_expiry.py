"""Unanswered proposals expire and both sides are matched anew."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import event, update

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import expiry, roster, service
from crossgen_matching.models import Pairing
from crossgen_shared.events import MatchDeclined, MatchProposed, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, publish_event

from .test_matching_admin import admin, events
from .test_matching_flow import enrol, program


async def test_an_old_proposal_expires_once_and_both_sides_are_matched_anew(
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
    now = datetime.now(UTC)
    async with matching.sessions() as session, session.begin():
        await session.execute(
            update(Pairing)
            .where(Pairing.id == first.pairing_id)
            .values(proposed_at=now - timedelta(days=15))
        )

    for _ in range(2):
        async with matching.unit_of_work() as uow:
            await expiry.expire_due(uow, now, timedelta(days=14))
            await uow.commit()

    [expired] = await events(matching, MatchDeclined)
    assert expired.pairing_id == first.pairing_id and expired.declined_by is None
    assert expired.reason == "expired after 14 days"
    again = (await events(matching, MatchProposed))[1:]
    assert [(p.learner_person_id, p.mentor_person_id) for p in again] == [("L1", "M2")]
    statuses = [
        p["status"]
        for p in (
            await api.get(f"/programs/{pid}/pairings", headers=tokens.headers("hr", "admin"))
        ).json()
    ]
    assert statuses == ["expired", "proposed"]


async def test_a_fresh_proposal_does_not_expire(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    async with TestKafkaBroker(matching.broker) as broker:
        for who, role in [("M1", "mentor"), ("L1", "learner")]:
            await enrol(api, tokens, pid, who, role=role, skills=["tiktok"])
            [joined] = [
                e for e in await outbox(matching.sessions) if isinstance(e.event, ParticipantJoined)
            ][-1:]
            await publish_event(broker, joined.event, event_id=joined.id)
    async with matching.unit_of_work() as uow:
        assert await expiry.expire_due(uow, datetime.now(UTC), timedelta(days=14)) == 0
        await uow.commit()
    assert not await events(matching, MatchDeclined)


async def test_a_backlog_of_old_proposals_expires_a_few_per_transaction(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A launch's proposals expire together: each transaction takes a few, and what it did stays
    should a later one fail. The program is read once: the next transaction re-matches in the
    live matching the last one kept."""
    pid = await program(api, tokens)
    for n in range(1, 4):
        await enrol(api, tokens, pid, f"M{n}", role="mentor", skills=["tiktok"])
        await enrol(api, tokens, pid, f"L{n}", role="learner", skills=["tiktok"])
    assert (await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")).is_success
    async with matching.sessions() as session, session.begin():
        await session.execute(
            update(Pairing).values(proposed_at=datetime.now(UTC) - timedelta(days=15))
        )
    monkeypatch.setattr(expiry, "EXPIRED_AT_A_TIME", 2)
    rounds: list[int] = []
    expire_due = expiry.expire_due

    async def counted(*args: Any) -> int:
        rounds.append(await expire_due(*args))
        return rounds[-1]

    monkeypatch.setattr(expiry, "expire_due", counted)
    loads: list[UUID] = []
    load = roster.load

    async def counted_load(session: Any, program_id: UUID, **kw: Any) -> Any:
        loads.append(program_id)
        return await load(session, program_id, **kw)

    monkeypatch.setattr(roster, "load", counted_load)
    assert await expiry.expire_backlog(matching.unit_of_work, timedelta(days=14)) == 3
    assert rounds == [2, 1]
    assert loads == [UUID(pid)]
    expired = [e for e in await events(matching, MatchDeclined) if e.reason.startswith("expired")]
    assert len({e.pairing_id for e in expired}) == len(expired) == 3


async def test_proposals_closed_together_read_their_pairings_and_sides_in_one_statement_each(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    """Closing reads each pairing and both its sides, which one at a time is a statement each,
    each after a flush: a backlog's expiry and a swap in a join close several at once."""
    pid = await program(api, tokens)
    for n in range(1, 4):
        await enrol(api, tokens, pid, f"M{n}", role="mentor", skills=["tiktok"])
        await enrol(api, tokens, pid, f"L{n}", role="learner", skills=["tiktok"])
    assert (await admin(api, tokens, "POST", f"/programs/{pid}/matching/publish")).is_success
    proposed = await events(matching, MatchProposed)
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT"):
            reads.append(statement.split("FROM", 1)[1].split()[0])

    async with matching.unit_of_work() as uow:
        event.listen(matching.engine.sync_engine, "before_cursor_execute", seen)
        try:
            pairings = await service.pairings(uow, [p.pairing_id for p in proposed])
            await service.withdraw(uow, pairings, None, "re-matched")
        finally:
            event.remove(matching.engine.sync_engine, "before_cursor_execute", seen)
        await uow.commit()
    assert sorted(reads) == ["pairings", "participants"]
    withdrawn = await events(matching, MatchDeclined)
    assert [(e.pairing_id, e.learner_person_id, e.mentor_person_id) for e in withdrawn] == [
        (p.pairing_id, p.learner_person_id, p.mentor_person_id) for p in proposed
    ]
