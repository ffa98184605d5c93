"""The notifications service's tables: who is reached and how, what they share, every message.

A notification row is both the durable schedule (``next_attempt_at``) and the delivery log.
"""

import uuid
from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import JSON, DateTime, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crossgen_shared.db import utcnow


class Base(DeclarativeBase):
    """Notifications' own metadata: other services' tables never share it."""


class Contact(Base):
    """How to reach a participant, kept from the participants topic."""

    __tablename__ = "contacts"

    participant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(String(200), index=True)
    program_id: Mapped[uuid.UUID]
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    # The directory's language for this person; their preferences may override it.
    locale: Mapped[str] = mapped_column(String(35), default="en")
    # When the participant event that set these values happened: an older one never overwrites.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Someone who left their program gets no further messages about it.
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Pairing(Base):
    """Who is paired with whom, kept from the pairings topic to find a leaver's partners."""

    __tablename__ = "pairings"

    pairing_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    learner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    mentor_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # proposed | accepted | declined | ended | partner-left
    status: Mapped[str] = mapped_column(String(16))


class SessionInvite(Base):
    """A session as the calendars of its two participants know it: time and invite sequence."""

    __tablename__ = "session_invites"

    session_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    learner_id: Mapped[uuid.UUID]
    mentor_id: Mapped[uuid.UUID]
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_minutes: Mapped[int]
    # iCalendar SEQUENCE: each reschedule or cancellation supersedes the invite sent before.
    sequence: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[bool] = mapped_column(default=False)


class Preferences(Base):
    """How one person wants to be reached; without a row, email only, immediately."""

    __tablename__ = "preferences"

    person_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    digest: Mapped[bool] = mapped_column(default=False)
    email_enabled: Mapped[bool] = mapped_column(default=True)
    chat_kind: Mapped[str | None] = mapped_column(String(16))  # slack | teams
    chat_url: Mapped[str | None] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(String(100))


class SigningKey(Base):
    """A secret made by the migration, shared by every replica: signs unsubscribe links."""

    __tablename__ = "signing_keys"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)


class Status(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    COLLECTED = "collected"  # waits in its daily digest (digest_id)
    SENDING = "sending"  # claimed by a worker; the outcome is not recorded yet
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # no longer wanted: rescheduled, turned off, erased
    UNCONFIRMED = "unconfirmed"  # its sender died mid-send: maybe sent, never resent unasked


class Notification(Base):
    """One message to one recipient on one channel, caused by one event: schedule and log."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint(
            "source_event_id", "template", "recipient_id", "channel", name="uq_notifications_once"
        ),
        Index(
            "ix_notifications_due", "next_attempt_at", postgresql_where=text("status = 'pending'")
        ),
        Index(
            "ix_notifications_sending", "claimed_at", postgresql_where=text("status = 'sending'")
        ),
        Index("ix_notifications_recipient", "recipient_id", "created_at"),
        Index("ix_notifications_person", "person_id", "created_at"),
        Index("ix_notifications_created", "created_at"),
        Index("ix_notifications_session", "session_id"),
        Index("ix_notifications_digest", "digest_id"),
        Index("ix_notifications_attempt", "attempt_id"),  # a claim's outcome is recorded by it
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_event_id: Mapped[str] = mapped_column(String(64))
    source_event_type: Mapped[str] = mapped_column(String(200))
    recipient_id: Mapped[uuid.UUID]
    person_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(100))
    to_address: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(998))  # the longest line RFC 5322 allows
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    calendar: Mapped[str | None] = mapped_column(Text)  # an iCalendar invite for email
    session_id: Mapped[uuid.UUID | None]
    digest_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    attempt_id: Mapped[uuid.UUID | None]
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The W3C trace context of the event that caused it: sending it, and the event saying so,
    # continue that trace. A digest continues none.
    trace_context: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
