"""Each service's dead-letter topic: parking a record with why, listing, and replaying after a fix.

A dead letter keeps the original key, value (cut if too long) and headers, and adds ``dlq_*``
headers: the reason, the consumer, and the origin topic / partition / offset. The consumer writes
it to its outbox (consumer.py), so it is published once however often its batch comes again.
Replay re-publishes it to its origin topic without the ``dlq_*`` headers; consumers are
idempotent, so a record replayed to a topic that several services read is harmless to those that
had handled it.

Replay remembers what it did as consumer-group offsets on the dead-letter topic, one group per
origin topic, so each record is replayed once however replays are filtered.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import UnknownTopicOrPartitionError, for_code
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from crossgen_shared import topics
from crossgen_shared.settings import ServiceSettings

PREFIX = "dlq_"
PREVIEW = 200  # characters of a value shown by `dead-letters list`
# Bytes of a dead letter's headers, key and value together, at most: what does not fit is cut.
# A letter must fit the dead-letter topic (Kafka takes 1 MiB a record unless told otherwise);
# one that did not, the outbox relay, which publishes in order, tried forever, holding up every
# event behind it. Such a record stays whole on its origin topic, for that topic's retention;
# not replayed.
LIMIT = 1_000_000
CUT = f"{PREFIX}value_cut"
KEY_CUT = f"{PREFIX}key_cut"
HEADERS_CUT = f"{PREFIX}headers_cut"
MAX_BYTES = "max.message.bytes"  # the topic's config


async def room_on(admin: AIOKafkaAdminClient, topic: str) -> int:
    """The bytes a letter may hold on ``topic``: ``LIMIT``, or less if the topic takes less than
    Kafka's default (its ``max.message.bytes``). A twenty-fifth of what it takes, 1 kB at least,
    is left for the record's framing. A topic just created is unknown to the broker a moment."""
    takes: int = await AsyncRetrying(
        retry=retry_if_exception_type(UnknownTopicOrPartitionError),
        wait=wait_exponential(multiplier=0.1, max=1),
        stop=stop_after_delay(3),
        reraise=True,
    )(_max_bytes, admin, topic)
    return min(LIMIT, takes - max(1024, takes // 25))


async def _max_bytes(admin: AIOKafkaAdminClient, topic: str) -> int:
    wanted = ConfigResource(ConfigResourceType.TOPIC, topic, {MAX_BYTES: None})
    [response] = await admin.describe_configs([wanted])
    [resource] = response.to_object()["resources"]
    if resource["error_code"]:
        raise for_code(resource["error_code"])(resource["error_message"])
    [takes] = (
        int(entry["config_value"])
        for entry in resource["config_entries"]
        if entry["config_names"] == MAX_BYTES
    )
    return takes


@dataclass(frozen=True)
class Letter:
    key: bytes | None
    value: bytes
    headers: dict[str, str]


def letter(consumer: str, record: Any, reason: str, limit: int = LIMIT) -> Letter:
    """What ``record`` (an aiokafka ConsumerRecord) is parked with: why, by whom and from where,
    and as much of its own headers, key and value as fits ``limit`` bytes, in that order."""
    own = {
        "dlq_reason": reason[:2000],
        "dlq_consumer": consumer,
        "dlq_origin_topic": record.topic,
        "dlq_origin_partition": str(record.partition),
        "dlq_origin_offset": str(record.offset),
    }
    room = max(0, limit - _size(own))
    # What a producer sent can be as long as the broker takes, its key and headers too; and a
    # header's bytes that are not UTF-8 take three each once read as text.
    theirs = {
        k: v.decode(errors="replace")
        for k, v in record.headers or ()
        if not k.startswith(PREFIX)  # a replayed record that fails again gets fresh ones
    }
    kept: dict[str, str] = {}
    used = 0
    for name, text in theirs.items():  # a record may have many thousand headers
        size = _size({name: text})
        if used + size <= room:
            kept[name], used = text, used + size
    if len(kept) < len(theirs):
        own[HEADERS_CUT] = f"{used} of {_size(theirs)} bytes"
    room -= used
    key, value = record.key, record.value or b""
    if key is not None and len(key) > room:
        own[KEY_CUT] = f"{room} of {len(key)} bytes"
        key = key[:room]
    room -= len(key or b"")
    if len(value) > room:
        own[CUT] = f"{room} of {len(value)} bytes"
        value = value[:room]
    return Letter(key, value, kept | own)


def _size(headers: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())


@dataclass(frozen=True)
class DeadLetter:
    partition: int  # where it is on the dead-letter topic
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), "")

    @property
    def origin_topic(self) -> str:
        return self.header("dlq_origin_topic")

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(PREFIX)]

    @property
    def cut(self) -> str:
        """How much of its headers, key and value the letter kept, if cut when parked: "" if
        whole."""
        cuts = (
            ("headers", self.header(HEADERS_CUT)),
            ("key", self.header(KEY_CUT)),
            ("value", self.header(CUT)),
        )
        return ", ".join(f"{part} {kept}" for part, kept in cuts if kept)

    def describe(self) -> str:
        value = self.value.decode(errors="replace")
        preview = value if len(value) <= PREVIEW else value[:PREVIEW] + "…"
        key = self.key.decode(errors="replace") if self.key is not None else "-"
        origin = (
            f"{self.origin_topic}[{self.header('dlq_origin_partition')}]"
            f"@{self.header('dlq_origin_offset')}"
        )
        cut = (
            f"\n  cut when parked ({self.cut}), so never replayed: the whole record is at"
            f" {origin} while that topic keeps it"
            if self.cut
            else ""
        )
        return (
            f"[{self.partition}@{self.offset}] {self.header('dlq_reason')}\n"
            f"  from {origin} by {self.header('dlq_consumer')}\n"
            f"  key {key}  value {preview}{cut}"
        )


