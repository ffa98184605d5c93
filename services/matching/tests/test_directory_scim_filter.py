"""SCIM filters, parsed by scim2-models, as SQL over the employees table (no database)."""

from typing import Any

import pytest
from scim2_models import EnterpriseUser, InvalidFilterException, ScimFilter, User

from crossgen_matching.directory.scim.filters import where

Users = ScimFilter[User[EnterpriseUser]]


def sql(expression: str) -> tuple[str, dict[str, Any]]:
    compiled = where(Users(expression)).compile()
    return " ".join(str(compiled).split()), compiled.params


def test_string_equality_ignores_case_unless_the_attribute_is_case_exact() -> None:
    assert sql('userName eq "Lea@Example.COM"') == (
        "lower(coalesce(employees.user_name, employees.email, employees.employee_number))"
        " = :lower_1",
        {"lower_1": "lea@example.com"},
    )
    assert sql('externalId eq "Ab-1"') == (
        "employees.external_id = :external_id_1",
        {"external_id_1": "Ab-1"},
    )


def test_the_attributes_identity_providers_look_users_up_by() -> None:
    assert sql('emails.value eq "a@b.c"')[0] == "lower(employees.email) = :lower_1"
    assert sql('emails eq "a@b.c"')[0] == "lower(employees.email) = :lower_1"
    assert sql("active eq false") == ("employees.active = false", {})
    assert sql(
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"'
    ) == ("lower(employees.employee_number) = :lower_1", {"lower_1": "7"})
    # The SCIM id is case-exact; RFC 7643 makes employeeNumber case-insensitive.
    assert sql('id eq "E-1"')[0] == "employees.employee_number = :employee_number_1"


def test_and_or_not_and_presence() -> None:
    text, params = sql('(userName sw "a" or title co "50%") and not (active eq false)')
    assert text == (
        "((lower(coalesce(employees.user_name, employees.email, employees.employee_number))"
        " LIKE :lower_1 || '%' ESCAPE '/')"
        " OR (lower(employees.title) LIKE '%' || :lower_2 || '%' ESCAPE '/'))"
        " AND employees.active != false"
    )
    assert params == {"lower_1": "a", "lower_2": "50/%"}  # a literal % stays literal
    assert sql("title pr")[0] == "employees.title IS NOT NULL AND employees.title != :title_1"


def test_dates_compare_as_dates() -> None:
    text, params = sql('meta.lastModified gt "2025-01-01T00:00:00Z"')
    assert text == "employees.updated_at > :updated_at_1"
    assert params["updated_at_1"].year == 2025


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ('nickName eq "x"', "not supported"),
        ('emails[type eq "work"]', "value selections"),
        ('userName eq "x" and', "invalid syntax"),
        ("active gt true", "cannot be applied"),
        ('bogus eq "x"', "bogus"),
    ],
)
def test_unsupported_or_malformed_filters_are_invalid_filter_errors(
    expression: str, reason: str
) -> None:
    with pytest.raises(InvalidFilterException, match=reason):
        where(Users(expression))
