"""The example subscriber against a real Kafka: every event printed once, across a restart.

Crossgen's own encoder produces the records, as its services publish them; the subscriber runs as
another team would run it, as a process, and is stopped with SIGTERM once its group has committed
every offset (so every record, the duplicates too, has been through it).
"""

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from crossgen_local.kafka import LocalKafka
from crossgen_shared.envelope import KafkaRecord, encode
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.schemas import SCHEMA_DIR

pytestmark = pytest.mark.integration

SUBSCRIBER = Path(__file__).with_name("subscriber.py")


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with LocalKafka() as kafka:
        yield kafka.bootstrap_servers


def joined() -> KafkaRecord:
    event = ParticipantJoined(
        participant_id=uuid4(),
        program_id=uuid4(),
        person_id="E-7",
        role="learner",
        display_name="Linda",
        email="linda@example.com",
        skills=("tiktok",),
        joined_at=datetime.now(UTC),
    )
    return encode(event, source="/crossgen/matching")


def event_id(record: KafkaRecord) -> str:
    return record.headers["ce_id"].decode()


async def produce(bootstrap: str, topic: str, records: list[KafkaRecord]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(topic, r.value, key=r.key, headers=[*r.headers.items()])
    finally:
        await producer.stop()


async def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """Has ``group`` committed the end offset of every partition of ``topic``?"""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        end = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group)
        return all(committed[tp].offset >= end[tp] for tp in partitions if end[tp])
    except KeyError:  # a partition with records and no commit yet
        return False
    except KafkaError as exc:  # e.g. the group's coordinator, while Kafka is still warming up
        if exc.retriable:
            return False
        raise
    finally:
        await admin.close()
        await consumer.stop()


def run_subscriber(bootstrap: str, group: str, topic: str, db: Path) -> list[dict[str, object]]:
    """Run the subscriber until it has caught up, stop it, and return what it printed."""
    command = [sys.executable, str(SUBSCRIBER), "--bootstrap", bootstrap, "--group", group]
    command += ["--topic", topic, "--schemas", str(SCHEMA_DIR), "--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not asyncio.run(caught_up(bootstrap, group, topic)):
            assert process.poll() is None, "the subscriber exited early"
            assert time.monotonic() < deadline, "the subscriber did not catch up in 60 s"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_each_event_is_printed_once(bootstrap: str, tmp_path: Path) -> None:
    topic, group, db = f"example-{uuid4().hex}", f"example-{uuid4().hex}", tmp_path / "s.sqlite3"
    first, second, third = joined(), joined(), joined()
    invalid = KafkaRecord(key=b"k", headers=first.headers | {"ce_id": b"bad"}, value=b"{}")
    # `first` twice: a redelivery, as after a relay crash between the Kafka ack and its bookkeeping.
    asyncio.run(produce(bootstrap, topic, [first, second, first, invalid]))

    printed = run_subscriber(bootstrap, group, topic, db)
    assert Counter(line["id"] for line in printed) == {event_id(first): 1, event_id(second): 1}
    assert printed[0]["type"] == "com.crossgen.participant-joined.v1"

    # After a restart, its offsets committed: a late duplicate is skipped, a new event printed.
    asyncio.run(produce(bootstrap, topic, [second, third]))
    printed = run_subscriber(bootstrap, group, topic, db)
    assert [line["id"] for line in printed] == [event_id(third)]

    with sqlite3.connect(db) as connection:
        rejected = connection.execute("SELECT reason FROM rejected").fetchall()
    assert len(rejected) == 1 and "required property" in rejected[0][0]
