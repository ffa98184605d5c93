"""What the fault suite's oracle judges, collected from the running system: each service's
database, the topics read from the beginning, and the SMTP sink. Also whether the system has
caught up: outboxes published, consumer groups at the end of their partitions, no mail waiting.
"""

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from crossgen_local.hris_feed import seq_of
from crossgen_local.infra import LocalInfra
from crossgen_local.oracle import Facts, Notification, Participant, Published
from crossgen_local.stack import SERVICES
from crossgen_shared import topics
from crossgen_shared.events import BY_TYPE
from crossgen_shared.group_watch import RESTARTING, records_unread

DIRECTORY = "select employee_number, display_name from employees"
CONTACTS = "select participant_id::text, display_name from contacts"


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on ``topic`` from the beginning, each partition in order (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


async def partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await _partitions(consumer, topic)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer._client.force_metadata_update()  # the topic may be new to this client
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def published(records: Sequence[Any]) -> list[Published]:
    events = []
    for record in records:
        headers = dict(record.headers or ())
        model = BY_TYPE.get(headers.get("ce_type", b"").decode())
        if model is not None:
            data = json.loads(record.value)
            events.append(Published(headers["ce_id"].decode(), model.name, data))
    return events


async def rows(infra: LocalInfra, service: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    # No pool: the server is stopped and started under us, and each read is a fresh look.
    engine = create_async_engine(
        infra.postgres.url(service), poolclass=NullPool, connect_args={"timeout": 5}
    )
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(query), params)]
    finally:
        await engine.dispose()


async def stored_seqs(infra: LocalInfra) -> dict[str, int]:
    """Which record each stored name came from, right now: the directory and the contacts."""
    directory = await rows(infra, "matching", DIRECTORY)
    contacts = await rows(infra, "notifications", CONTACTS)
    return {f"directory {n}": seq_of(name or "") for n, name in directory} | {
        f"contact {p}": seq_of(name) for p, name in contacts
    }


async def collect(infra: LocalInfra, accepted: list[tuple[str, int]], program_id: str) -> Facts:
    bootstrap = infra.kafka.bootstrap_servers
    directory = await rows(infra, "matching", DIRECTORY)
    participants = await rows(
        infra,
        "matching",
        "select id::text, person_id, program_id::text, display_name from participants",
    )
    contacts = await rows(infra, "notifications", CONTACTS)
    notifications = await rows(
        infra,
        "notifications",
        "select id::text, source_event_id, template, person_id, status from notifications",
    )
    dead = [
        record
        for service in SERVICES
        for record in await read_topic(bootstrap, topics.dead_letter(service))
    ]
    return Facts(
        accepted=accepted,
        program_id=program_id,
        directory={n: name or "" for n, name in directory},
        participants=[Participant(*row) for row in participants],
        contacts={p: name for p, name in contacts},
        participant_events=published(await read_topic(bootstrap, topics.PARTICIPANTS)),
        pairing_events=published(await read_topic(bootstrap, topics.PAIRINGS)),
        notifications=[Notification(*row) for row in notifications],
        emails=[
            mail.message["Message-ID"].strip("<>").removesuffix("@crossgen")
            for mail in infra.smtp.messages
        ],
        dead_letters=[
            dict(r.headers).get("dlq_reason", b"?").decode(errors="replace") for r in dead
        ],
    )


async def unfinished(infra: LocalInfra) -> list[str]:
    """What the services still have to do: events to publish, records to consume, mail to send."""
    waiting = []
    for service in SERVICES:
        [(outbox,)] = await rows(
            infra, service, "select count(*) from outbox where published_at is null"
        )
        if outbox:
            waiting.append(f"{service}: {outbox} events in the outbox")
    [(mail,)] = await rows(
        infra, "notifications", "select count(*) from notifications where status = 'pending'"
    )
    if mail:
        waiting.append(f"notifications: {mail} messages pending")
    return waiting + await consumer_lag(infra.kafka.bootstrap_servers)


async def consumer_lag(bootstrap: str) -> list[str]:
    """Each service's group behind the end of a partition it has committed on."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        behind = []
        for service in SERVICES:
            lags = await records_unread(admin, consumer, topics.consumer_group(service))
            if lags:
                behind.append(lag_line(service, lags))
        return behind
    finally:
        await consumer.stop()
        await admin.close()


def lag_line(service: str, lags: Mapping[TopicPartition, int]) -> str:
    """How far a service's group is behind, and on which partitions."""
    where = ", ".join(f"{tp.topic}[{tp.partition}]: {n}" for tp, n in sorted(lags.items()) if n)
    return f"{service}: {sum(lags.values())} records not consumed yet ({where})"


def errors_logged(log_dir: Path) -> list[str]:
    """The services' log lines at ERROR or above, as "<process> <line>". Every fault of the
    suite is trouble that passes, which the services log as WARNINGs: such a line is one a
    person would be woken for, and worth reading."""
    return [
        f"{process} {line}"
        for process, line in _service_log_lines(log_dir)
        if line.split(" ", 3)[2:3] in (["ERROR"], ["CRITICAL"])
    ]


def consumer_restarts(log_dir: Path) -> list[str]:
    """Each consumer a service restarted (its group watch's line in the service's text log):
    "<process> <time>: <consumer>: partitions ... held by no member ... for N s"."""
    found = []
    for process, line in _service_log_lines(log_dir):
        _, _, message = line.partition(" crossgen_shared.group_watch ")
        what, restarted, _ = message.partition(f"; {RESTARTING}.")
        if restarted:
            found.append(f"{process} {line[11:19]}: {what}")
    return found


def _service_log_lines(log_dir: Path) -> Iterator[tuple[str, str]]:
    """Each line of each process's log in ``log_dir``, with the process; not the broker's."""
    for path in sorted(log_dir.glob("*.log")):
        if path.name != "kafka.log":
            for line in path.read_text(errors="replace").splitlines():
                yield path.stem, line
