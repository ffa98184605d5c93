"""Merge (merge.dev) unified HRIS webhooks: the ``Employee`` common model when it changes.

    {"hook": {"id": "...", "event": "Employee.changed", "target": "..."},
     "linked_account": {"integration_slug": "workday", ...},
     "data": {"id": "<merge id>", "employee_number": "2", "employment_status": "ACTIVE", ...}}

``data.id`` is Merge's id for the person, which ``manager`` refers to. Team, location and
employments are ids unless the webhook expands them into objects; only expanded ones are read.
A null leaves the stored value: a removal, say, carries little more than the ids.
Other common models (Employment, LinkedAccount, …) carry no employee record and map to nothing.
"""

from datetime import datetime
from typing import Any

from crossgen_matching.directory.record import EmployeeRecord


def looks_like(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("hook"), dict) and "data" in payload


def employees(payload: Any, *, source: str, received_at: datetime) -> list[EmployeeRecord]:
    if not looks_like(payload):
        raise ValueError('a Merge webhook has a "hook" and "data"')
    model, _, event = str(payload["hook"].get("event", "")).partition(".")
    if model != "Employee":
        return []
    data = payload["data"]
    if not isinstance(data, dict) or not data.get("id"):
        raise ValueError("a Merge Employee needs an id")
    modified = data.get("modified_at")
    removed = event == "removed" or bool(data.get("remote_was_deleted"))
    values = {
        "employee_number": data.get("employee_number"),
        "external_id": str(data["id"]),
        "user_name": data.get("username"),
        "display_name": data.get("display_full_name") or _full_name(data),
        "email": data.get("work_email"),
        "active": _active(data.get("employment_status")),
        "manager_external_id": _id(data.get("manager")),
        "hire_date": _date(data.get("hire_date") or data.get("start_date")),
        "department": _name(data.get("team")),
        "location": _name(data.get("work_location")),
        "title": _job_title(data.get("employments")),
    }
    return [
        EmployeeRecord.model_validate(
            {field: value for field, value in values.items() if value is not None}
            | {
                "source": source,
                "source_timestamp": modified or received_at,
                "vendor_event_id": f"{data['id']}@{modified}" if modified else None,
                "removed": removed,
            }
        )
    ]


def _active(status: Any) -> bool | None:
    return None if status is None else status == "ACTIVE"  # PENDING: not started yet


def _full_name(data: dict[str, Any]) -> str | None:
    first = data.get("preferred_name") or data.get("first_name")
    last = data.get("last_name")
    return f"{first} {last}" if first and last else None


def _id(reference: Any) -> str | None:
    return reference.get("id") if isinstance(reference, dict) else reference


def _name(reference: Any) -> str | None:
    return reference.get("name") if isinstance(reference, dict) else None


def _job_title(employments: Any) -> str | None:
    expanded = [e for e in employments or () if isinstance(e, dict)]
    return next((e.get("job_title") for e in expanded if e.get("job_title")), None)


def _date(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) else None  # Merge dates are date-times
