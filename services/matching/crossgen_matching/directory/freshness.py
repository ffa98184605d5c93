"""Whether a record may change what is stored. Pure: no I/O.

Feeds redeliver and reorder: a vendor resends an event, a replay brings back an old record, two
sources disagree. A record applies only if it is not the event applied last and is not older than
what is stored, so nothing ever undoes newer state.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from crossgen_matching.directory.record import EmployeeRecord


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"  # older than what is stored
    DUPLICATE = "duplicate"  # the vendor event applied last, again


@dataclass(frozen=True)
class Stored:
    source_timestamp: datetime
    last_vendor_event_id: str | None
    values: Mapping[str, Any]  # the person's fields and ``removed``, as EmployeeRecord has them


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    changes: Mapping[str, Any]  # the fields to write: only those that differ from what is stored

    @property
    def applies(self) -> bool:
        return self.outcome not in (Outcome.STALE, Outcome.DUPLICATE)


def judge(stored: Stored | None, record: EmployeeRecord) -> Verdict:
    if stored is None:
        return Verdict(Outcome.CREATED, record.changes())
    if record.vendor_event_id and record.vendor_event_id == stored.last_vendor_event_id:
        return Verdict(Outcome.DUPLICATE, {})
    if record.source_timestamp < stored.source_timestamp:
        return Verdict(Outcome.STALE, {})
    changes = {k: v for k, v in record.changes().items() if stored.values.get(k) != v}
    return Verdict(Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)
