"""The sessions service's tables: pairings it was told about, their sessions, feedback and goals,
and the at-risk marks that make each PairingAtRisk event go out once."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Date,
    DateTime,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crossgen_sessions.rules import Pair, Slot
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
    # The last day the pair plans to meet; the pair moves it to finish early or to extend.
    ends_on: Mapped[date | None] = mapped_column(Date)
    # Departments as matching saw them at acceptance (None: not in the directory).
    learner_department: Mapped[str | None] = mapped_column(String(200))
    mentor_department: Mapped[str | None] = mapped_column(String(200))

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
    video_link: Mapped[str | None] = mapped_column(Text)
    # scheduled, then one of: completed (held), no_show, cancelled
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    held_minutes: Mapped[int | None]
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    absent: Mapped[str | None] = mapped_column(String(16))  # learner | mentor, for a no-show
    cancelled_by: Mapped[uuid.UUID | None]
    cancellation_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def slot(self) -> Slot:
        return Slot(self.starts_at, self.duration_minutes)

    @hybrid_property
    def held_at(self) -> datetime | None:
        """When it was held: its start, or when it was marked held if the pair met earlier."""
        if self.status != "completed" or self.completed_at is None:
            return None
        return min(self.starts_at, self.completed_at)

    @held_at.inplace.expression
    @classmethod
    def _held_at(cls) -> ColumnElement[datetime | None]:
        return case(
            (cls.status == "completed", func.least(cls.starts_at, cls.completed_at)), else_=None
        )


class Feedback(Base):
    """One participant's ratings of one session; each gives it once."""

    __tablename__ = "feedback"

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    ratings: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Goal(Base):
    """A learning goal the pair sets itself, with how far they have come (0 to 100 %)."""

    __tablename__ = "goals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    pairing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pairings.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    progress: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AtRiskMark(Base):
    """That a pairing was found at risk for a reason since a moment (its last meeting, or its
    opening). Unique per (pairing, reason, since), so each episode is announced once, whichever
    replica finds it first."""

    __tablename__ = "at_risk_marks"
    __table_args__ = (
        UniqueConstraint("pairing_id", "reason", "since", name="uq_at_risk_marks_episode"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    pairing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pairings.id"))
    reason: Mapped[str] = mapped_column(String(16))  # stalled | no_shows
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
