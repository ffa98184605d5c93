"""SCIM 2.0 User resources on the HRIS topic (a Workday or SAP integration publishing SCIM).

The same mapping as the SCIM endpoint; the record is the full SCIM view of the person, so what it
leaves out is cleared (but for the job level, hire date, skills and interests, when it lacks
Crossgen's extension). ``meta.lastModified`` dates it and, with ``meta.version``, identifies it.
"""

from datetime import datetime
from typing import Any

from scim2_models import SCIMException

from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.directory.scim import resources

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def looks_like(payload: Any) -> bool:
    return isinstance(payload, dict) and USER_SCHEMA in (payload.get("schemas") or ())


def employees(payload: Any, *, source: str, received_at: datetime) -> list[EmployeeRecord]:
    try:
        user = resources.parse_user(payload)
    except SCIMException as exc:
        raise ValueError(f"not a SCIM User: {exc.detail}") from exc
    number = resources.employee_number_of(user)
    if not number:
        raise ValueError("a SCIM User needs an enterprise employeeNumber or an externalId")
    meta = user.meta
    version = meta and (meta.version or meta.last_modified)
    return [
        EmployeeRecord(
            employee_number=number,
            source=source,
            source_timestamp=(meta and meta.last_modified) or received_at,
            vendor_event_id=f"{user.id or number}@{version}" if version else None,
            **resources.person_fields(user),
        )
    ]
