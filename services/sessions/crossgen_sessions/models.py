"""The sessions service's tables: pairings it was told about, their sessions, and feedback."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crossgen_sessions.rules import Pair
from crossgen_shared.db import utcnow


class Base(DeclarativeBase):
    """Sessions' own metadata: matching has a `pairings` table too, and tests import both."""


class Pairing(Base):
    """A pairing as matching announced it; the id is matching's pairing id."""

    __tablename__ = "pairings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    program_id: Mapped[uuid.UUID] = mapped_column(index=True)
    learner_id: Mapped[uuid.UUID]
    mentor_id: Mapped[uuid.UUID]
    learner_person_id: Mapped[str] = mapped_column(String(200), index=True)
    mentor_person_id: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16))  # active | ended
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def pair(self) -> Pair:
        return Pair(self.learner_id, self.mentor_id, self.learner_person_id, self.mentor_person_id)


class Session(Base):
    """One meeting of a pairing."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    pairing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pairings.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_minutes: Mapped[int]
    agenda: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # completed, cancelled
    held_minutes: Mapped[int | None]
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feedback(Base):
    """One participant's ratings of one session; each gives it once."""

    __tablename__ = "feedback"

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    ratings: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
