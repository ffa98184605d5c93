"""The rules inside a pairing, without I/O."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from crossgen_sessions import rules
from crossgen_shared.errors import Conflict, Forbidden, Unprocessable

NOW = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
PAIR = rules.Pair(uuid4(), uuid4(), learner_person_id="E-1", mentor_person_id="E-2")


def test_each_side_has_its_own_participant_id() -> None:
    assert rules.participant_in(PAIR, "E-1") == PAIR.learner_id
    assert rules.participant_in(PAIR, "E-2") == PAIR.mentor_id


def test_someone_outside_the_pairing_may_not_act_in_it() -> None:
    assert PAIR.participant_id_of("E-3") is None
    with pytest.raises(Forbidden):
        rules.participant_in(PAIR, "E-3")


def test_an_admin_may_read_any_pairing_a_stranger_none() -> None:
    rules.ensure_may_read(PAIR, "E-1", is_admin=False)
    rules.ensure_may_read(PAIR, "hr", is_admin=True)
    with pytest.raises(Forbidden):
        rules.ensure_may_read(PAIR, "E-3", is_admin=False)


def test_a_session_is_scheduled_from_now_on() -> None:
    rules.ensure_schedulable("active", NOW, NOW)
    rules.ensure_schedulable("active", NOW + timedelta(days=7), NOW)
    with pytest.raises(Unprocessable, match="in the past") as raised:
        rules.ensure_schedulable("active", NOW - timedelta(minutes=1), NOW)
    assert raised.value.status_code == 422


def test_a_session_in_another_time_zone_is_compared_as_the_same_instant() -> None:
    paris_ten = datetime(2030, 5, 1, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    with pytest.raises(Unprocessable):
        rules.ensure_schedulable("active", paris_ten, NOW)  # 08:00 UTC


def test_only_an_active_pairing_gets_new_sessions() -> None:
    with pytest.raises(Conflict, match="ended"):
        rules.ensure_schedulable("ended", NOW + timedelta(days=1), NOW)


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_only_a_scheduled_session_is_completed(status: str) -> None:
    rules.ensure_completable("scheduled")
    with pytest.raises(Conflict, match=status):
        rules.ensure_completable(status)


@pytest.mark.parametrize("status", ["scheduled", "cancelled"])
def test_feedback_is_given_on_a_completed_session_only(status: str) -> None:
    rules.ensure_feedback_open("completed")
    with pytest.raises(Conflict):
        rules.ensure_feedback_open(status)
