"""Vendor payloads on the HRIS topic, each mapped onto EmployeeRecords by one module.

A mapper module has ``looks_like(payload)`` (to recognise a record whose producer set no
``hris-format`` header) and ``employees(payload, source=, received_at=)``, which raises ValueError
with the reason for a payload it cannot read. Adding a vendor is one module, its tests and a line
in ``MAPPERS``.
"""

from datetime import datetime
from typing import Any, Protocol

from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.directory.vendors import bamboohr, merge, scim


class Mapper(Protocol):
    def looks_like(self, payload: Any) -> bool: ...

    def employees(
        self, payload: Any, *, source: str, received_at: datetime
    ) -> list[EmployeeRecord]: ...


MAPPERS: dict[str, Mapper] = {"scim": scim, "bamboohr": bamboohr, "merge": merge}


def format_of(payload: Any, declared: str | None) -> str:
    """The format a record declares, or else the one its payload looks like."""
    if declared is not None:
        if declared not in MAPPERS:
            raise ValueError(f"unknown hris-format {declared!r}; known: {', '.join(MAPPERS)}")
        return declared
    found = next((name for name, mapper in MAPPERS.items() if mapper.looks_like(payload)), None)
    if found is None:
        raise ValueError(f"no hris-format header, and the payload is none of: {', '.join(MAPPERS)}")
    return found
