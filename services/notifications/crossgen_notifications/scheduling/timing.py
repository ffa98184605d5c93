"""When a message may reach a person: outside their quiet hours, or in their next daily digest.

Pure functions of the time given, so tests choose the clock.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crossgen_shared.db import utcnow

Clock = Callable[[], datetime]
system_clock: Clock = utcnow


@dataclass(frozen=True)
class QuietHours:
    """A daily period without messages, in the person's timezone; it may span midnight."""

    start: time
    end: time

    def end_after(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """The end of the quiet period ``at`` falls in, or None when ``at`` is not quiet."""
        local = at.astimezone(zone)
        now = local.time()
        if self.start <= self.end:
            if not self.start <= now < self.end:
                return None
            ends_on = local.date()
        else:
            if self.end <= now < self.start:
                return None
            ends_on = local.date() + timedelta(days=1) if now >= self.start else local.date()
        return datetime.combine(ends_on, self.end, zone).astimezone(UTC)


def after_quiet_hours(at: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """``at``, or the end of the quiet period it falls in."""
    end = quiet.end_after(at, zone) if quiet else None
    return end or at


@dataclass(frozen=True)
class DigestSlot:
    """The daily digest a message waits for: its local date names it, ``due`` sends it."""

    day: date
    due: datetime


def next_digest(after: datetime, hour: int, quiet: QuietHours | None, zone: ZoneInfo) -> DigestSlot:
    """The first digest strictly after ``after`` (at ``hour`` local time, past quiet hours)."""
    local = after.astimezone(zone)
    slot = datetime.combine(local.date(), time(hour), zone)
    if slot <= local:
        slot = datetime.combine(local.date() + timedelta(days=1), time(hour), zone)
    return DigestSlot(slot.date(), after_quiet_hours(slot.astimezone(UTC), quiet, zone))
