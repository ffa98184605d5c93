"""BambooHR field-based ("global") webhooks, JSON encoding.

    {"employees": [{"id": "123", "action": "Updated", "timestamp": "2026-01-31T18:42:00+0000",
                    "changedFields": ["Department"], "fields": {"Department": "Sales", ...}}]}

A webhook posts the fields its admin chose, under BambooHR's English field names ("Employee #",
"Work Email") or API aliases ("employeeNumber", "workEmail"): only those are set. ``id`` is
BambooHR's own id for the person; ``supervisorEId`` names the manager by that id, ``supervisorId``
by employee number. Created and Deleted carry no fields; a Created adds nothing until its Updated
follows, a Deleted means the person left.
"""

import re
from datetime import datetime
from typing import Any

from crossgen_matching.directory.record import EmployeeRecord

# Field name (lower case, letters, digits and # only) -> record field.
FIELDS = {
    "employee#": "employee_number",
    "employeenumber": "employee_number",
    "workemail": "email",
    "department": "department",
    "division": "division",
    "location": "location",
    "jobtitle": "title",
    "hiredate": "hire_date",
    "supervisoreid": "manager_external_id",
    "supervisorid": "manager_employee_number",
}
NAMES = ("preferredname", "firstname", "lastname", "displayname")
# "Status" is the account (Active / Inactive); employment status says "Terminated" on the way out.
STATUS, EMPLOYMENT_STATUS = "status", ("employmentstatus", "employmenthistorystatus")
NO_DATE = "0000-00-00"  # how BambooHR writes an empty date


def looks_like(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("employees"), list)


def employees(payload: Any, *, source: str, received_at: datetime) -> list[EmployeeRecord]:
    if not looks_like(payload):
        raise ValueError('a BambooHR webhook has an "employees" list')
    return [
        record
        for entry in payload["employees"]
        if (record := _employee(entry, source, received_at)) is not None
    ]


def _employee(entry: Any, source: str, received_at: datetime) -> EmployeeRecord | None:
    if not isinstance(entry, dict) or not entry.get("id"):
        raise ValueError(f"a BambooHR employee entry needs an id: {entry!r}")
    action = str(entry.get("action", "Updated")).lower()
    fields = {_key(k): v for k, v in (entry.get("fields") or {}).items()}
    values: dict[str, Any] = {
        target: fields[name] for name, target in FIELDS.items() if name in fields
    }
    values |= _name(fields) | _active(fields)
    if values.get("hire_date") == NO_DATE:
        values["hire_date"] = None
    if action == "created" and not values:
        return None  # BambooHR follows it with an Updated that carries the fields
    timestamp = entry.get("timestamp")
    return EmployeeRecord.model_validate(
        values
        | {
            "external_id": str(entry["id"]),
            "source": source,
            "source_timestamp": timestamp or received_at,
            "vendor_event_id": f"{entry['id']}:{action}:{timestamp}" if timestamp else None,
            "removed": action == "deleted",
        }
    )


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9#]", "", name.lower())


def _name(fields: dict[str, Any]) -> dict[str, Any]:
    preferred, first, last, display = (fields.get(n) for n in NAMES)
    if display:
        return {"display_name": display}
    if (preferred or first) and last:
        return {"display_name": f"{preferred or first} {last}"}
    return {}  # half a name is not a name: leave the stored one


def _active(fields: dict[str, Any]) -> dict[str, Any]:
    employment = next((fields[n] for n in EMPLOYMENT_STATUS if n in fields), None)
    if str(employment).strip().lower() == "terminated":
        return {"active": False}
    if STATUS in fields:
        return {"active": str(fields[STATUS]).strip().lower() == "active"}
    return {}
