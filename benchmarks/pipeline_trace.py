"""Where an HRIS record's time went on its way to an email, read from what the services stored.

Every hop leaves a timestamp: matching's inbox (the HRIS record stored in the directory; the
participant-joined event taken up by the join), matching's outbox (match-proposed published),
notifications' inbox (match-proposed taken up) and its delivery log (the email claimed for
sending); the SMTP sink stamps the arrival. PostgreSQL's now() is the start of the transaction
that wrote a row, so a hop ends when the next transaction began, not when it committed.

Attribution: a proposal needs both people, so its two emails are timed from the later of their
two records (the record that completed the pair); waiting for a partner is not the pipeline's.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import median, quantiles
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import create_async_engine

from crossgen_shared.events import ParticipantJoined

HRIS_CONSUMER = "matching:crossgen.hris.v1"
JOIN_CONSUMER = "matching:crossgen.participants.v1"
PROPOSAL_CONSUMER = "notifications:crossgen.pairings.v1"
PROPOSED = "match-proposed"

# The hops of one email, each named by where it ends.
HOPS = ("directory", "join", "proposed", "notifications", "claimed", "smtp")


@dataclass(frozen=True)
class Email:
    """One proposed-match email that arrived, with its pair and the moments it passed."""

    to: str  # employee number
    pair_ready: float  # the later of the two records' due_at
    arrived: float
    passed: Mapping[str, float | None]  # hop -> epoch seconds

    @property
    def latency(self) -> float:
        return self.arrived - self.pair_ready


def percentiles(values: Iterable[float]) -> dict[str, float] | None:
    ordered = sorted(values)
    if not ordered:
        return None
    if len(ordered) == 1:
        return {"p50": ordered[0], "p95": ordered[0], "p99": ordered[0], "max": ordered[0]}
    cut = quantiles(ordered, n=100, method="inclusive")
    return {"p50": cut[49], "p95": cut[94], "p99": cut[98], "max": ordered[-1]}


async def directory_times(matching_url: str) -> dict[str, float]:
    """HRIS event id ("E-000042:1") -> when matching stored it in the directory."""
    rows = await _fetch(
        matching_url,
        """SELECT event_id, extract(epoch FROM handled_at)::float8 AS at
           FROM inbox WHERE consumer = :hris""",
        hris=HRIS_CONSUMER,
    )
    return {row.event_id: float(row.at) for row in rows}


async def emails(
    matching_url: str,
    notifications_url: str,
    arrivals: Mapping[str, float],
    due_at: Mapping[str, float],
) -> list[Email]:
    """The proposed-match emails that arrived (Message-ID -> arrival), traced hop by hop.

    ``due_at`` is when each employee number's record was due (``hris_feed.Accepted``); emails
    to people not in it (an earlier run's) are left out.
    """
    notifications = await _fetch(
        notifications_url,
        """SELECT n.id::text AS id, n.source_event_id, n.to_address,
                  extract(epoch FROM n.claimed_at)::float8 AS claimed,
                  extract(epoch FROM i.handled_at)::float8 AS consumed
           FROM notifications n
           LEFT JOIN inbox i ON i.event_id = n.source_event_id AND i.consumer = :consumer
           WHERE n.template = :template""",
        consumer=PROPOSAL_CONSUMER,
        template=PROPOSED,
    )
    outbox = await _fetch(
        matching_url,
        """SELECT o.event_id, o.value, o.headers->>'ce_type' AS type,
                  extract(epoch FROM o.published_at)::float8 AS published,
                  extract(epoch FROM i.handled_at)::float8 AS joined
           FROM outbox o
           LEFT JOIN inbox i ON i.event_id = o.event_id AND i.consumer = :consumer""",
        consumer=JOIN_CONSUMER,
    )
    directory = await directory_times(matching_url)
    published = {row.event_id: row.published for row in outbox}
    # The join of each person: matching taking up their participant-joined event.
    joined: dict[str, float | None] = {}
    for row in outbox:
        if row.type == ParticipantJoined.event_type():
            joined[json.loads(row.value)["person_id"]] = row.joined
    pairs: dict[str, list[str]] = {}
    for row in notifications:
        pairs.setdefault(row.source_event_id, []).append(_number(row.to_address))
    traced = []
    for row in notifications:
        arrived = arrivals.get(row.id)
        both = pairs[row.source_event_id]
        if arrived is None or not all(person in due_at for person in both):
            continue
        completing = max(both, key=lambda person: due_at[person])
        passed = {
            "directory": directory.get(f"{completing}:1"),
            "join": joined.get(completing),
            "proposed": published.get(row.source_event_id),
            "notifications": row.consumed,
            "claimed": row.claimed,
            "smtp": arrived,
        }
        traced.append(Email(_number(row.to_address), due_at[completing], arrived, passed))
    return traced


async def batches(urls: Iterable[str], since: float, until: float) -> dict[str, dict[str, float]]:
    """How each consumer took its records between two moments (epoch seconds): its transactions,
    and the records one took (median), from the inbox rows a transaction wrote at its start. A
    consumer takes what is ready and a batch has a fixed cost: the less busy, the smaller."""
    taken: dict[str, list[int]] = {}
    for url in urls:
        rows = await _fetch(
            url,
            """SELECT consumer, count(*) AS records FROM inbox
               WHERE handled_at BETWEEN to_timestamp(:since) AND to_timestamp(:until)
               GROUP BY consumer, handled_at""",
            since=since,
            until=until,
        )
        for row in rows:
            taken.setdefault(row.consumer, []).append(row.records)
    return {
        consumer: {"transactions": len(sizes), "records_p50": median(sizes)}
        for consumer, sizes in sorted(taken.items())
    }


def by_window(traced: Iterable[Email], start: float, seconds: float) -> list[dict[str, Any]]:
    """The latency of the emails whose pair was ready in each ``seconds`` from ``start``: over a
    long run, whether the tail grows with the data or comes and goes with the host."""
    windows: dict[int, list[Email]] = {}
    for email in traced:
        windows.setdefault(int((email.pair_ready - start) // seconds), []).append(email)
    return [
        {
            "from_s": index * seconds,
            "emails": len(emails),
            **(percentiles(email.latency for email in emails) or {}),
            "hops_p99_s": {
                hop: spent["p99"] if spent else None for hop, spent in hops(emails).items()
            },
        }
        for index, emails in sorted(windows.items())
    ]


async def footprint(urls: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Each service's database on disk, in bytes: the whole of it, and of that its outbox and
    its inbox (each with its indexes)."""
    sizes = {}
    for service, url in urls.items():
        [row] = await _fetch(
            url,
            """SELECT pg_database_size(current_database()) AS database,
                      pg_total_relation_size('outbox') AS outbox,
                      pg_total_relation_size('inbox') AS inbox""",
        )
        sizes[service] = {"database": row.database, "outbox": row.outbox, "inbox": row.inbox}
    return sizes


def hops(traced: Iterable[Email]) -> dict[str, dict[str, float] | None]:
    """Seconds spent in each hop, as percentiles over the emails that have both ends."""
    spent: dict[str, list[float]] = {hop: [] for hop in HOPS}
    for email in traced:
        start: float | None = email.pair_ready
        for hop in HOPS:
            end = email.passed[hop]
            if start is not None and end is not None:
                spent[hop].append(end - start)
            start = end
    return {hop: percentiles(values) for hop, values in spent.items()}


def _number(address: str) -> str:
    """The employee number of a feed address: e-000042@example.com -> E-000042."""
    return address.partition("@")[0].upper()


async def _fetch(url: str, query: str, **params: Any) -> list[Row[Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(query), params))
    finally:
        await engine.dispose()
