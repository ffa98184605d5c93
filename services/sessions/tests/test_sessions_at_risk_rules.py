"""When a pairing is at risk, given its history and now; without I/O."""

from datetime import UTC, date, datetime, timedelta

from crossgen_sessions.at_risk.rules import History, Outcome, Policy, Reason, risks

OPENED = datetime(2030, 1, 6, 9, 0, tzinfo=UTC)
POLICY = Policy(stalled_after=timedelta(days=21), no_shows_in_a_row=2)


def day(n: int) -> datetime:
    return OPENED + timedelta(days=n)


def held(n: int) -> Outcome:
    return Outcome(at=day(n), held=True)


def missed(n: int) -> Outcome:
    return Outcome(at=day(n), held=False)


def found(
    *outcomes: Outcome, now: datetime, ends_on: date | None = None
) -> list[tuple[str, datetime, str]]:
    history = History(OPENED, ends_on, outcomes)
    return [(r.reason, r.since, r.detail) for r in risks(history, POLICY, now)]


def test_a_new_pairing_is_stalled_once_it_has_not_met_for_the_set_days() -> None:
    assert found(now=day(20)) == []
    assert found(now=day(21)) == [(Reason.STALLED, OPENED, "no session held in 21 days")]


def test_the_stall_is_counted_from_the_last_session_held() -> None:
    assert found(held(3), held(10), now=day(30)) == []
    assert found(held(10), held(3), now=day(31)) == [
        (Reason.STALLED, day(10), "no session held in 21 days")
    ]


def test_the_same_stall_is_the_same_episode_however_late_it_is_found() -> None:
    [(_, early, _)] = found(held(2), now=day(23))
    [(_, late, _)] = found(held(2), now=day(60))
    assert early == late == day(2)


def test_no_shows_in_a_row_since_the_last_meeting_put_a_pairing_at_risk() -> None:
    assert found(missed(1), held(2), missed(3), now=day(4)) == []
    assert found(held(2), missed(3), missed(4), now=day(5)) == [
        (Reason.NO_SHOWS, day(2), "2 no-shows in a row")
    ]
    # a longer streak is the same episode: it started at the same meeting
    assert found(held(2), missed(3), missed(4), missed(5), now=day(6)) == [
        (Reason.NO_SHOWS, day(2), "3 no-shows in a row")
    ]


def test_no_shows_before_any_meeting_count_from_the_opening() -> None:
    assert found(missed(7), missed(14), now=day(15)) == [
        (Reason.NO_SHOWS, OPENED, "2 no-shows in a row")
    ]


def test_meeting_again_ends_both_episodes() -> None:
    assert found(missed(7), missed(14), now=day(22)) == [
        (Reason.STALLED, OPENED, "no session held in 22 days"),
        (Reason.NO_SHOWS, OPENED, "2 no-shows in a row"),
    ]
    assert found(missed(7), missed(14), held(21), now=day(22)) == []


def test_a_pairing_past_its_end_date_is_not_at_risk() -> None:
    last_day = day(30).date()
    assert found(now=day(30), ends_on=last_day) != []
    assert found(now=day(31), ends_on=last_day) == []
