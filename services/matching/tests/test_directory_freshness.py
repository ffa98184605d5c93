"""Duplicates and out-of-order records never undo newer state (pure, no database)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crossgen_matching.directory.freshness import Outcome, Stored, judge
from crossgen_matching.directory.record import EmployeeRecord

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def record(minutes: int, event: str | None = None, **fields: Any) -> EmployeeRecord:
    return EmployeeRecord(
        employee_number="E-1",
        source="hris:test",
        source_timestamp=T0 + timedelta(minutes=minutes),
        vendor_event_id=event,
        **fields,
    )


def stored(minutes: int, event: str | None = None, **values: Any) -> Stored:
    return Stored(T0 + timedelta(minutes=minutes), event, values)


def test_a_first_record_creates_with_what_it_sets() -> None:
    verdict = judge(None, record(0, department="Sales", active=True))
    assert verdict.outcome == Outcome.CREATED
    assert verdict.changes == {"department": "Sales", "active": True, "removed": False}


def test_the_vendor_event_applied_last_is_a_duplicate() -> None:
    verdict = judge(stored(5, "ev-1", department="Sales"), record(5, "ev-1", department="IT"))
    assert verdict.outcome == Outcome.DUPLICATE and not verdict.applies


def test_an_older_record_is_stale_whatever_it_says() -> None:
    verdict = judge(stored(10, "ev-2", active=True), record(9, "ev-1", active=False))
    assert verdict.outcome == Outcome.STALE and verdict.changes == {}


def test_only_fields_that_differ_are_changed() -> None:
    current = stored(0, department="Sales", title="Analyst", removed=False, active=True)
    verdict = judge(current, record(1, department="Sales", title="Lead"))
    assert verdict.outcome == Outcome.UPDATED and verdict.changes == {"title": "Lead"}
    same = judge(current, record(1, department="Sales"))
    assert same.outcome == Outcome.UNCHANGED and same.applies


def test_a_removal_deactivates_and_a_later_activation_rehires() -> None:
    gone = record(1, removed=True)
    assert judge(stored(0, active=True, removed=False), gone).changes == {
        "active": False,
        "removed": True,
    }
    rehire = judge(stored(1, active=False, removed=True), record(2, active=True))
    assert rehire.changes == {"active": True, "removed": False}


def test_no_value_for_active_leaves_the_flag_alone() -> None:
    assert judge(stored(0, active=False), record(1, active=None)).outcome == Outcome.UNCHANGED


DEPARTMENTS = st.sampled_from(["Sales", "IT", "HR", None])


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), DEPARTMENTS, st.booleans()),
        min_size=1,
        max_size=12,
        unique_by=lambda r: r[0],
    ),
    st.randoms(),
)
def test_in_any_arrival_order_with_redeliveries_the_newest_record_wins(
    history: list[tuple[int, str | None, bool]], shuffle: Any
) -> None:
    records = [record(m, f"ev-{m}", department=d, active=a) for m, d, a in history]
    arrivals = records + records[: len(records) // 2]  # some come twice
    shuffle.shuffle(arrivals)
    state: Stored | None = None
    for incoming in arrivals:
        verdict = judge(state, incoming)
        if verdict.applies:
            values = {**(state.values if state else {}), **verdict.changes}
            state = Stored(incoming.source_timestamp, incoming.vendor_event_id, values)
    newest = max(records, key=lambda r: r.source_timestamp)
    assert state is not None and state.source_timestamp == newest.source_timestamp
    assert state.values["department"] == newest.department
    assert state.values["active"] == newest.active
