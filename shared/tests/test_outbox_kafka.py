"""Over a real Kafka broker: the relay's round is bounded by bytes as well as by rows, so records
near Kafka's limit (dead letters of large bad records) do not fill a service's memory; and a
record the broker refuses shows in a metric."""

import tracemalloc
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select, update

from crossgen_local.evidence import read_topic
from crossgen_local.kafka import LocalKafka
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared.db import OutboxRecord
from crossgen_shared.outbox import ROUND_BYTES

from .messaging import create_topic, fresh_settings, messaging_service

pytestmark = pytest.mark.integration

LARGE = 1_000_000  # bytes: as a dead letter may be
OLDEST = "crossgen_outbox_oldest_waiting_seconds"


@pytest.mark.parametrize("large", ["value", "headers"])
async def test_a_round_takes_as_many_large_records_as_fit_its_bytes(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka, large: str
) -> None:
    """40 records of 1 MB waiting: one round took all 40 (a backlog of 500 would have taken
    500 MB), and now takes those that start within ``ROUND_BYTES``; the next rounds go on at
    once, in order. A letter's 1 MB may be mostly headers: they count too."""
    settings = fresh_settings(postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers)
    service = await messaging_service("relaying", settings)
    topic = f"crossgen.test.large.{uuid4().hex[:8]}"
    for n in range(40):
        async with service.unit_of_work() as uow:
            if large == "value":
                uow.forward(topic, b"same key", bytes([n]) * LARGE, {})
            else:  # the header's JSON, {"h": "…"}, is 1 MB too
                uow.forward(topic, b"same key", bytes([n]), {"h": "x" * (LARGE - 10)})
            await uow.commit()
    await service.broker.connect()
    try:
        tracemalloc.start()
        try:
            more = await service.relay.publish_pending()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        async with service.sessions() as session:
            first = await session.scalar(
                select(func.count()).where(OutboxRecord.published_at.is_not(None))
            )
        while more:
            more = await service.relay.publish_pending()
    finally:
        await service.broker.stop()
        await service.engine.dispose()
    assert first == ROUND_BYTES // LARGE + 1  # each record that starts within the bytes
    assert peak < 2 * ROUND_BYTES, f"{peak / 2**20:.0f} MiB at the peak"
    published = await read_topic(kafka.bootstrap_servers, topic)
    assert [record.value[0] for record in published] == list(range(40))


async def test_an_event_the_broker_refuses_shows_in_the_oldest_waiting_age(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka
) -> None:
    """The relay retries a record the broker refuses (here, too large for its topic), holding
    every later event behind it: before, only its log said so; now a metric an alert can watch
    grows with the wait, and is 0 again once nothing waits."""
    settings = fresh_settings(postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers)
    service = await messaging_service("ageing", settings)
    topic = f"crossgen.test.small.{uuid4().hex[:8]}"
    await create_topic(kafka.bootstrap_servers, topic, max_message_bytes="2000")
    async with service.unit_of_work() as uow:
        uow.forward(topic, b"key", b"x" * 5000, {})
        await uow.commit()
    async with service.sessions() as session, session.begin():
        await session.execute(
            update(OutboxRecord).values(created_at=func.now() - timedelta(minutes=1))
        )
    await service.broker.connect()
    try:
        with pytest.raises(KafkaError):
            await service.relay.publish_pending()
        refused = REGISTRY.get_sample_value(OLDEST)
        async with service.sessions() as session, session.begin():
            await session.execute(update(OutboxRecord).values(value=b"x"))  # fixed by hand
        await service.relay.publish_pending()
        await service.relay.publish_pending()
    finally:
        await service.broker.stop()
        await service.engine.dispose()
    assert refused is not None and 60 <= refused < 120
    assert REGISTRY.get_sample_value(OLDEST) == 0


async def test_a_round_marks_its_records_published_without_reading_them_back(
    postgres: LocalPostgres, tokens: TokenIssuer, kafka: LocalKafka
) -> None:
    """The round's session ends with it: having the database return the marked rows, to bring
    objects nobody reads up to date, cost about 12 µs of CPU an event (a quarter of a round)."""
    settings = fresh_settings(postgres, tokens, kafka_bootstrap_servers=kafka.bootstrap_servers)
    service = await messaging_service("marking", settings)
    topic = f"crossgen.test.marked.{uuid4().hex[:8]}"
    await create_topic(kafka.bootstrap_servers, topic)
    async with service.unit_of_work() as uow:
        for n in range(3):
            uow.forward(topic, b"key", bytes([n]), {})
        await uow.commit()
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])  # (connection, cursor, statement, ...)

    event.listen(service.engine.sync_engine, "before_cursor_execute", seen)
    await service.broker.connect()
    try:
        await service.relay.publish_pending()
    finally:
        await service.broker.stop()
        await service.engine.dispose()
    marked = [s for s in statements if s.lstrip().upper().startswith("UPDATE OUTBOX")]
    assert len(marked) == 1 and "RETURNING" not in marked[0].upper(), marked
    assert [record.value for record in await read_topic(kafka.bootstrap_servers, topic)] == [
        b"\x00",
        b"\x01",
        b"\x02",
    ]
