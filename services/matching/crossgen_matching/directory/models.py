"""The directory's table: one row an employee, keyed by the employee number."""

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crossgen_matching.models import Base
from crossgen_shared.db import utcnow


class Employee(Base):
    __tablename__ = "employees"
    __table_args__ = (
        # userName is unique among the people still in the directory, whatever its case.
        Index(
            "uq_employees_user_name",
            text("lower(user_name)"),
            unique=True,
            postgresql_where=text("removed_at IS NULL"),
        ),
        # How identity providers look a person up: SCIM's userName (see scim.filters).
        Index(
            "ix_employees_scim_user_name",
            text("lower(coalesce(user_name, email, employee_number))"),
            postgresql_where=text("removed_at IS NULL"),
        ),
        # Reports named their manager by the source's id only, until that manager arrives.
        Index(
            "ix_employees_unlinked_manager_external_id",
            "manager_external_id",
            postgresql_where=text("manager_employee_number IS NULL"),
        ),
    )

    employee_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    user_name: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    department: Mapped[str | None] = mapped_column(String(200))
    division: Mapped[str | None] = mapped_column(String(200))
    organization: Mapped[str | None] = mapped_column(String(200))
    cost_center: Mapped[str | None] = mapped_column(String(200))
    manager_employee_number: Mapped[str | None] = mapped_column(String(64), index=True)
    # The manager as the source names them, until that person is in the directory.
    manager_external_id: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(200))
    job_level: Mapped[str | None] = mapped_column(String(100))
    hire_date: Mapped[date | None] = mapped_column(Date)
    location: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Skill names (models.skill_name): what they know and can teach, what they want to learn.
    # Automatic enrolment starts a mentor's profile from the one, a learner's from the other.
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    interests: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Bookkeeping: who said so last, as of when, in which vendor event.
    source: Mapped[str] = mapped_column(String(100))
    source_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_vendor_event_id: Mapped[str | None] = mapped_column(String(255))
    # Deleted at the source (SCIM DELETE, a vendor's delete): gone from SCIM, kept for history.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
