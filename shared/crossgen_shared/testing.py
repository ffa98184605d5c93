"""Helpers for handler tests: publish an event into a (test) broker, read the outbox, raise a
database error as SQLAlchemy does."""

from typing import Any

import asyncpg  # type: ignore[import-untyped]
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from sqlalchemy import select
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crossgen_shared import topics
from crossgen_shared.db import OutboxRecord
from crossgen_shared.envelope import Envelope, decode, encode
from crossgen_shared.events import Event


async def publish_event(
    broker: KafkaBroker,
    event: Event,
    *,
    source: str = "/test",
    event_id: str | None = None,
    traceparent: str | None = None,
) -> str:
    """Publish ``event`` as the real producers do (CloudEvents binary mode), in the trace
    ``traceparent`` names if given; returns its id."""
    record = encode(event, source=source, event_id=event_id)
    headers = {k: v.decode() for k, v in record.headers.items()}
    if traceparent is not None:
        headers["traceparent"] = traceparent
    await broker.publish(record.value, event.topic, key=record.key, headers=headers)
    return record.headers["ce_id"].decode()


def consumer_record(
    event: Event, offset: int, *, event_id: str | None = None, partition: int = 0
) -> ConsumerRecord[Any, Any]:
    """``event`` as a consumer reads it from its topic, for feeding a batch to ``handle``."""
    wire = encode(event, source="/test", event_id=event_id)
    headers = list(wire.headers.items())
    return kafka_record(event.topic, wire.key, wire.value, headers, offset, partition=partition)


def kafka_record(
    topic: str,
    key: bytes,
    value: bytes,
    headers: list[tuple[str, bytes]],
    offset: int,
    *,
    partition: int = 0,
    timestamp: int = 0,
) -> ConsumerRecord[Any, Any]:
    """Any record as a consumer reads it (an event's: ``consumer_record``)."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=headers,
    )


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[Envelope]:
    """Every event a service has emitted so far, in order."""
    return [
        decode({k: v.encode() for k, v in row.headers.items()}, row.key, row.value)
        for row in await outbox_records(sessions)
    ]


async def outbox_records(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxRecord]:
    """The outbox's rows of every event a service has emitted so far, headers and all, in order."""
    return await _outbox_rows(sessions, dead_letters=False)


async def parked(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxRecord]:
    """Every record a service's consumers have dead-lettered so far (its outbox's rows for the
    dead-letter topic), in order."""
    return await _outbox_rows(sessions, dead_letters=True)


async def _outbox_rows(
    sessions: async_sessionmaker[AsyncSession], *, dead_letters: bool
) -> list[OutboxRecord]:
    async with sessions() as session:
        rows = await session.scalars(select(OutboxRecord).order_by(OutboxRecord.seq))
        return [row for row in rows if topics.is_dead_letter(row.topic) == dead_letters]


_DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)


def as_sqlalchemy_raises_it(error: Exception) -> DBAPIError:
    """What SQLAlchemy's asyncpg dialect makes of asyncpg's ``error``, raised as it connects."""
    translated = next(
        _DBAPI._asyncpg_error_translate[cls](str(error), error)
        for cls in type(error).__mro__
        if cls in _DBAPI._asyncpg_error_translate
    )
    return DBAPIError.instance("connect", None, translated, _DBAPI.Error)
