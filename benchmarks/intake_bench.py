"""Matching's share of the pipeline, in one process: HRIS records through the intake consumer,
then the participant-joined events it emitted through the join consumer, against a real
PostgreSQL but no Kafka.

    python benchmarks/intake_bench.py [--records 2000] [--batch 100] [--runs 3]

The pipeline benchmark runs six busy processes on two cores, where a change of a third in one
service's CPU drowns in the host's noise. This measures the two consumers matching runs per HRIS
record by themselves: CPU ms and SQL statements per record, each stage, as the pipeline feeds
them (a batch of records, then the events that batch emitted, as a program that enrols everyone
grows). The best of --runs, each on a fresh database. Results: a table on stdout and
benchmarks/results/intake.json.
"""

import argparse
import asyncio
import datetime
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import host  # benchmarks/ is on the path: python runs this file as a script
import httpx
from sqlalchemy import event, select

import crossgen_matching
from crossgen_local.databases import migrated_database
from crossgen_local.hris_feed import create_program, scim_user, workforce
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching import views
from crossgen_matching.app import build
from crossgen_matching.settings import MatchingSettings
from crossgen_shared import topics
from crossgen_shared.db import OutboxRecord
from crossgen_shared.service import Service

HERE = Path(__file__).resolve().parent
MIGRATIONS = Path(crossgen_matching.__file__).parent / "migrations"
STAGES = ("intake", "join")


@dataclass(frozen=True)
class Record:
    """What the consumers read of an aiokafka ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp: int


async def run(url: str, records: int, batch: int) -> dict[str, dict[str, float]]:
    tokens = TokenIssuer()
    matching = build(
        MatchingSettings(
            database_url=url,
            jwt_issuer=tokens.issuer,
            jwt_audience=tokens.audience,
            jwt_public_key=tokens.public_key_pem,
        )
    )
    await program(matching, tokens)
    statements: Counter[str] = Counter()
    stage = ["setup"]
    event.listen(
        matching.engine.sync_engine,
        "before_cursor_execute",
        lambda *_: statements.update([stage[0]]),
    )
    intake = next(c for c in matching.consumers if c.topic == topics.HRIS)
    joins = next(c for c in matching.consumers if c.topic == topics.PARTICIPANTS)
    now = datetime.datetime.now(UTC)
    feed = [
        Record(
            topics.HRIS,
            0,
            offset,
            employee.number.encode(),
            json.dumps(scim_user(employee, 1, now)).encode(),
            [("hris-format", b"scim"), ("hris-event-id", f"{employee.number}:1".encode())],
            int(time.time() * 1000),
        )
        for offset, employee in enumerate(workforce(records))
    ]
    cpu = dict.fromkeys(STAGES, 0.0)
    emitted = 0  # outbox sequence read so far
    for start in range(0, len(feed), batch):
        stage[0] = "intake"
        began = time.process_time()
        await intake.handle(feed[start : start + batch])
        cpu["intake"] += time.process_time() - began
        stage[0] = "setup"
        joined, emitted = await participant_events(matching, emitted)
        stage[0] = "join"
        began = time.process_time()
        await joins.handle(joined)
        cpu["join"] += time.process_time() - began
    await matching.engine.dispose()
    return {
        name: {
            "cpu_ms_per_record": 1000 * cpu[name] / records,
            "statements_per_record": statements[name] / records,
        }
        for name in STAGES
    }


async def program(matching: Service, tokens: TokenIssuer) -> None:
    """A program enrolling everyone the feed brings, as the pipeline benchmark makes it."""
    transport = httpx.ASGITransport(app=matching.http_app([views.router]))
    async with httpx.AsyncClient(transport=transport, base_url="http://matching") as http:
        await create_program(http, tokens.headers("bench-admin", "admin"), "Intake bench")


async def participant_events(matching: Service, after: int) -> tuple[list[Record], int]:
    """The participant-joined events emitted since outbox sequence ``after``, as records."""
    async with matching.sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxRecord)
                .where(OutboxRecord.topic == topics.PARTICIPANTS, OutboxRecord.seq > after)
                .order_by(OutboxRecord.seq)
            )
        ).all()
    records = [
        Record(row.topic, 0, row.seq, row.key, row.value, _encoded(row.headers), 0) for row in rows
    ]
    return records, max([after, *(r.seq for r in rows)])


def _encoded(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(key, value.encode()) for key, value in headers.items()]


def _cheapest(runs: list[dict[str, dict[str, float]]], stage: str) -> dict[str, float]:
    return min((run[stage] for run in runs), key=lambda measured: measured["cpu_ms_per_record"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100, help="records per intake batch")
    parser.add_argument("--runs", type=int, default=3, help="the best run is kept")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "intake.json")
    args = parser.parse_args()
    runs = []
    with LocalPostgres() as postgres:
        for _ in range(args.runs):
            url = migrated_database(postgres, MIGRATIONS)
            runs.append(asyncio.run(run(url, args.records, args.batch)))
    best = {name: _cheapest(runs, name) for name in STAGES}
    results: dict[str, Any] = {
        "machine": host.facts(),
        "args": {name: str(value) for name, value in vars(args).items()},
        "best": best,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'stage':8} {'CPU ms/record':>14} {'statements/record':>18}")
    for name in STAGES:
        print(
            f"{name:8} {best[name]['cpu_ms_per_record']:14.2f}"
            f" {best[name]['statements_per_record']:18.2f}"
        )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
