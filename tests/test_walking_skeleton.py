"""The walking skeleton across three service processes over real Kafka, PostgreSQL and SMTP.

Counts, not only presence: a service that dropped or duplicated an event fails this test.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from crossgen_local import journey
from crossgen_local.infra import LocalInfra
from crossgen_local.stack import SERVICES, CrossgenStack
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import topics
from crossgen_shared.events import MatchAccepted, NotificationSent, ParticipantJoined

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(
    tokens: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CrossgenStack]:
    log_dir = tmp_path_factory.mktemp("service-logs")
    with LocalInfra(SERVICES) as infra, CrossgenStack(infra, tokens, log_dir) as stack:
        yield stack


async def read_topics(bootstrap: str, names: list[str]) -> list[tuple[str, dict[str, bytes]]]:
    """Every record on ``names`` from the beginning, as (topic, headers)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in (consumer.partitions_for_topic(name) or await _partitions(consumer, name))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[tuple[str, dict[str, bytes]]] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for tp_records in batch.values():
                records += [(r.topic, dict(r.headers)) for r in tp_records]
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def publish_garbage(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        headers = [
            ("ce_id", b"garbage-1"),
            ("ce_type", MatchAccepted.event_type().encode()),
            ("ce_source", b"/test"),
            ("ce_specversion", b"1.0"),
            ("content-type", b"application/json"),
        ]
        await producer.send_and_wait(
            topics.PAIRINGS, b'{"pairing_id": 42}', key=b"x", headers=headers
        )
        await producer.send_and_wait(topics.PARTICIPANTS, b"\x00\x01", key=b"y")
    finally:
        await producer.stop()


def test_journey_across_three_services(system: CrossgenStack, tokens: TokenIssuer) -> None:
    bootstrap = system.infra.kafka.bootstrap_servers
    asyncio.run(publish_garbage(bootstrap))  # the consumers must go on past these

    result = journey.run(system.url, tokens, print)
    assert result.pairing["status"] == "accepted"
    assert result.session["status"] == "completed"

    smtp = system.infra.smtp
    smtp.wait_for(6, timeout=30)
    time.sleep(3)  # anything sent twice would arrive now
    mails = smtp.messages
    assert Counter(r for m in mails for r in m.rcpt_tos) == {
        "linda@example.com": 3,
        "max@example.com": 3,
    }
    assert len({m.message["Message-ID"] for m in mails}) == 6

    records = asyncio.run(read_topics(bootstrap, [*topics.ALL[:4]]))
    ids = [h["ce_id"] for _, h in records if "ce_id" in h and h["ce_id"] != b"garbage-1"]
    assert len(ids) == len(set(ids)), "an event was published twice"
    published = Counter(
        h["ce_type"].decode()
        for _, h in records
        if h.get("ce_id") != b"garbage-1" and "ce_type" in h
    )
    assert published == {
        ParticipantJoined.event_type(): 2,
        "com.crossgen.match-proposed.v1": 1,
        MatchAccepted.event_type(): 1,
        "com.crossgen.session-scheduled.v1": 1,
        "com.crossgen.session-completed.v1": 1,
        "com.crossgen.feedback-submitted.v1": 1,
        "com.crossgen.notification-sent.v1": 6,
    }

    # One trace from each request through the services, to the email sent and the event saying so.
    sent = NotificationSent.event_type().encode()
    traces = [
        (h["ce_type"] == sent, h["traceparent"].decode().split("-")[1])
        for _, h in records
        if h.get("ce_id") != b"garbage-1" and "ce_type" in h
    ]
    assert {t for told, t in traces if told} <= {t for told, t in traces if not told}

    dead = asyncio.run(read_topics(bootstrap, [topics.dead_letter(s) for s in SERVICES]))
    by_service = Counter((t, h["dlq_origin_topic"].decode()) for t, h in dead)
    assert by_service == {
        (topics.dead_letter("sessions"), topics.PAIRINGS): 1,
        (topics.dead_letter("sessions"), topics.PARTICIPANTS): 1,
        (topics.dead_letter("notifications"), topics.PAIRINGS): 1,
        (topics.dead_letter("notifications"), topics.PARTICIPANTS): 1,
        (topics.dead_letter("matching"), topics.PARTICIPANTS): 1,
    }
    assert all(
        b"pairing_id" in h["dlq_reason"]
        for t, h in dead
        if h["dlq_origin_topic"] == topics.PAIRINGS.encode()
    )
    assert all({"dlq_origin_partition", "dlq_origin_offset"} <= set(h) for _, h in dead)
    assert Path(system.log_dir).exists()
