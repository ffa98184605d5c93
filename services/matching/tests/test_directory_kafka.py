"""The HRIS feed and the dead-letter commands over a real Kafka broker and PostgreSQL.

Matching runs as in production (its broker, consumers and outbox relay); records go in with a
plain Kafka producer, as a company's integration would send them.
"""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import UnknownTopicOrPartitionError
from sqlalchemy import select

import crossgen_matching
from crossgen_local.databases import migrated_database
from crossgen_local.evidence import read_topic
from crossgen_local.kafka import LocalKafka
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching import service
from crossgen_matching.app import build
from crossgen_matching.directory.models import Employee
from crossgen_matching.settings import MatchingSettings
from crossgen_shared import dead_letters, topics
from crossgen_shared.events import ParticipantLeft
from crossgen_shared.testing import outbox

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures" / "hris"
MIGRATIONS = Path(crossgen_matching.__file__).parent / "migrations"


@pytest.fixture
def settings(postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka) -> MatchingSettings:
    return MatchingSettings(
        database_url=migrated_database(postgres, MIGRATIONS),
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        jwt_issuer=tokens.issuer,
        jwt_public_key=tokens.public_key_pem,
        outbox_poll_interval=0.1,
    )


def payload(vendor: str, name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / f"{vendor}.json").read_text())[name]).encode()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_the_hris_feed_and_dead_letter_replay(
    settings: MatchingSettings, tokens: TokenIssuer
) -> None:
    matching = build(settings)

    async def employee(number: str) -> Employee | None:
        async with matching.sessions() as session:
            return await session.scalar(select(Employee).where(Employee.employee_number == number))

    async with matching.unit_of_work() as uow:
        program = await service.create_program(uow, "Digital")
        await service.enrol(
            uow,
            program_id=program.id,
            person_id="200311",
            role="mentor",
            display_name="Tom",
            email="tom@example.com",
            skills={"kotlin": 3},
            capacity=1,
        )
        await uow.commit()

    sentinel = json.loads(payload("scim", "hired"))
    sentinel["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"] = "1"
    sentinel |= {"userName": "sentinel@acme.example", "externalId": "s", "meta": {}}
    feed = [  # one key, so one partition, so this order
        (payload("bamboohr", "deleted"), "bamboohr"),  # nobody knows 4107 yet: parked
        (payload("scim", "hired"), None),  # the format is detected
        (payload("bamboohr", "updated"), "bamboohr"),
        (payload("merge", "changed"), "merge"),
        (b"\x00\x01 not json", None),  # parked, and the feed goes on
        (payload("bamboohr", "terminated"), "bamboohr"),
        (payload("bamboohr", "terminated"), "bamboohr"),  # the vendor resent it
        (payload("bamboohr", "updated"), "bamboohr"),  # an old one again: undoes nothing
        (json.dumps(sentinel).encode(), "scim"),
    ]
    async with matching.running():
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            for i, (value, fmt) in enumerate(feed):
                headers = [("hris-format", fmt.encode())] if fmt else []
                await producer.send_and_wait(topics.HRIS, value, key=b"acme", headers=headers)
                if i == 0:
                    # Parked before the rest are sent, so the letters' order is the feed's: a
                    # batch's undecodable records are parked as it is read, before the records
                    # ahead of them are applied.
                    await eventually(lambda: _count_letters(settings, 1))
        finally:
            await producer.stop()
        await eventually(lambda: _exists(employee, "1"))

        scim_person, tom, merge_person = [await employee(n) for n in ("100482", "200311", "300077")]
        assert scim_person and scim_person.department == "Brand Marketing"
        assert merge_person and merge_person.title == "Data Scientist II"
        assert tom and not tom.active and tom.removed_at is None  # terminated, not deleted
        events = [e.event for e in await outbox(matching.sessions)]
        assert sum(isinstance(e, ParticipantLeft) for e in events) == 1

        parked = await dead_letters.read(settings, "matching")
        assert [(d.origin_topic, d.key) for d in parked] == [(topics.HRIS, b"acme")] * 2
        assert "by id '4107' only" in parked[0].header("dlq_reason")
        assert parked[1].header("dlq_reason").startswith("the value is not JSON")
        assert parked[0].header("dlq_origin_offset") == "0"
        assert parked[1].value == b"\x00\x01 not json"

        # Now that 4107 is known, replaying the first letter deletes them; once only.
        replayed = await dead_letters.replay(
            settings, "matching", origin_topic=topics.HRIS, limit=1
        )
        assert [d.offset for d in replayed] == [parked[0].offset]
        await eventually(lambda: _removed(employee, "200311"))
        again = await dead_letters.replay(settings, "matching")
        assert [d.offset for d in again] == [parked[1].offset]  # not the first one twice
        await eventually(lambda: _count_letters(settings, 3))  # the garbage is parked again

    listing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "crossgen_matching", "dead-letters", "list"],
        env=os.environ
        | tokens.service_env("MATCHING")
        | {
            "MATCHING_DATABASE_URL": settings.database_url,
            "MATCHING_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "the value is not JSON" in listing.stdout
    assert f"from {topics.HRIS}[" in listing.stdout and "3 dead letter(s) parked" in listing.stdout


async def test_a_batch_goes_through_whatever_bytes_its_records_carry(
    settings: MatchingSettings,
) -> None:
    """FastStream parsed a batch before the consumer saw it: every header value decoded as UTF-8
    and every value as JSON. What that raised (a binary header, as Spring Kafka's correlation id;
    a null one; a value nested too deeply for json) skipped the whole batch: its records were
    lost."""
    matching = build(settings)
    key = uuid4().hex.encode()
    deep = b"[" * 50_000 + b"]" * 50_000
    odd = [("kafka_correlationId", b"\xff\xfe" + uuid4().bytes), ("nothing", None)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:  # all sent before matching runs, so that it takes them in one batch
        for value, headers in [
            (payload("scim", "hired"), odd),
            (deep, []),
            (payload("merge", "changed"), []),
        ]:
            await producer.send_and_wait(topics.HRIS, value, key=key, headers=headers)
    finally:
        await producer.stop()

    async def stored() -> set[str]:
        async with matching.sessions() as session:
            return set(await session.scalars(select(Employee.employee_number)))

    async with matching.running():
        await eventually(lambda: _has(stored, {"100482", "300077"}))
        await eventually(lambda: _count_letters(settings, 1, key))
    [letter] = await _letters(settings, key)
    assert (
        letter.header("dlq_reason") == "the value is not JSON: arrays and objects nested too deeply"
    )
    assert letter.value == deep


async def test_a_record_too_large_to_park_whole_does_not_hold_up_the_outbox(
    settings: MatchingSettings,
) -> None:
    """A record near the broker's size limit fits its topic, but parked with the dead letter's
    headers it would not: the outbox relay, which publishes in order, would try it forever."""
    matching = build(settings)
    key = uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for value in (b"x" * 1_048_400, b"\x00 not json"):
            await producer.send_and_wait(topics.HRIS, value, key=key)
    finally:
        await producer.stop()

    async with matching.running():
        await eventually(lambda: _count_letters(settings, 2, key))
    large, small = await _letters(settings, key)
    assert small.value == b"\x00 not json"
    assert large.header("dlq_reason").startswith("the value is not JSON")
    kept = len(large.value)
    assert large.value == b"x" * kept and 999_000 < kept < 1_000_000  # the headers fit too
    assert large.cut == f"value {kept} of 1048400 bytes"
    assert f"cut when parked (value {kept} of 1048400 bytes), so never replayed" in (
        large.describe()
    )

    # Replayed, the cut value would only be parked again: it is passed over, the other goes.
    sent_before = await _hris_records(settings)
    replayed = await dead_letters.replay(settings, "matching", origin_topic=topics.HRIS)
    assert large in replayed and small in replayed
    assert await _hris_records(settings) - sent_before == sum(1 for d in replayed if not d.cut)


@pytest.mark.parametrize("fills", ["key", "headers"])
async def test_a_record_whose_key_or_headers_fill_it_is_parked_with_them_cut(
    settings: MatchingSettings, fills: str
) -> None:
    """A key, or headers, near the broker's size limit (bytes of a header that are not UTF-8
    take three each once read as text): parked whole with the dead letter's headers, the letter
    would not fit its topic, and the outbox relay would try it forever. They are cut as a long
    value is, and the records parked after it are not held up."""
    matching = build(settings)
    marker, small = uuid4().hex.encode(), uuid4().hex.encode()
    if fills == "key":
        key, headers = marker + b"k" * (1_048_400 - len(marker)), [("ce_id", b"1")]
    else:
        key, headers = marker, [("binary", b"\xff" * 400_000), ("ce_id", b"1")]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for value, sent in ((b"\x00", (key, headers)), (b"\x00 not json", (small, []))):
            await producer.send_and_wait(  # parked in this order
                topics.HRIS, value, key=sent[0], headers=sent[1], partition=0
            )
    finally:
        await producer.stop()

    async with matching.running():
        await eventually(lambda: _count_letters(settings, 1, small))
    [cut] = [d for d in await _letters(settings) if d.key and d.key.startswith(marker)]
    assert cut.header("ce_id") == "1"  # what fits is kept
    if fills == "key":
        kept = len(cut.key or b"")
        assert cut.key == key[:kept] and 999_000 < kept < 1_000_000
        assert cut.value == b""
        assert cut.cut == f"key {kept} of 1048400 bytes, value 0 of 1 bytes"
    else:
        assert cut.header("binary") == "" and (cut.key, cut.value) == (key, b"\x00")
        assert cut.cut == "headers 6 of 1200012 bytes"


async def test_records_sent_to_an_hris_topic_made_anew_are_applied(
    settings: MatchingSettings,
) -> None:
    """An integration engineer deletes the HRIS topic and creates it again (to clear a trial's
    records, or to have fewer partitions): its offsets start again at 0. A record without an
    ``hris-event-id`` then sits where one already handled sat, and the inbox, which knew such
    records by their place, skipped it as handled: the employee never came."""
    matching = build(settings)

    async def stored() -> set[str]:
        async with matching.sessions() as session:
            return set(await session.scalars(select(Employee.employee_number)))

    for value, number in [
        (payload("scim", "hired"), "100482"),
        (payload("merge", "changed"), "300077"),
    ]:
        await _made_anew(settings.kafka_bootstrap_servers, topics.HRIS)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(topics.HRIS, value, partition=0)
        finally:
            await producer.stop()
        async with matching.running():
            await eventually(partial(_has, stored, {number}), within=30)


async def _made_anew(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(UnknownTopicOrPartitionError):
            await admin.delete_topics([topic])

        async def gone() -> bool:
            return topic not in await admin.list_topics()

        await eventually(gone, within=30)
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()


async def _letters(
    settings: MatchingSettings, key: bytes | None = None
) -> list[dead_letters.DeadLetter]:
    """Matching's dead letters: all of them, or those of records with ``key``."""
    letters = await dead_letters.read(settings, "matching")
    return [d for d in letters if key is None or d.key == key]


async def _hris_records(settings: MatchingSettings) -> int:
    return len(await read_topic(settings.kafka_bootstrap_servers, topics.HRIS))


async def _has(stored: Callable[[], Awaitable[set[str]]], numbers: set[str]) -> bool:
    return numbers <= await stored()


async def _exists(employee: Callable[[str], Awaitable[Employee | None]], number: str) -> bool:
    return await employee(number) is not None


async def _removed(employee: Callable[[str], Awaitable[Employee | None]], number: str) -> bool:
    found = await employee(number)
    return found is not None and found.removed_at is not None


async def _count_letters(settings: MatchingSettings, count: int, key: bytes | None = None) -> bool:
    return len(await _letters(settings, key)) == count
