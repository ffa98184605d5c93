"""Each vendor's payloads onto the internal employee model, from realistic fixtures."""

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from scim2_models import EnterpriseUser

from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.directory.scim import resources
from crossgen_matching.directory.scim.resources import CrossgenUser
from crossgen_matching.directory.vendors import MAPPERS, format_of

FIXTURES = Path(__file__).parent / "fixtures" / "hris"
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CROSSGEN = "urn:ietf:params:scim:schemas:extension:crossgen:2.0:User"


def fixture(vendor: str) -> dict[str, Any]:
    payloads: dict[str, Any] = json.loads((FIXTURES / f"{vendor}.json").read_text())
    return payloads


def mapped(vendor: str, name: str) -> list[EmployeeRecord]:
    return MAPPERS[vendor].employees(
        fixture(vendor)[name], source=f"hris:{vendor}", received_at=RECEIVED
    )


def one(vendor: str, name: str) -> EmployeeRecord:
    (record,) = mapped(vendor, name)
    return record


@pytest.mark.parametrize("vendor", ["scim", "bamboohr", "merge"])
def test_each_fixture_is_recognised_as_its_format(vendor: str) -> None:
    for payload in fixture(vendor).values():
        assert format_of(payload, None) == vendor


def test_unknown_or_unrecognisable_formats_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="unknown hris-format 'workday'"):
        format_of({}, "workday")
    with pytest.raises(ValueError, match="none of: scim, bamboohr, merge"):
        format_of({"hello": "world"}, None)


def test_scim_user_maps_core_and_enterprise_attributes() -> None:
    record = one("scim", "hired")
    assert record.model_dump(exclude_unset=True, exclude={"source_timestamp"}) == {
        "employee_number": "100482",
        "source": "hris:scim",
        "vendor_event_id": '2819c223-7f76-453a-919d-413861904646@W/"a330bc54f0671c9"',
        "external_id": "wd-48213",
        "user_name": "amelia.chen@acme.example",
        "display_name": "Amelia Chen",
        "email": "amelia.chen@acme.example",  # the primary one, not the first
        "active": True,
        "title": "Marketing Associate",
        "timezone": "Europe/London",
        "languages": ("en-GB",),
        "location": "London",
        "department": "Brand Marketing",
        "division": "Growth",
        "organization": "Acme Europe",
        "cost_center": "CC-4410",
        "manager_employee_number": "100017",
    }
    assert record.source_timestamp == datetime(2024, 3, 1, 9, tzinfo=UTC)


def test_scim_lifecycle_termination_rehire_and_manager_change() -> None:
    moved, left, back = (one("scim", n) for n in ("manager_changed", "terminated", "rehired"))
    assert moved.manager_employee_number == "100230"
    assert moved.department == "Performance Marketing"
    assert left.active is False and left.changes()["active"] is False
    assert back.active is True and back.changes()["removed"] is False
    assert moved.source_timestamp < left.source_timestamp < back.source_timestamp


def test_a_scim_record_without_employee_number_or_external_id_is_refused() -> None:
    payload = fixture("scim")["terminated"] | {"externalId": None}
    payload[ENTERPRISE] = {}
    with pytest.raises(ValueError, match="employeeNumber or an externalId"):
        MAPPERS["scim"].employees(payload, source="hris:scim", received_at=RECEIVED)


@pytest.mark.parametrize("name", ["hired", "terminated"])
def test_a_scim_users_extensions_are_read_as_its_own_lookup_finds_them(name: str) -> None:
    """``extension_of`` reads where scim2_models keeps an extension, to skip its path lookup."""
    plain = fixture("scim")[name]
    with_crossgen = plain | {"schemas": [*plain["schemas"], CROSSGEN], CROSSGEN: {"jobLevel": "L3"}}
    without = {k: v for k, v in plain.items() if k != ENTERPRISE} | {"externalId": "X-1"}
    for payload in (with_crossgen, without):
        user = resources.parse_user(payload)
        for kind in (EnterpriseUser, CrossgenUser):
            assert resources.extension_of(user, kind) == user[kind]
    assert resources.extension_of(resources.parse_user(with_crossgen), CrossgenUser) is not None
    assert resources.extension_of(resources.parse_user(without), EnterpriseUser) is None


