"""Every Crossgen event: immutable, past tense, versioned, defined here and nowhere else.

The CloudEvents `type` is ``com.crossgen.<name>.v<version>``; the Kafka key (and CloudEvents
`subject`) is the id of the thing the event is about, so its events stay in order.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crossgen_shared import topics
from crossgen_shared.addresses import EmailAddress

TYPE_PREFIX = "com.crossgen."
LATEST_YEAR = 9000
EARLIEST_YEAR = 1000


class Event(BaseModel):
    """Base of all events. Readers ignore fields they do not know (adding one is not breaking)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: ClassVar[str]
    version: ClassVar[int] = 1
    topic: ClassVar[str]
    key_field: ClassVar[str]

    @field_validator("*")
    @classmethod
    def _times_can_be_computed_with(cls, value: Any) -> Any:
        """Handlers compare times with now and add terms to them or take terms off: a time needs
        its UTC offset and room before the end of the calendar (year 9999) and after its start
        (year 1)."""
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError("a time needs its UTC offset")
            if value.year > LATEST_YEAR:
                raise ValueError(f"a time after the year {LATEST_YEAR}")
            if value.year < EARLIEST_YEAR:
                raise ValueError(f"a time before the year {EARLIEST_YEAR}")
        return value

    @classmethod
    def event_type(cls) -> str:
        return f"{TYPE_PREFIX}{cls.name}.v{cls.version}"

    def key(self) -> str:
        return str(getattr(self, self.key_field))


Role = Literal["learner", "mentor"]
Rating = Annotated[int, Field(ge=1, le=5)]


class Benefit(StrEnum):
    """The six benefits a reverse mentoring program exists for."""

    KNOWLEDGE = "knowledge"
    SKILLS = "skills"
    COMMUNICATION = "communication"
    PERSPECTIVES = "perspectives"
    CULTURAL_AWARENESS = "cultural_awareness"
    LEARNING = "learning"


class BenefitRatings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    knowledge: Rating
    skills: Rating
    communication: Rating
    perspectives: Rating
    cultural_awareness: Rating
    learning: Rating


# --- participants (matching) ---------------------------------------------------------------


class _ParticipantEvent(Event):
    topic: ClassVar[str] = topics.PARTICIPANTS
    key_field: ClassVar[str] = "participant_id"

    participant_id: UUID
    program_id: UUID


class ParticipantJoined(_ParticipantEvent):
    name: ClassVar[str] = "participant-joined"

    person_id: str = Field(description="The person's id in the company directory")
    role: Role
    display_name: str
    email: EmailAddress
    skills: tuple[str, ...] = Field(description="Skills to learn (learner) or to teach (mentor)")
    joined_at: datetime


class ParticipantUpdated(_ParticipantEvent):
    name: ClassVar[str] = "participant-updated"

    display_name: str
    email: EmailAddress
    skills: tuple[str, ...]
    updated_at: datetime


class ParticipantLeft(_ParticipantEvent):
    name: ClassVar[str] = "participant-left"

    reason: str
    left_at: datetime


class ParticipantErased(_ParticipantEvent):
    """The person's grace period after leaving is over: every service forgets their data."""

    name: ClassVar[str] = "participant-erased"

    person_id: str = Field(description="The person's id in the company directory, to forget")
    erased_at: datetime


# --- pairings (matching) -------------------------------------------------------------------


class _PairingEvent(Event):
    topic: ClassVar[str] = topics.PAIRINGS
    key_field: ClassVar[str] = "pairing_id"

    pairing_id: UUID
    program_id: UUID
    learner_id: UUID
    mentor_id: UUID
    learner_person_id: str
    mentor_person_id: str


class MatchProposed(_PairingEvent):
    name: ClassVar[str] = "match-proposed"

    score: float
    explanation: tuple[str, ...] = Field(description="Why this pair: skills and rules applied")
    proposed_at: datetime


