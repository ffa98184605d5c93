"""The internal employee model every source maps onto: one source's statement about one person.

A record sets only what its source said: a field left unset is left as stored (a BambooHR webhook
carries the changed fields only), a field set to None clears it (a SCIM replace without a title).
"""

from datetime import date
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from crossgen_matching.models import skill_name
from crossgen_shared import time_zones
from crossgen_shared.addresses import EmailAddress

Text = str | None
# Skill names, from an HR system's skills or learning interests (Workday Skills Cloud,
# SuccessFactors competencies).
Skills = tuple[Annotated[str, Field(max_length=100)], ...] | None

# The person's attributes, as opposed to the bookkeeping below them.
PERSON_FIELDS = (
    "external_id",
    "user_name",
    "display_name",
    "email",
    "active",
    "department",
    "division",
    "organization",
    "cost_center",
    "manager_employee_number",
    "manager_external_id",
    "title",
    "job_level",
    "hire_date",
    "location",
    "timezone",
    "languages",
    "skills",
    "interests",
)
# Lists of names: stored as JSON lists, an empty one as "no value".
LIST_FIELDS = ("languages", "skills", "interests")
# What places a person in the organisation: a change re-checks their pairings.
ORGANISATION_FIELDS = ("manager_employee_number", "department", "division", "organization")


class EmployeeRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    employee_number: str | None = Field(
        default=None, max_length=64, description="None: the person is known by external_id only"
    )
    source: str = Field(description="where it came from: scim:<integration>, hris:<format>, csv")
    source_timestamp: AwareDatetime = Field(description="when the source says this was true")
    vendor_event_id: str | None = Field(default=None, max_length=255)
    removed: bool = Field(default=False, description="deleted at the source: the person left")

    external_id: Text = Field(default=None, max_length=255)
    user_name: Text = Field(default=None, max_length=320)
    display_name: Text = Field(default=None, max_length=200)
    email: EmailAddress | None = None
    active: bool | None = None
    department: Text = Field(default=None, max_length=200)
    division: Text = Field(default=None, max_length=200)
    organization: Text = Field(default=None, max_length=200)
    cost_center: Text = Field(default=None, max_length=200)
    manager_employee_number: Text = Field(default=None, max_length=64)
    manager_external_id: Text = Field(default=None, max_length=255)
    title: Text = Field(default=None, max_length=200)
    job_level: Text = Field(default=None, max_length=100)
    hire_date: date | None = None
    location: Text = Field(default=None, max_length=200)
    timezone: Text = Field(default=None, max_length=64)
    languages: tuple[str, ...] | None = None
    skills: Skills = Field(default=None, max_length=200, description="known, can teach")
    interests: Skills = Field(default=None, max_length=200, description="wanted, to learn")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # HR systems send "" for "no value"; it must clear, not be stored as a value.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return None if value is None else time_zones.known(value)

    @field_validator("skills", "interests")
    @classmethod
    def _named_once(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        # Named as enrolment names them, sorted, once each: the same list in another order or
        # case is no change, and an empty one is no value, as stored.
        return tuple(sorted({skill_name(n) for n in names or () if n.strip()})) or None

    @model_validator(mode="after")
    def _someone(self) -> "EmployeeRecord":
        if not (self.employee_number or self.external_id):
            raise ValueError("a record needs an employee number or the source's id for the person")
        return self

    def changes(self) -> dict[str, Any]:
        """The person's fields this record sets, plus ``removed`` when it decides it."""
        values = {f: getattr(self, f) for f in PERSON_FIELDS if f in self.model_fields_set}
        if values.get("active", False) is None:
            del values["active"]  # "no value" for a flag: leave it as it is
        if self.removed:
            values |= {"active": False, "removed": True}
        elif values.get("active"):
            values["removed"] = False  # active again: a rehire undoes a removal
        return values
