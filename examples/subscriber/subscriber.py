"""An example subscriber to Crossgen's events: copy it and put your system's work in ``handle``.

    python subscriber.py --group my-team --topic crossgen.participants.v1 --schemas DIR

It reads in a consumer group of its own, decodes each record as a CloudEvent in Kafka binary
mode, validates the data against the JSON Schema its ``dataschema`` names, and handles each event
id once: the id is written to SQLite in the same transaction as the work, and the Kafka offset is
committed only after that transaction, so a redelivered event finds its id and is skipped.
"""

import argparse
import asyncio
import contextlib
import json
import signal
import sqlite3
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from jsonschema import Draft202012Validator

TABLES = """
CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS rejected (
    topic TEXT, partition INTEGER, "offset" INTEGER, reason TEXT,
    PRIMARY KEY (topic, partition, "offset")
);
"""


class Rejected(ValueError):
    """Not a valid Crossgen event: kept in the ``rejected`` table, never dropped silently."""


def handle(db: sqlite3.Connection, event: BaseCloudEvent) -> None:
    """Your work goes here: what it writes to ``db`` commits together with the event id."""
    line = {
        "id": event.get_id(),
        "type": event.get_type(),
        "subject": event.get_subject(),
        "data": event.get_data(),
    }
    print(json.dumps(line), flush=True)


@cache
def validator(schema_file: Path) -> Draft202012Validator:
    schema = json.loads(schema_file.read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def decode(record: Any, schemas: Path) -> BaseCloudEvent | None:
    """The record's event, or None for an event type this subscriber has no schema of."""
    try:
        event = from_binary_event(
            KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value or b"")
        )
    except Exception as exc:  # the SDK raises several unrelated types for what it cannot read
        raise Rejected(f"not a CloudEvent in Kafka binary mode: {exc}") from exc
    dataschema = event.get_dataschema()
    if not dataschema:
        raise Rejected("no dataschema")
    # The URI identifies the schema; its file is named by the URI's last segment.
    schema_file = schemas / urlsplit(dataschema).path.rpartition("/")[2]
    if not schema_file.is_file():
        return None  # a type added after this copy of the schemas: not ours to judge
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<data>'}: {e.message}"
        for e in validator(schema_file).iter_errors(event.get_data())
    ]
    if errors:
        raise Rejected("; ".join(sorted(errors)))
    return event


def process(db: sqlite3.Connection, record: Any, schemas: Path) -> None:
    try:
        event = decode(record, schemas)
    except Rejected as exc:
        print(
            f"rejected {record.topic}[{record.partition}]@{record.offset}: {exc}", file=sys.stderr
        )
        with db:
            db.execute(
                "INSERT OR IGNORE INTO rejected VALUES (?, ?, ?, ?)",
                (record.topic, record.partition, record.offset, str(exc)),
            )
        return
    if event is None:
        print(f"ignored {record.topic}[{record.partition}]@{record.offset}", file=sys.stderr)
        return
    with db:  # one transaction: the event id and the work commit together, or neither does
        new = db.execute("INSERT OR IGNORE INTO handled VALUES (?)", (event.get_id(),)).rowcount
        if new:
            handle(db, event)


async def run(args: argparse.Namespace) -> None:
    db = sqlite3.connect(args.db)
    db.executescript(TABLES)
    consumer = AIOKafkaConsumer(
        *args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,  # offsets are committed after the work, below
        auto_offset_reset="earliest",
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                for record in records:
                    process(db, record, args.schemas)
                # A crash before this commit redelivers these records; their ids are in SQLite.
                with contextlib.suppress(CommitFailedError):  # the partition moved meanwhile
                    await consumer.commit({partition: records[-1].offset + 1})
    finally:
        await consumer.stop()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="localhost:9092", help="Kafka bootstrap servers")
    parser.add_argument("--group", required=True, help="your consumer group id")
    parser.add_argument("--topic", action="append", required=True, help="repeat for more")
    parser.add_argument(
        "--schemas",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "schemas",
        help="directory of Crossgen's JSON Schemas",
    )
    parser.add_argument("--db", type=Path, default=Path("subscriber.sqlite3"))
    args = parser.parse_args()
    if not any(args.schemas.glob("*.json")):
        parser.error(f"no JSON Schemas in {args.schemas}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
