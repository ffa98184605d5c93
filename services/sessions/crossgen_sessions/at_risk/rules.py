"""When a pairing is at risk: the pair has not met for too long, or sessions keep being missed.

Plain Python over one pairing's history. Each finding carries ``since``, the start of its episode
(the pair's last meeting, or the pairing's opening): every check finds the same episode again,
and it is announced once. Meeting again starts a new episode.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from crossgen_sessions.rules import end_of


class Reason(StrEnum):
    STALLED = "stalled"
    NO_SHOWS = "no_shows"


@dataclass(frozen=True)
class Policy:
    stalled_after: timedelta
    no_shows_in_a_row: int


@dataclass(frozen=True)
class Outcome:
    """A session that is over: held (at when it was held) or missed (at its planned start)."""

    at: datetime
    held: bool


@dataclass(frozen=True)
class History:
    opened_at: datetime
    ends_on: date | None
    outcomes: Sequence[Outcome]


@dataclass(frozen=True)
class Risk:
    reason: Reason
    since: datetime
    detail: str


def risks(history: History, policy: Policy, now: datetime) -> list[Risk]:
    if history.ends_on is not None and now >= end_of(history.ends_on):
        return []  # over as planned: no longer meeting is no risk
    since = max((o.at for o in history.outcomes if o.held), default=history.opened_at)
    found = []
    quiet = now - since
    if quiet >= policy.stalled_after:
        found.append(Risk(Reason.STALLED, since, f"no session held in {quiet.days} days"))
    missed = 0
    for outcome in sorted(history.outcomes, key=lambda o: o.at):
        missed = 0 if outcome.held else missed + 1
    if missed >= policy.no_shows_in_a_row:
        found.append(Risk(Reason.NO_SHOWS, since, f"{missed} no-shows in a row"))
    return found
