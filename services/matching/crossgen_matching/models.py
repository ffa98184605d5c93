"""The matching service's tables: programs, their participants, and pairings."""

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crossgen_shared.db import utcnow

# A skill given by name alone (an HR system's skill list, an early enrolment) is wanted or known
# this much: the middle of 1..5.
MIDDLE_LEVEL = 3


def skill_name(name: str) -> str:
    """How skills are named everywhere, so that "AI  Tools" from one person meets "ai tools" from
    another: lower case, single spaces."""
    if not name.strip():
        raise ValueError("a skill needs a name")
    return " ".join(name.lower().split())


class Base(DeclarativeBase):
    pass


class Program(Base):
    __tablename__ = "programs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # optimiser.Weights fields by name; None: the optimiser's defaults.
    weights: Mapped[dict[str, float] | None] = mapped_column(JSON, default=None)
    # eligibility.ProgramRules' learner and mentor rules; None: anyone may enrol in either role.
    eligibility: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # "self": people enrol themselves; "automatic": the directory's eligible people are enrolled.
    enrolment: Mapped[str] = mapped_column(String(16), default="self", server_default="self")
    # The skill names (skill_name) people may enrol with; None: any (catalogue.py).
    skill_catalogue: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # Moved by the database's triggers whenever what a matching decision reads of the program
    # changes (migration 0009); live_cache.py trusts a live matching built at the same one.
    revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AutomaticEnrolment(Base):
    """A program's run through the directory since its latest switch to automatic enrolment
    (automatic_enrolment.py). A table of its own: a change to the program's row would move the
    program's revision at every batch."""

    __tablename__ = "automatic_enrolments"

    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    # The last employee number the run looked at; None: it has not started.
    after: Mapped[str | None] = mapped_column(String(64), default=None)
    to_check: Mapped[int] = mapped_column(default=0)  # candidates when the run started
    checked: Mapped[int] = mapped_column(default=0)
    enrolled: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Its batch's failures in a row (other than the database's trouble), the last one's error, and
    # when it is tried again.
    failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def state(self) -> Literal["enrolling", "retrying", "done"]:
        if self.finished_at is not None:
            return "done"
        return "retrying" if self.failures else "enrolling"


class Participant(Base):
    __tablename__ = "participants"
    # Enrolled once at a time: a person who left (a rehire, say) may enrol again.
    __table_args__ = (
        Index(
            "uq_participants_active_person",
            "program_id",
            "person_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    # Every directory change of a person asks for their enrolments, across programs.
    person_id: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    # Skill name -> level 1..5: how much a learner wants it, how well a mentor knows it.
    skills: Mapped[dict[str, int]] = mapped_column(JSON)
    capacity: Mapped[int] = mapped_column(default=1)
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["en"])
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # IANA name
    work_start: Mapped[int] = mapped_column(default=9)  # local hour
    work_end: Mapped[int] = mapped_column(default=17)
    goals: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Pairing(Base):
    __tablename__ = "pairings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    learner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    mentor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    score: Mapped[float] = mapped_column(Float)
    explanation: Mapped[list[str]] = mapped_column(JSON)
    learner_accepted: Mapped[bool] = mapped_column(default=False)
    mentor_accepted: Mapped[bool] = mapped_column(default=False)
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PairRule(Base):
    """A program owner's decision about one pair: ``pinned`` (always) or ``forbidden`` (never)."""

    __tablename__ = "pair_rules"
    __table_args__ = (UniqueConstraint("program_id", "learner_id", "mentor_id", "kind"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    learner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"))
    mentor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
