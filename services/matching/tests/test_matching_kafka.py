"""Join, decline, leave and re-match over a real Kafka broker and PostgreSQL.

Matching runs as in production (its broker, consumers and outbox relay); people enrol, decline,
accept and leave over HTTP, and what it proposes is read back from the pairings topic.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import views
from crossgen_matching.app import build
from crossgen_matching.directory import employees, scim
from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.settings import MatchingSettings
from crossgen_shared import topics
from crossgen_shared.db import InboxRecord
from crossgen_shared.envelope import decode
from crossgen_shared.events import (
    Event,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    PairingEnded,
)
from crossgen_shared.service import Service

from .test_directory_kafka import eventually, settings  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


class Pairings:
    """Every event on the pairings topic so far, read from the broker."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer, self.events = consumer, list[Event]()

    async def until(self, count: int, within: float = 60) -> list[Event]:
        """Read until ``count`` events arrived, then a while longer, so that extras show."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.events) < count:
            assert asyncio.get_running_loop().time() < deadline, f"timed out: {self.events}"
            await self._read(1.0)
        await self._read(2.0)
        return self.events

    async def _read(self, seconds: float) -> None:
        batches = await self.consumer.getmany(timeout_ms=int(seconds * 1000))
        for records in batches.values():
            for r in records:
                headers = dict(r.headers)
                self.events.append(decode(headers, r.key, r.value).event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def pairings(settings: MatchingSettings) -> AsyncIterator[Pairings]:  # noqa: F811
    consumer = AIOKafkaConsumer(
        topics.PAIRINGS,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        yield Pairings(consumer)
    finally:
        await consumer.stop()


async def handled(matching: Service, count: int) -> bool:
    """Whether matching's consumers have handled ``count`` events."""
    async with matching.unit_of_work() as uow:
        return (await uow.session.scalar(select(func.count()).select_from(InboxRecord))) == count


async def test_join_decline_leave_and_re_match(
    settings: MatchingSettings,  # noqa: F811
    tokens: TokenIssuer,
    pairings: Pairings,
) -> None:
    matching = build(settings)
    async with matching.unit_of_work() as uow:
        # M1 is in the directory, so that the company can delete them over SCIM.
        await employees.record(
            uow,
            EmployeeRecord(
                employee_number="M1",
                source="scim:okta",
                source_timestamp=datetime.now(UTC),
                active=True,
                display_name="Mo",
            ),
        )
        await uow.commit()
    app = matching.http_app([views.router, scim.router])
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://matching")

    async def call(method: str, url: str, who: str, role: str, **kw: Any) -> Any:
        response = await http.request(method, url, headers=tokens.headers(who, role), **kw)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def enrol(who: str, role: str, level: int, capacity: int = 1) -> None:
        skills = [{"name": "tiktok", "level": level}]
        body = {"display_name": who, "email": f"{who}@example.com", "skills": skills}
        body |= {"role": role, "capacity": capacity}
        await call("POST", f"/programs/{pid}/enrolments", who, "participant", json=body)

    def pair(event: Any) -> tuple[str, str]:
        return event.learner_person_id, event.mentor_person_id

    async with http, matching.running():
        pid = (await call("POST", "/programs", "hr", "admin", json={"name": "Digital"}))["id"]
        # M1 teaches best, so L1 goes to M1 once both mentors are in. (A mentor whose join is
        # handled while L1 waits takes L1 at once: first the mentors' joins, then L1.)
        await enrol("M1", "mentor", 5)
        await enrol("M2", "mentor", 2, capacity=2)
        await eventually(lambda: handled(matching, 2))
        await enrol("L1", "learner", 3)
        [first] = await pairings.until(1)
        assert isinstance(first, MatchProposed) and pair(first) == ("L1", "M1")

        # L1 declines: the pair is closed and L1 goes to M2.
        url = f"/pairings/{first.pairing_id}/decline"
        await call("POST", url, "L1", "participant", json={"reason": "no time"})
        await pairings.until(3)
        [declined] = pairings.of(MatchDeclined)
        assert declined.pairing_id == first.pairing_id and declined.reason == "no time"
        assert [pair(p) for p in pairings.of(MatchProposed)] == [("L1", "M1"), ("L1", "M2")]

        # L2 joins, goes to the free M1, and both accept.
        await enrol("L2", "learner", 3)
        await pairings.until(4)
        l2_m1 = pairings.of(MatchProposed)[-1]
        assert pair(l2_m1) == ("L2", "M1")
        for who in ("L2", "M1"):
            await call("POST", f"/pairings/{l2_m1.pairing_id}/accept", who, "participant")
        await pairings.until(5)
        assert [e.pairing_id for e in pairings.of(MatchAccepted)] == [l2_m1.pairing_id]

        # The company deletes M1: their pairing ends and L2 goes to M2's second place.
        await call("DELETE", "/scim/v2/Users/M1", "okta", "integration")
        events = await pairings.until(7)

    # Keyed by pairing, so spread over partitions: counted, not ordered, beyond each step.
    assert Counter(type(e) for e in events) == {
        MatchProposed: 4,
        MatchDeclined: 1,
        MatchAccepted: 1,
        PairingEnded: 1,
    }
    [ended] = pairings.of(PairingEnded)
    assert ended.pairing_id == l2_m1.pairing_id
    assert pair(pairings.of(MatchProposed)[-1]) == ("L2", "M2")
    await matching.engine.dispose()
