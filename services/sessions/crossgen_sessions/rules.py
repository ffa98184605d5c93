"""The rules inside a pairing: who may act in it, and when a session may be scheduled or completed.

Plain Python, no I/O. A broken rule raises the request error the HTTP layer answers with.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from crossgen_shared.errors import Conflict, Forbidden, Unprocessable

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


def participant_in(pair: Pair, person_id: str) -> UUID:
    """The caller's participant id; only the learner and the mentor act in their pairing."""
    participant_id = pair.participant_id_of(person_id)
    if participant_id is None:
        raise Forbidden("only the learner or the mentor of a pairing can do this")
    return participant_id


def ensure_may_read(pair: Pair, person_id: str, *, is_admin: bool) -> None:
    if not is_admin:
        participant_in(pair, person_id)


def ensure_schedulable(pairing_status: str, starts_at: datetime, now: datetime) -> None:
    if pairing_status != "active":
        raise Conflict(f"pairing is {pairing_status}; sessions are scheduled in active pairings")
    if starts_at < now:
        raise Unprocessable(f"starts_at {starts_at.isoformat()} is in the past")


def ensure_completable(session_status: str) -> None:
    if session_status != "scheduled":
        raise Conflict(f"session is {session_status}; only a scheduled session can be completed")


def ensure_feedback_open(session_status: str) -> None:
    if session_status != "completed":
        raise Conflict(f"session is {session_status}; feedback is given on a completed session")
