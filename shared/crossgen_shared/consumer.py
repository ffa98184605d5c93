"""Consuming events: decode, dead-letter what is invalid, handle each event id once.

Each handler runs in a unit of work that also records the event id in the inbox, so a redelivered
event has no second effect. The Kafka offset is committed only after that transaction (FastStream
acks after the handler returns; on an exception it seeks back and the record comes again).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from crossgen_shared import dead_letters
from crossgen_shared.db import refused_data
from crossgen_shared.envelope import Envelope, InvalidEvent, decode
from crossgen_shared.events import Event
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

CONSUMED = Counter(
    "crossgen_events_consumed_total", "Events consumed", ["consumer", "type", "outcome"]
)

Handler = Callable[[Any, Envelope, UnitOfWork], Awaitable[None]]


class NotReady(Exception):
    """The event refers to something this service has not seen yet: retry it later.

    Events arrive on several topics, so an event may come before the one it depends on.
    """


@dataclass
class Consumer:
    """One consumer of one topic, in the service's consumer group."""

    service: str
    topic: str
    handlers: Mapping[type[Event], Handler]
    uow: Callable[[], UnitOfWork]
    max_attempts: int = 30
    # Kafka consumers in the group, so that partitions are handled side by side (in order within
    # each): a handler mostly waits for the database, one partition at a time left it idle. As
    # many as ServiceSettings.topic_partitions (3 by default); more would get no partition.
    workers: int = 3
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.topic}"

    def register(self, broker: KafkaBroker) -> None:
        subscriber = broker.subscriber(
            self.topic,
            group_id=f"crossgen-{self.service}",
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            max_workers=self.workers,
            title=f"{self.service} <- {self.topic}",
            description=self.description,
        )
        broker_ref = broker

        async def consume(message: KafkaMessage) -> None:
            await self.handle(broker_ref, message)

        subscriber(consume)

    @property
    def description(self) -> str:
        return ", ".join(cls.event_type() for cls in self.handlers)

    async def handle(self, broker: KafkaBroker, message: Any) -> None:
        record = message.raw_message
        headers = {k: v for k, v in record.headers or ()}
        try:
            envelope = decode(headers, record.key, record.value)
        except InvalidEvent as exc:
            await self.dead_letter(broker, record, str(exc))
            return
        handler = self.handlers.get(type(envelope.event))
        if handler is None:
            CONSUMED.labels(self.name, envelope.type, "ignored").inc()
            return

        async def work(uow: UnitOfWork) -> None:
            await handler(envelope.event, envelope, uow)

        await self.apply_once(broker, record, envelope.id, envelope.type, work)

    async def apply_once(
        self,
        broker: KafkaBroker,
        record: Any,
        event_id: str,
        label: str,
        work: Callable[[UnitOfWork], Awaitable[None]],
    ) -> None:
        """Run ``work`` for ``event_id`` once, in a unit of work with the inbox claim.

        Trouble that may pass is retried (the exception makes FastStream redeliver the record);
        a record the work rejects as invalid (InvalidEvent), or that keeps failing, is parked.
        """
        try:
            async with self.uow() as uow:
                if await uow.claim(self.name, event_id):
                    await work(uow)
                    await uow.commit()
                    CONSUMED.labels(self.name, label, "handled").inc()
                else:
                    CONSUMED.labels(self.name, label, "duplicate").inc()
        except InvalidEvent as exc:
            await self.dead_letter(broker, record, str(exc))
        except Exception as exc:
            if refused_data(exc):
                # The record's data does not fit the database (too long, NUL, out of range):
                # every retry would fail the same way.
                await self.dead_letter(broker, record, f"data refused: {getattr(exc, 'orig', exc)}")
                return
            if _is_transient(exc):
                # Infrastructure trouble is not the record's fault: never dead-letter, retry.
                log.warning("%s: database unavailable for %s; retrying", self.name, event_id)
                await asyncio.sleep(1.0)
                raise
            attempt = self.attempts.get(event_id, 0) + 1
            if attempt >= self.max_attempts:
                self.attempts.pop(event_id, None)
                await self.dead_letter(broker, record, f"{type(exc).__name__}: {exc}")
                return
            self.attempts[event_id] = attempt
            log.warning("%s: %s attempt %d failed: %s", self.name, event_id, attempt, exc)
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
            raise
        self.attempts.pop(event_id, None)

    async def dead_letter(self, broker: KafkaBroker, record: Any, reason: str) -> None:
        """Park a record with why and where it came from; the consumer goes on with the next."""
        CONSUMED.labels(self.name, "-", "dead-lettered").inc()
        log.warning(
            "%s: dead-lettering %s[%d]@%d: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        await dead_letters.park(broker, self.service, self.name, record, reason)


# SQLSTATE classes worth a retry: a server that cannot serve now (connection exception,
# insufficient resources, operator intervention: starting up, shutting down, too many clients),
# and a transaction the server rolled back to let another through (deadlock, serialization
# failure). asyncpg's errors for them reach us as plain DBAPIErrors, not OperationalErrors.
_UNAVAILABLE = ("08", "53", "57P", "40")


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return exc.connection_invalidated or sqlstate.startswith(_UNAVAILABLE)
