"""The rules inside a pairing, without I/O."""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossgen_sessions import rules
from crossgen_sessions.rules import Booking, Slot
from crossgen_shared.errors import Conflict, Forbidden, Unprocessable

NOW = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
PAIR = rules.Pair(uuid4(), uuid4(), learner_person_id="E-1", mentor_person_id="E-2")


def test_each_side_has_its_own_participant_id() -> None:
    assert rules.participant_in(PAIR, "E-1") == PAIR.learner_id
    assert rules.participant_in(PAIR, "E-2") == PAIR.mentor_id
    assert PAIR.side_of(PAIR.learner_id) == "learner"
    assert PAIR.side_of(PAIR.mentor_id) == "mentor"


def test_someone_outside_the_pairing_may_not_act_in_it() -> None:
    assert PAIR.participant_id_of("E-3") is None
    with pytest.raises(Forbidden):
        rules.participant_in(PAIR, "E-3")


def test_the_pair_and_the_program_owner_may_read_a_pairing_nobody_else() -> None:
    rules.ensure_may_read(PAIR, "E-1", owns_program=False)
    rules.ensure_may_read(PAIR, "hr", owns_program=True)
    with pytest.raises(Forbidden):
        rules.ensure_may_read(PAIR, "hr", owns_program=False)


def test_a_session_is_scheduled_from_now_on() -> None:
    rules.ensure_schedulable("active", None, Slot(NOW, 30), NOW)
    rules.ensure_schedulable("active", None, Slot(NOW + timedelta(days=7), 30), NOW)
    with pytest.raises(Unprocessable, match="in the past") as raised:
        rules.ensure_schedulable("active", None, Slot(NOW - timedelta(minutes=1), 30), NOW)
    assert raised.value.status_code == 422


def test_a_session_in_another_time_zone_is_compared_as_the_same_instant() -> None:
    paris_ten = datetime(2030, 5, 1, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    with pytest.raises(Unprocessable):
        rules.ensure_schedulable("active", None, Slot(paris_ten, 30), NOW)  # 08:00 UTC


def test_only_an_active_pairing_gets_new_sessions() -> None:
    with pytest.raises(Conflict, match="ended"):
        rules.ensure_schedulable("ended", None, Slot(NOW + timedelta(days=1), 30), NOW)


def test_a_session_falls_on_or_before_the_pairings_end_date() -> None:
    last_day = date(2030, 5, 10)
    rules.ensure_schedulable(
        "active", last_day, Slot(datetime(2030, 5, 10, 23, 0, tzinfo=UTC), 60), NOW
    )
    with pytest.raises(Unprocessable, match="after the pairing's end date 2030-05-10"):
        rules.ensure_schedulable("active", last_day, Slot(rules.end_of(last_day), 30), NOW)


def test_sessions_of_one_person_may_touch_but_not_overlap() -> None:
    nine = Slot(NOW, 60)
    taken = [Booking("E-1", nine)]
    rules.ensure_free(Slot(NOW + timedelta(hours=1), 30), taken)  # starts as the other ends
    rules.ensure_free(Slot(NOW - timedelta(minutes=30), 30), taken)  # ends as the other starts
    with pytest.raises(
        Conflict,
        match="E-1 already has a session from 2030-05-01 09:00 UTC to 2030-05-01 10:00 UTC",
    ):
        rules.ensure_free(Slot(NOW + timedelta(minutes=59), 30), taken)
    with pytest.raises(Conflict):
        rules.ensure_free(Slot(NOW - timedelta(minutes=10), 15), taken)


slots = st.builds(
    Slot,
    st.datetimes(
        min_value=datetime(2030, 1, 1), max_value=datetime(2030, 1, 3), timezones=st.just(UTC)
    ),
    st.integers(rules.MIN_DURATION_MINUTES, rules.MAX_DURATION_MINUTES),
)


@given(slots, slots)
def test_overlap_is_symmetric_and_means_a_shared_minute(a: Slot, b: Slot) -> None:
    assert a.overlaps(b) == b.overlaps(a)
    shared = min(a.ends_at, b.ends_at) - max(a.starts_at, b.starts_at)
    assert a.overlaps(b) == (shared > timedelta(0))


@pytest.mark.parametrize("status", ["completed", "no_show", "cancelled"])
def test_only_a_scheduled_session_is_moved_marked_or_cancelled(status: str) -> None:
    rules.ensure_scheduled("scheduled", "cancelled")
    with pytest.raises(Conflict, match=f"session is {status}; only a scheduled session can be"):
        rules.ensure_scheduled(status, "cancelled")


def test_a_no_show_is_recorded_once_the_session_has_started() -> None:
    rules.ensure_started(Slot(NOW, 30), NOW)
    with pytest.raises(Unprocessable, match="a no-show is recorded once it has started"):
        rules.ensure_started(Slot(NOW + timedelta(minutes=1), 30), NOW)


@pytest.mark.parametrize("status", ["scheduled", "no_show", "cancelled"])
def test_feedback_is_given_on_a_held_session_only(status: str) -> None:
    rules.ensure_feedback_open("completed")
    with pytest.raises(Conflict, match="feedback is given on a held session"):
        rules.ensure_feedback_open(status)


def test_the_end_date_moves_to_today_or_later_in_an_active_pairing() -> None:
    today = NOW.date()
    rules.ensure_end_date("active", today, today)
    rules.ensure_end_date("active", today + timedelta(days=90), today)
    with pytest.raises(Unprocessable, match="in the past; to finish today, set 2030-05-01"):
        rules.ensure_end_date("active", today - timedelta(days=1), today)
    with pytest.raises(Conflict, match="pairing is ended"):
        rules.ensure_end_date("ended", today, today)
