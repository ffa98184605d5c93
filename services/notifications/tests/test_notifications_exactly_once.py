"""Never twice: the real service process, over real Kafka, PostgreSQL and SMTP, is killed with
SIGKILL while an email is on the wire, restarted, and sent every event again. Each message
arrives exactly once; the one whose outcome died with the process is marked unconfirmed, not
resent."""

import asyncio
import time
from collections import Counter
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from crossgen_local.kafka import LocalKafka
from crossgen_local.processes import ServiceProcess, free_port
from crossgen_local.tokens import TokenIssuer
from crossgen_notifications.models import Notification
from crossgen_notifications.testing import START, SlowSmtp
from crossgen_shared.db import OutboxRecord, create_engine, session_factory
from crossgen_shared.envelope import encode
from crossgen_shared.events import (
    Event,
    MatchAccepted,
    MatchProposed,
    NotificationSent,
    ParticipantJoined,
)

pytestmark = pytest.mark.integration

PAIRS = 3  # three pairings, each proposed and accepted: twelve emails
SMTP_DELAY = 1.0  # seconds between storing a message and saying so


def journey() -> list[tuple[str, Event]]:
    """Participants, proposals and acceptances, each with the event id it is always sent with."""
    events: list[Event] = []
    for n in range(PAIRS):
        program = uuid4()
        learner, mentor = (
            ParticipantJoined(
                participant_id=uuid4(),
                program_id=program,
                person_id=f"E-{role}-{n}",
                role=role,
                display_name=f"{role.title()} {n}",
                email=f"{role}{n}@example.com",
                skills=("ai",),
                joined_at=START,
            )
            for role in ("learner", "mentor")
        )
        pair = {
            "pairing_id": uuid4(),
            "program_id": program,
            "learner_id": learner.participant_id,
            "mentor_id": mentor.participant_id,
            "learner_person_id": learner.person_id,
            "mentor_person_id": mentor.person_id,
        }
        events += [
            learner,
            mentor,
            MatchProposed(**pair, score=1.0, explanation=("ai",), proposed_at=START),
            MatchAccepted(**pair, accepted_at=START),
        ]
    return [(str(uuid4()), event) for event in events]


async def publish(bootstrap: str, events: list[tuple[str, Event]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for event_id, event in events:
            record = encode(event, source="/test", event_id=event_id)
            await producer.send_and_wait(
                event.topic, record.value, key=record.key, headers=list(record.headers.items())
            )
    finally:
        await producer.stop()


async def statuses(database_url: str) -> Counter[str]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            )
            return Counter({status: count for status, count in rows.all()})
    finally:
        await engine.dispose()


def wait_for(probe: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_kill_mid_send_and_a_full_redelivery_deliver_each_message_exactly_once(
    kafka: LocalKafka, notifications_db: str, tokens: TokenIssuer, tmp_path: Path
) -> None:
    events = journey()
    expected = 4 * PAIRS  # two people told of each proposal and each acceptance
    port = free_port()
    with SlowSmtp(free_port(), delay=SMTP_DELAY) as smtp:
        env = {
            "NOTIFICATIONS_DATABASE_URL": notifications_db,
            "NOTIFICATIONS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "NOTIFICATIONS_HTTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_HTTP_PORT": str(port),
            "NOTIFICATIONS_OUTBOX_POLL_INTERVAL": "0.2",
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(smtp.port),
            "NOTIFICATIONS_SMTP_TIMEOUT": "3",
            "NOTIFICATIONS_WEBHOOK_TIMEOUT": "3",
            "NOTIFICATIONS_SENDING_TIMEOUT": "5",
            # One message on the wire at a time: the kill lands on exactly one.
            "NOTIFICATIONS_DELIVERY_CONCURRENCY": "1",
            "NOTIFICATIONS_DELIVERY_BATCH": "1",
            "NOTIFICATIONS_DELIVERY_POLL_INTERVAL": "0.1",
            **tokens.service_env("NOTIFICATIONS"),
        }
        service = ServiceProcess(
            "crossgen_notifications",
            ["serve"],
            env=env,
            log_path=tmp_path / "notifications.log",
            name="notifications",
        )
        ready = f"http://127.0.0.1:{port}/health/ready"
        try:
            service.start()
            service.wait_ready(ready, timeout=60)
            asyncio.run(publish(kafka.bootstrap_servers, events))

            # SIGKILL while the server holds a stored message and we wait for its reply.
            assert smtp.storing.wait(60), "no email was ever sent"
            wait_for(lambda: len(smtp.received) >= 2 and smtp.storing.is_set(), "a later send")
            service.kill()
            at_kill = asyncio.run(statuses(notifications_db))
            assert at_kill["sending"] == 1, at_kill

            service.start()
            service.wait_ready(ready, timeout=60)
            asyncio.run(publish(kafka.bootstrap_servers, events))  # every event, again

            def settled() -> bool:
                now = asyncio.run(statuses(notifications_db))
                return now.total() == expected and not now.keys() & {"pending", "sending"}

            wait_for(settled, "every message to be settled", timeout=90)
            time.sleep(2 * SMTP_DELAY)  # a second copy of anything would have come by now
        finally:
            service.stop()

    arrived = Counter(smtp.message_ids())
    assert set(arrived.values()) == {1}, f"sent twice: {arrived}"
    assert len(arrived) == expected, arrived
    final = asyncio.run(statuses(notifications_db))
    assert final == {"sent": expected - 1, "unconfirmed": 1}, final
    asyncio.run(check_log(notifications_db, set(arrived), expected))


async def check_log(database_url: str, arrived: set[str], expected: int) -> None:
    """One row per (event, recipient, channel), each one's Message-ID at the sink; an event for
    each message confirmed sent and none for the one that may or may not have arrived."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = list(await session.scalars(select(Notification)))
            outbox = list(await session.scalars(select(OutboxRecord)))
    finally:
        await engine.dispose()
    keys = Counter((n.source_event_id, n.recipient_id, n.channel, n.template) for n in rows)
    assert len(keys) == expected and set(keys.values()) == {1}
    assert {f"<{n.id}@crossgen>" for n in rows} == arrived
    sent_type = NotificationSent.event_type()
    sent = [r for r in outbox if r.headers.get("ce_type") == sent_type]
    [unconfirmed] = [n for n in rows if n.status == "unconfirmed"]
    assert len(sent) == expected - 1
    assert all(r.key != str(unconfirmed.id).encode() for r in sent)