@contextlib.asynccontextmanager
async def _reader(
    settings: ServiceSettings, service: str, group: str | None
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A consumer assigned every partition of the dead-letter topic, from ``group``'s offsets."""
    consumer = AIOKafkaConsumer(
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.kafka_client_options(),
    )
    try:
        await consumer.start()
        topic = topics.dead_letter(service)
        partitions = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(partitions)
        if group is None:
            await consumer.seek_to_beginning(*partitions)
        yield consumer, partitions
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(20):  # metadata for a topic can lag right after it is created
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        # aiokafka has no public call that fetches an unassigned topic's metadata.
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    return set()


async def _until_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> AsyncIterator[DeadLetter]:
    """What the partitions hold from the consumer's positions up to their end right now."""
    end = await consumer.end_offsets(partitions) if partitions else {}
    pending = [tp for tp in partitions if await consumer.position(tp) < end[tp]]
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, records in batch.items():
            for r in records:
                if r.offset < end[tp]:
                    yield DeadLetter(r.partition, r.offset, r.key, r.value or b"", tuple(r.headers))
        pending = [tp for tp in pending if await consumer.position(tp) < end[tp]]


async def read(settings: ServiceSettings, service: str) -> list[DeadLetter]:
    """Every record on ``service``'s dead-letter topic, oldest first per partition."""
    async with _reader(settings, service, group=None) as (consumer, partitions):
        return [letter async for letter in _until_end(consumer, partitions)]


def replay_group(service: str, origin_topic: str) -> str:
    return f"crossgen-{service}-replay-{origin_topic}"


async def replay(
    settings: ServiceSettings,
    service: str,
    *,
    origin_topic: str | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """Re-publish dead letters not replayed before to their origin topic; returns them, and
    those of the origin topics passed over because they were cut when parked."""
    origins = (
        [origin_topic]
        if origin_topic
        else sorted({d.origin_topic for d in await read(settings, service) if d.origin_topic})
    )
    producer = AIOKafkaProducer(
        enable_idempotence=True, acks="all", **settings.kafka_client_options()
    )
    replayed: list[DeadLetter] = []
    try:
        await producer.start()
        for origin in origins:
            budget = None if limit is None else limit - len(replayed)
            if budget is not None and budget <= 0:
                break
            replayed += await _replay_origin(settings, service, origin, producer, budget)
    finally:
        await producer.stop()
    return replayed


async def _replay_origin(
    settings: ServiceSettings,
    service: str,
    origin: str,
    producer: AIOKafkaProducer,
    limit: int | None,
) -> list[DeadLetter]:
    replayed: list[DeadLetter] = []
    done: dict[TopicPartition, int] = {}
    async with _reader(settings, service, replay_group(service, origin)) as (consumer, partitions):
        async for letter in _until_end(consumer, partitions):
            if limit is not None and len(replayed) >= limit:
                break
            if letter.origin_topic == origin:
                if not letter.cut:
                    await producer.send_and_wait(
                        origin, letter.value, key=letter.key, headers=letter.original_headers
                    )
                replayed.append(letter)
            # Other origins' letters are passed over here: their own groups replay them.
            done[TopicPartition(topics.dead_letter(service), letter.partition)] = letter.offset + 1
        if done:
            await consumer.commit(done)
    return replayed
