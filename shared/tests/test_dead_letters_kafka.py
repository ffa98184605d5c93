"""Over a real Kafka broker: a dead letter fits its topic when that topic takes less than Kafka's
default (a platform team may create it so)."""

from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from crossgen_local.kafka import LocalKafka
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import dead_letters, topics
from crossgen_shared.events import ParticipantJoined

from .messaging import create_topic, eventually, fresh_settings, messaging_service
from .test_consumer_kafka import note

pytestmark = pytest.mark.integration

TAKES = 100_000  # bytes a record on the dead-letter topic may have


async def test_a_letter_is_cut_to_fit_a_dead_letter_topic_that_takes_less(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka
) -> None:
    """Cut to Kafka's default only, a 300 kB letter was refused by such a topic, and the outbox
    relay, which publishes in order, tried it forever: the letter parked after it, and every
    event of the service, waited behind it."""
    name, topic = f"fitting{uuid4().hex[:6]}", f"crossgen.test.fitting.{uuid4().hex[:8]}"
    await create_topic(
        kafka.bootstrap_servers, topics.dead_letter(name), max_message_bytes=str(TAKES)
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for value in (b"x" * 300_000, b"\x00 not json"):
            await producer.send_and_wait(topic, value, partition=0)  # parked in this order
    finally:
        await producer.stop()
    settings = fresh_settings(
        postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers, outbox_poll_interval=0.1
    )
    service = await messaging_service(name, settings)
    service.consume(topic, {ParticipantJoined: note})

    async def parked() -> bool:
        return len(await dead_letters.read(settings, name)) == 2

    async with service.running():
        await eventually(parked, within=60)
    large, small = await dead_letters.read(settings, name)
    assert small.value == b"\x00 not json"
    kept = len(large.value)
    assert large.value == b"x" * kept and large.cut == f"value {kept} of 300000 bytes"
    whole = kept + sum(len(k) + len(v) for k, v in large.headers)
    assert TAKES - TAKES // 10 < whole < TAKES
