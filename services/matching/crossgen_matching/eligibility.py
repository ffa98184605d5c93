"""Who a program admits in each role, by what the company directory says of them.

Pure: the rules, what a person must meet, and in words why they do not. Reading the directory
and enrolling people is ``admission``'s.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from functools import partial
from typing import Annotated, Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossgen_shared.events import Role

Enrolment = Literal["self", "automatic"]

_NUMBER = re.compile(r"\d+")


def job_level(level: str | None) -> int:
    """HRIS job levels read "L5", "5", "IC4"...: the number in them, or 0 when there is none."""
    found = _NUMBER.search(level or "")
    return int(found.group()) if found else 0


def years_since(day: date, today: date) -> float:
    return max((today - day).days / 365.25, 0.0)


class Attributes(Protocol):
    """What the rules read of an employee (the directory's Employee has them)."""

    @property
    def department(self) -> str | None: ...
    @property
    def division(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def job_level(self) -> str | None: ...
    @property
    def hire_date(self) -> date | None: ...


Names = tuple[Annotated[str, Field(min_length=1, max_length=200)], ...]


class RoleRules(BaseModel):
    """Conditions on one role; none set admits anyone. Lists compare without regard to case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_level_min: int | None = Field(default=None, ge=0, description="the number in the level")
    job_level_max: int | None = Field(default=None, ge=0)
    tenure_years_min: float | None = Field(default=None, ge=0, description="years since hire")
    tenure_years_max: float | None = Field(default=None, ge=0)
    departments: Names = Field(default=(), max_length=200, description="empty: any")
    divisions: Names = Field(default=(), max_length=200, description="empty: any")
    locations: Names = Field(default=(), max_length=200, description="empty: any")
    exclude_departments: Names = Field(default=(), max_length=200)

    @model_validator(mode="after")
    def _ranges_are_not_empty(self) -> Self:
        for name, low, high in [
            ("job_level", self.job_level_min, self.job_level_max),
            ("tenure_years", self.tenure_years_min, self.tenure_years_max),
        ]:
            if low is not None and high is not None and low > high:
                raise ValueError(f"{name}_min {low:g} is above {name}_max {high:g}")
        return self

    @property
    def admits_anyone(self) -> bool:
        return self == RoleRules()

    def describe(self) -> str:
        """The rules in a few words: "tenure ≤ 5 years, department in Design"."""
        parts = [
            f"{label} {sign} {value:g}{unit}"
            for label, unit, low, high in [
                ("job level", "", self.job_level_min, self.job_level_max),
                ("tenure", " years", self.tenure_years_min, self.tenure_years_max),
            ]
            for sign, value in (("≥", low), ("≤", high))
            if value is not None
        ]
        parts += [
            f"{label} {', '.join(names)}"
            for label, names in [
                ("department in", self.departments),
                ("division in", self.divisions),
                ("location in", self.locations),
                ("department not in", self.exclude_departments),
            ]
            if names
        ]
        return ", ".join(parts) or "anyone"


class ProgramRules(BaseModel):
    """How a program fills its roles: people enrol themselves, or those who meet a role's rules
    are enrolled as the directory learns of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enrolment: Enrolment = "self"
    learner: RoleRules = RoleRules()
    mentor: RoleRules = RoleRules()

    @model_validator(mode="after")
    def _automatic_needs_rules(self) -> Self:
        # A role without rules admits anyone: enrolling everyone automatically is never meant.
        everyone = self.learner.admits_anyone and self.mentor.admits_anyone
        if self.enrolment == "automatic" and everyone:
            raise ValueError("automatic enrolment needs rules for the learner or the mentor role")
        return self

    def of(self, role: Role) -> RoleRules:
        return self.learner if role == "learner" else self.mentor

    def automatic_role(self, employee: Attributes, today: date) -> Role | None:
        """The role an automatic program enrols ``employee`` in, if any. Someone who meets both
        roles' rules joins as learner; a role without rules takes only those who enrol themselves.
        """
        for role in ("learner", "mentor"):
            rules = self.of(role)
            if not rules.admits_anyone and not shortfalls(rules, employee, today):
                return role
        return None


# One condition of a role's rules: the attribute it reads, and why a value of it falls short
# (None: the value meets it).
Condition = tuple[str, Callable[[Any], str | None]]


def conditions(rules: RoleRules, today: date) -> list[Condition]:
    """``rules`` as conditions, each on one attribute, in the order their reasons are given."""
    found: list[Condition] = []
    if rules.job_level_min is not None or rules.job_level_max is not None:
        low, high = rules.job_level_min, rules.job_level_max

        def level(value: str | None) -> str | None:
            if not _NUMBER.search(value or ""):
                return "no job level in the directory"
            return _outside("job level", job_level(value), "", low, high)

        found.append(("job_level", level))
    if rules.tenure_years_min is not None or rules.tenure_years_max is not None:
        shortest, longest = rules.tenure_years_min, rules.tenure_years_max

        def tenure(value: date | None) -> str | None:
            if value is None:
                return "no hire date in the directory"
            return _outside("tenure", years_since(value, today), " years", shortest, longest)

        found.append(("hire_date", tenure))
    for attribute, allowed in [
        ("department", rules.departments),
        ("division", rules.divisions),
        ("location", rules.locations),
    ]:
        if allowed:
            found.append((attribute, partial(_one_of, attribute, allowed)))
    if rules.exclude_departments:
        found.append(("department", partial(_not_one_of, rules.exclude_departments)))
    return found


def shortfalls(rules: RoleRules, employee: Attributes, today: date) -> list[str]:
    """Why ``employee`` does not meet ``rules``, one reason a condition; empty: they do."""
    return [
        reason
        for attribute, check in conditions(rules, today)
        if (reason := check(getattr(employee, attribute))) is not None
    ]


def count_meeting(
    rules: RoleRules, read: Sequence[str], groups: Iterable[Sequence[Any]], today: date
) -> int:
    """How many people in ``groups`` meet ``rules``. A group is people alike in the attributes
    ``read`` (at least those the rules read): their values in that order, then how many people.
    Each condition is checked once per distinct value: with hire dates spread over years, nearly
    every group differs, but few in any one attribute."""
    checks: list[tuple[int, Callable[[Any], str | None], dict[Any, bool]]] = [
        (read.index(attribute), check, {}) for attribute, check in conditions(rules, today)
    ]
    meeting = 0
    for group in groups:
        for at, check, met in checks:
            if (meets := met.get(group[at])) is None:
                meets = met[group[at]] = check(group[at]) is None
            if not meets:
                break
        else:
            meeting += group[-1]
    return meeting


def _outside(
    label: str, value: float, unit: str, low: float | None, high: float | None
) -> str | None:
    shown = f"{value:.1f}" if isinstance(value, float) else str(value)
    if low is not None and value < low:
        return f"{label} {shown}{unit} is below the minimum {low:g}"
    if high is not None and value > high:
        return f"{label} {shown}{unit} is above the maximum {high:g}"
    return None


def _one_of(attribute: str, allowed: Names, value: str | None) -> str | None:
    if not value:
        return f"no {attribute} in the directory"
    if not _among(value, allowed):
        return f"{attribute} {value!r} is not one of {', '.join(allowed)}"
    return None


def _not_one_of(excluded: Names, value: str | None) -> str | None:
    return f"department {value!r} is excluded" if _among(value, excluded) else None


def _among(value: str | None, names: Names) -> bool:
    return value is not None and value.casefold().strip() in {n.casefold().strip() for n in names}
