"""Program eligibility rules over directory attributes, without I/O."""

from collections import Counter
from dataclasses import astuple, dataclass, fields
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crossgen_matching.eligibility import (
    ProgramRules,
    RoleRules,
    count_meeting,
    job_level,
    shortfalls,
)

TODAY = date(2026, 6, 1)


@dataclass(frozen=True)
class Person:
    department: str | None = "Design"
    division: str | None = "Growth"
    location: str | None = "London"
    job_level: str | None = "L3"
    hire_date: date | None = date(2023, 6, 1)


def test_anyone_meets_no_rules() -> None:
    assert RoleRules().admits_anyone
    assert (
        shortfalls(RoleRules(), Person(department=None, job_level=None, hire_date=None), TODAY)
        == []
    )


def test_each_failed_condition_is_a_reason_in_words() -> None:
    rules = RoleRules(
        job_level_min=5,
        tenure_years_max=5,
        departments=("Marketing", "Sales"),
        locations=("Berlin",),
    )
    veteran = Person(department="Finance", job_level="L2", hire_date=date(2014, 2, 1))
    assert shortfalls(rules, veteran, TODAY) == [
        "job level 2 is below the minimum 5",
        "tenure 12.3 years is above the maximum 5",
        "department 'Finance' is not one of Marketing, Sales",
        "location 'London' is not one of Berlin",
    ]


def test_missing_attributes_are_named() -> None:
    rules = RoleRules(job_level_max=4, tenure_years_min=1, divisions=("Growth",))
    unknown = Person(job_level="Senior", hire_date=None, division=None)
    assert shortfalls(rules, unknown, TODAY) == [
        "no job level in the directory",
        "no hire date in the directory",
        "no division in the directory",
    ]


def test_names_compare_without_regard_to_case_and_exclusions_win() -> None:
    assert not shortfalls(RoleRules(departments=("design",)), Person(department="Design "), TODAY)
    rules = RoleRules(exclude_departments=("DESIGN",))
    assert shortfalls(rules, Person(), TODAY) == ["department 'Design' is excluded"]


def test_the_rules_describe_themselves() -> None:
    rules = RoleRules(tenure_years_max=5, departments=("Design",), job_level_min=2)
    assert rules.describe() == "job level ≥ 2, tenure ≤ 5 years, department in Design"
    assert RoleRules().describe() == "anyone"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"job_level_min": 5, "job_level_max": 3}, "job_level_min 5 is above job_level_max 3"),
        ({"tenure_years_min": 4, "tenure_years_max": 2}, "tenure_years_min 4 is above"),
        ({"tenure_years_min": -1}, "greater than or equal to 0"),
        ({"seniority": 3}, "Extra inputs are not permitted"),
        ({"departments": [""]}, "at least 1 character"),
    ],
)
def test_bad_rules_are_refused_saying_which(body: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        RoleRules.model_validate(body)


def test_automatic_enrolment_needs_rules_and_prefers_the_learner_role() -> None:
    with pytest.raises(ValidationError, match="automatic enrolment needs rules"):
        ProgramRules(enrolment="automatic")
    both = ProgramRules(
        enrolment="automatic",
        learner=RoleRules(tenure_years_min=1),
        mentor=RoleRules(departments=("Design",)),
    )
    assert both.automatic_role(Person(), TODAY) == "learner"
    newcomer = Person(hire_date=TODAY - timedelta(days=30))
    assert both.automatic_role(newcomer, TODAY) == "mentor"
    # A role without rules takes only those who enrol themselves.
    mentors_only = ProgramRules(enrolment="automatic", mentor=RoleRules(job_level_max=3))
    assert mentors_only.automatic_role(Person(job_level="L7"), TODAY) is None
    assert mentors_only.automatic_role(Person(), TODAY) == "mentor"


@given(
    level=st.integers(0, 30),
    low=st.none() | st.integers(0, 30),
    high=st.none() | st.integers(0, 30),
    prefix=st.sampled_from(["", "L", "IC", "Level "]),
)
def test_a_job_level_meets_a_range_exactly_when_it_lies_in_it(
    level: int, low: int | None, high: int | None, prefix: str
) -> None:
    if low is not None and high is not None and low > high:
        low, high = high, low
    rules = RoleRules(job_level_min=low, job_level_max=high)
    inside = (low is None or level >= low) and (high is None or level <= high)
    assert job_level(f"{prefix}{level}") == level
    assert (not shortfalls(rules, Person(job_level=f"{prefix}{level}"), TODAY)) == inside


@given(
    days=st.integers(0, 20_000), low=st.none() | st.floats(0, 50), high=st.none() | st.floats(0, 50)
)
def test_tenure_is_read_as_of_today(days: int, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        low, high = high, low
    rules = RoleRules(tenure_years_min=low, tenure_years_max=high)
    years = days / 365.25
    inside = (low is None or years >= low) and (high is None or years <= high)
    hired = Person(hire_date=TODAY - timedelta(days=days))
    assert (not shortfalls(rules, hired, TODAY)) == inside


# Few values, so that groups of alike people and people meeting the rules are common.
people = st.builds(
    Person,
    department=st.sampled_from(["Design", "design ", "Sales", "", None]),
    division=st.sampled_from(["Growth", None]),
    location=st.sampled_from(["Berlin", None]),
    job_level=st.sampled_from(["L2", "IC7", "Senior", None]),
    hire_date=st.sampled_from([0, 365, 1900, 3700, None]).map(
        lambda days: None if days is None else TODAY - timedelta(days)
    ),
)


def any_or(*names: str) -> st.SearchStrategy[tuple[str, ...]]:
    """No condition, or one or two of ``names``."""
    chosen = st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)
    return st.just(()) | chosen.map(tuple)


def ranges(bound: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    """No condition, or (low, high) with either open: low never above high."""
    either = st.tuples(st.none() | bound, st.none() | bound)
    return st.just((None, None)) | either.map(lambda pair: pair if None in pair else sorted(pair))


role_rules = st.builds(
    lambda levels, tenure, **names: RoleRules(
        job_level_min=levels[0],
        job_level_max=levels[1],
        tenure_years_min=tenure[0],
        tenure_years_max=tenure[1],
        **names,
    ),
    ranges(st.integers(0, 10)),
    ranges(st.floats(0, 10)),
    departments=any_or("design", "Sales", "Legal"),
    divisions=any_or("GROWTH", "Retail"),
    locations=any_or("berlin", "Paris"),
    exclude_departments=any_or("Sales", "Legal"),
)


@given(rules=role_rules, alike=st.lists(st.tuples(people, st.integers(1, 5)), max_size=10))
def test_counting_alike_people_together_counts_who_meets_the_rules_one_by_one(
    rules: RoleRules, alike: list[tuple[Person, int]]
) -> None:
    workforce = [person for person, times in alike for _ in range(times)]
    read = [field.name for field in fields(Person)]
    groups = [(*astuple(person), times) for person, times in Counter(workforce).items()]
    meeting = sum(1 for person in workforce if not shortfalls(rules, person, TODAY))
    assert count_meeting(rules, read, groups, TODAY) == meeting