def test_bamboohr_maps_english_field_names_and_sets_only_what_was_posted() -> None:
    record = one("bamboohr", "updated")
    assert record.model_dump(exclude_unset=True, exclude={"source_timestamp"}) == {
        "employee_number": "200311",
        "source": "hris:bamboohr",
        "vendor_event_id": "4107:updated:2024-04-02T14:05:11+0000",
        "removed": False,
        "external_id": "4107",
        "display_name": "Tom Nowak",
        "email": "tomasz.nowak@acme.example",
        "active": True,
        "department": "Platform Engineering",
        "division": "Technology",
        "location": "Warsaw",
        "title": "Senior Engineer",
        "hire_date": date(2019, 11, 4),
    }
    assert record.source_timestamp == datetime(2024, 4, 2, 14, 5, 11, tzinfo=UTC)


def test_bamboohr_lifecycle_manager_change_termination_rehire_and_delete() -> None:
    moved = one("bamboohr", "manager_changed")
    assert moved.manager_external_id == "3981"  # BambooHR's id, resolved by the directory
    assert moved.model_fields_set >= {"manager_external_id"} and "email" not in moved.changes()
    assert one("bamboohr", "terminated").active is False
    rehired = one("bamboohr", "rehired")
    assert rehired.active is True and rehired.hire_date == date(2025, 8, 18)
    deleted = one("bamboohr", "deleted")
    assert deleted.removed and deleted.employee_number is None and deleted.external_id == "4107"
    assert deleted.changes() == {"external_id": "4107", "active": False, "removed": True}


def test_bamboohr_created_without_fields_adds_nothing_until_its_update() -> None:
    assert mapped("bamboohr", "created") == []


def test_bamboohr_half_a_name_does_not_replace_the_display_name() -> None:
    payload = {"employees": [{"id": "7", "fields": {"First Name": "Jo", "Employee #": "9"}}]}
    (record,) = MAPPERS["bamboohr"].employees(payload, source="s", received_at=RECEIVED)
    assert "display_name" not in record.changes()
    assert record.source_timestamp == RECEIVED and record.vendor_event_id is None


def test_merge_maps_the_employee_common_model_with_expanded_objects() -> None:
    record = one("merge", "changed")
    assert record.model_dump(exclude_unset=True, exclude={"source_timestamp"}) == {
        "employee_number": "300077",
        "source": "hris:merge",
        "vendor_event_id": "0958cbc6-6040-430a-848e-aafacbadf4ae@2024-07-01T11:20:00Z",
        "removed": False,
        "external_id": "0958cbc6-6040-430a-848e-aafacbadf4ae",
        "user_name": "praman",
        "display_name": "Priya Raman",
        "email": "priya.raman@acme.example",
        "active": True,
        "manager_external_id": "17a54124-287f-494d-965e-3c5b330c9a68",
        "hire_date": date(2021, 6, 14),
        "department": "Data Science",
        "location": "Bengaluru",
        "title": "Data Scientist II",
    }


def test_merge_lifecycle_manager_change_termination_rehire_and_removal() -> None:
    moved = one("merge", "manager_changed")
    assert moved.manager_external_id == "a3b8e2f4-5c1d-4e8f-9a7b-6c5d4e3f2a1b"
    assert "department" not in moved.changes()  # an unexpanded team id says nothing
    assert one("merge", "terminated").active is False
    assert one("merge", "rehired").changes()["removed"] is False
    removed = one("merge", "removed")
    assert removed.employee_number == "300077"
    assert removed.changes() == {  # a removal clears nothing it does not mention
        "external_id": "0958cbc6-6040-430a-848e-aafacbadf4ae",
        "active": False,
        "removed": True,
    }
    assert mapped("merge", "sync_finished") == []  # not about an employee


@pytest.mark.parametrize(("vendor", "name"), [("scim", "hired"), ("bamboohr", "updated"),
                                              ("merge", "changed")])  # fmt: skip
def test_the_same_vendor_event_maps_to_the_same_event_id(vendor: str, name: str) -> None:
    first, again = one(vendor, name), one(vendor, name)
    assert first.vendor_event_id is not None and first.vendor_event_id == again.vendor_event_id


@pytest.mark.parametrize(
    ("vendor", "payload", "reason"),
    [
        ("scim", {"schemas": [], "userName": 3}, "not a SCIM User"),
        ("bamboohr", {"employees": [{"fields": {}}]}, "needs an id"),
        ("bamboohr", {"employees": [{"id": "1", "fields": {"Work Email": "x"}}]}, "email"),
        ("bamboohr", {"employees": [{"id": "1", "fields": {"Hire Date": "soon"}}]}, "hire_date"),
        ("merge", {"hook": {"event": "Employee.changed"}, "data": {}}, "needs an id"),
    ],
)
def test_unreadable_payloads_raise_value_errors_with_the_reason(
    vendor: str, payload: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        MAPPERS[vendor].employees(payload, source="s", received_at=RECEIVED)
