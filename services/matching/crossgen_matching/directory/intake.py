"""The HRIS topic (``crossgen.hris.v1``) into the directory.

Its records are vendor payloads, not CloudEvents: JSON values whose format a ``hris-format``
header names (``scim``, ``bamboohr``, ``merge``) or the payload shows. Otherwise it is consumed as
every topic is (consumer.py): in matching's group, in batches (which the broker gathers for up to
``hris_batch_wait``: settings.py says why only here), the inbox keyed on the record's
``hris-event-id`` header or else a digest of its place, time and content, the offsets committed
after the transaction; a record that cannot be read or applied goes to the dead-letter topic with
the reason, and the feed goes on.
"""

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from crossgen_matching import admission
from crossgen_matching.directory import employees, payload, read_ahead, vendors
from crossgen_matching.directory.record import EmployeeRecord
from crossgen_shared import topics
from crossgen_shared.consumer import Consumer, Received, record_digest
from crossgen_shared.envelope import InvalidEvent
from crossgen_shared.errors import RequestError
from crossgen_shared.service import Service
from crossgen_shared.unit_of_work import UnitOfWork

FORMAT_HEADER = "hris-format"
EVENT_ID_HEADER = "hris-event-id"

log = logging.getLogger(__name__)


class HrisIntake(Consumer):
    @property
    def description(self) -> str:
        return f"employee records: {', '.join(vendors.MAPPERS)} (header {FORMAT_HEADER})"

    def receive(self, record: Any) -> Received:
        try:
            format_name, found = read(record)
        except ValueError as exc:
            raise InvalidEvent(str(exc)) from exc

        async def work(uow: UnitOfWork) -> None:
            for incoming in found:
                try:
                    change = await employees.record(uow, incoming)
                except RequestError as exc:
                    raise InvalidEvent(str(exc)) from exc
                # At DEBUG: a full sync would log a line per employee (crossgen_events_consumed
                # counts the records), and at 200 records/s the lines took 1.5 % of the CPU.
                log.debug("%s: %s %s", self.name, change.outcome, incoming.employee_number)

        return Received(record, record_id(record), f"hris:{format_name}", work, found)


@asynccontextmanager
async def reading_ahead(uow: UnitOfWork, items: list[list[EmployeeRecord]]) -> AsyncIterator[None]:
    """Read what the batch's records will ask of the directory at once (read_ahead.py). The
    automatic programs' share comes first, as in every transaction that enrols people: the
    program, then its people. The read itself locks the people before it asks who is enrolled,
    so a batch of automatic enrolment about them has committed by then, or waits."""
    await admission.automatic_programs(uow)
    found = [incoming for records in items for incoming in records]
    # One source record alone (a batch redone one at a time) writes each row at once, so that
    # a conflict is told of the record that caused it.
    await read_ahead.read(uow, found, together=len(items) > 1)
    yield


def register(service: Service, batch_wait: float) -> None:
    service.consume(topics.HRIS, {}, in_turn=reading_ahead, batch_wait=batch_wait, kind=HrisIntake)


def read(record: Any) -> tuple[str, list[EmployeeRecord]]:
    """The format and employee records of a Kafka record; ValueError saying what is wrong."""
    headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
    try:
        value = payload.parse((record.value or b"").decode())
    except ValueError as exc:
        raise ValueError(f"the value is not JSON: {exc}") from exc
    name = vendors.format_of(value, headers.get(FORMAT_HEADER))
    received_at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    try:
        return name, vendors.MAPPERS[name].employees(
            value, source=f"hris:{name}", received_at=received_at
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{name}: {problems}") from exc
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def record_id(record: Any) -> str:
    """What the inbox knows the record by: the producer's event id, else its digest."""
    for key, value in record.headers or ():
        if key == EVENT_ID_HEADER and value:
            event_id = value.decode(errors="replace")
            # The inbox keeps 64 characters; a longer id is kept as its digest.
            return event_id if len(event_id) <= 64 else hashlib.sha256(value).hexdigest()
    return record_digest(record)