class MatchAccepted(_PairingEvent):
    name: ClassVar[str] = "match-accepted"

    accepted_at: datetime
    # Snapshotted at acceptance from the company directory, for outcome reports by department.
    learner_department: str | None = None
    mentor_department: str | None = None


class MatchDeclined(_PairingEvent):
    name: ClassVar[str] = "match-declined"

    declined_by: UUID | None = Field(
        default=None, description="The participant who declined; null when matching withdrew it"
    )
    reason: str
    declined_at: datetime


class PairingEnded(_PairingEvent):
    name: ClassVar[str] = "pairing-ended"

    reason: str
    ended_at: datetime


# --- sessions (sessions) -------------------------------------------------------------------


class _SessionEvent(Event):
    topic: ClassVar[str] = topics.SESSIONS
    key_field: ClassVar[str] = "session_id"

    session_id: UUID
    pairing_id: UUID
    program_id: UUID
    learner_id: UUID
    mentor_id: UUID


class SessionScheduled(_SessionEvent):
    name: ClassVar[str] = "session-scheduled"

    starts_at: datetime
    duration_minutes: int = Field(gt=0, le=480)


class SessionCancelled(_SessionEvent):
    name: ClassVar[str] = "session-cancelled"

    cancelled_by: UUID
    reason: str
    cancelled_at: datetime


class SessionCompleted(_SessionEvent):
    name: ClassVar[str] = "session-completed"

    held_minutes: int = Field(ge=0)
    completed_at: datetime


class FeedbackSubmitted(_SessionEvent):
    name: ClassVar[str] = "feedback-submitted"

    participant_id: UUID
    ratings: BenefitRatings
    comment: str = ""
    submitted_at: datetime


class PairingAtRisk(Event):
    name: ClassVar[str] = "pairing-at-risk"
    topic: ClassVar[str] = topics.SESSIONS
    key_field: ClassVar[str] = "pairing_id"

    pairing_id: UUID
    program_id: UUID
    learner_id: UUID
    mentor_id: UUID
    reason: str
    detected_at: datetime


# --- notifications (notifications) ---------------------------------------------------------


class _NotificationEvent(Event):
    topic: ClassVar[str] = topics.NOTIFICATIONS
    key_field: ClassVar[str] = "notification_id"

    notification_id: UUID
    recipient_id: UUID
    channel: Literal["email", "chat", "webhook"]
    template: str
    source_event_id: str


class NotificationSent(_NotificationEvent):
    name: ClassVar[str] = "notification-sent"

    sent_at: datetime


class NotificationFailed(_NotificationEvent):
    name: ClassVar[str] = "notification-failed"

    reason: str
    failed_at: datetime


EVENT_CLASSES: tuple[type[Event], ...] = (
    ParticipantJoined,
    ParticipantUpdated,
    ParticipantLeft,
    ParticipantErased,
    MatchProposed,
    MatchAccepted,
    MatchDeclined,
    PairingEnded,
    SessionScheduled,
    SessionCancelled,
    SessionCompleted,
    FeedbackSubmitted,
    PairingAtRisk,
    NotificationSent,
    NotificationFailed,
)

BY_TYPE: dict[str, type[Event]] = {cls.event_type(): cls for cls in EVENT_CLASSES}


def json_schema(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema checked into ``shared/schemas`` for one event type."""
    schema = cls.model_json_schema(mode="serialization")
    schema["$id"] = schema_uri(cls)
    schema["x-cloudevents-type"] = cls.event_type()
    schema["x-kafka-topic"] = cls.topic
    schema["x-kafka-key"] = cls.key_field
    return schema


SCHEMA_BASE_URI = "https://schemas.crossgen.example/events/"


def schema_uri(cls: type[Event]) -> str:
    return f"{SCHEMA_BASE_URI}{cls.name}.v{cls.version}.json"


def schema_filename(cls: type[Event]) -> str:
    return f"{cls.name}.v{cls.version}.json"
