"""The rules inside a pairing: who may act in it, and when a session may be scheduled, moved,
marked or rated. Plain Python, no I/O. A broken rule raises the request error the HTTP layer
answers with. Times are compared as instants; dates (a pairing's end date) are UTC dates.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from crossgen_shared.errors import Conflict, Forbidden, Unprocessable
from crossgen_shared.events import Role

MIN_DURATION_MINUTES = 15
MAX_DURATION_MINUTES = 480


@dataclass(frozen=True)
class Pair:
    """The two people in a pairing: their participant ids and their ids in the directory."""

    learner_id: UUID
    mentor_id: UUID
    learner_person_id: str
    mentor_person_id: str

    def participant_id_of(self, person_id: str) -> UUID | None:
        """The person's participant id in this pairing, or None if they are not in it."""
        if person_id == self.learner_person_id:
            return self.learner_id
        if person_id == self.mentor_person_id:
            return self.mentor_id
        return None

    def side_of(self, participant_id: UUID) -> Role:
        return "learner" if participant_id == self.learner_id else "mentor"

    @property
    def person_ids(self) -> tuple[str, str]:
        return self.learner_person_id, self.mentor_person_id


def participant_in(pair: Pair, person_id: str) -> UUID:
    """The caller's participant id; only the learner and the mentor act in their pairing."""
    participant_id = pair.participant_id_of(person_id)
    if participant_id is None:
        raise Forbidden("only the learner or the mentor of a pairing can do this")
    return participant_id


def ensure_may_read(pair: Pair, person_id: str, *, owns_program: bool) -> None:
    """The pair reads its own pairing; the program's owner reads every pairing in the program."""
    if not owns_program:
        participant_in(pair, person_id)


@dataclass(frozen=True)
class Slot:
    """When a session takes place: from its start for its planned duration."""

    starts_at: datetime
    minutes: int

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.minutes)

    def overlaps(self, other: "Slot") -> bool:
        # Half-open: a session may start the minute the previous one ends.
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass(frozen=True)
class Booking:
    """A session someone already has scheduled, in any of their pairings."""

    person_id: str
    slot: Slot


def end_of(ends_on: date) -> datetime:
    """The instant a pairing's last day is over (UTC)."""
    return datetime.combine(ends_on + timedelta(days=1), time(), tzinfo=UTC)


def ensure_schedulable(
    pairing_status: str, ends_on: date | None, slot: Slot, now: datetime
) -> None:
    if pairing_status != "active":
        raise Conflict(f"pairing is {pairing_status}; sessions are scheduled in active pairings")
    if slot.starts_at < now:
        raise Unprocessable(f"starts_at {slot.starts_at.isoformat()} is in the past")
    if ends_on is not None and slot.starts_at >= end_of(ends_on):
        raise Unprocessable(
            f"starts_at {slot.starts_at.isoformat()} is after the pairing's end date "
            f"{ends_on.isoformat()}; extend the pairing first"
        )


def ensure_free(slot: Slot, bookings: Iterable[Booking]) -> None:
    """Nobody is in two sessions at once, across all their pairings."""
    for booking in sorted(bookings, key=lambda b: b.slot.starts_at):
        if slot.overlaps(booking.slot):
            raise Conflict(
                f"{booking.person_id} already has a session from {_utc(booking.slot.starts_at)} "
                f"to {_utc(booking.slot.ends_at)}"
            )


def ensure_scheduled(session_status: str, action: str) -> None:
    if session_status != "scheduled":
        raise Conflict(f"session is {session_status}; only a scheduled session can be {action}")


def ensure_started(slot: Slot, now: datetime) -> None:
    """A no-show is a fact only once the session should have begun."""
    if slot.starts_at > now:
        raise Unprocessable(
            f"the session starts at {_utc(slot.starts_at)}; "
            "a no-show is recorded once it has started"
        )


def ensure_feedback_open(session_status: str) -> None:
    if session_status != "completed":
        raise Conflict(f"session is {session_status}; feedback is given on a held session")


def ensure_end_date(pairing_status: str, ends_on: date, today: date) -> None:
    if pairing_status != "active":
        raise Conflict(f"pairing is {pairing_status}; only an active pairing's end date moves")
    if ends_on < today:
        raise Unprocessable(
            f"end date {ends_on.isoformat()} is in the past; "
            f"to finish today, set {today.isoformat()}"
        )


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
