"""The fault suite's oracle on hand-made facts: each kind of damage is counted, and only that."""

from dataclasses import replace
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from crossgen_local.evidence import consumer_restarts, errors_logged, lag_line
from crossgen_local.faults import SHORT, report
from crossgen_local.oracle import Facts, Fault, Notification, Participant, Published, judge

PROGRAM = "prog-1"
LEARNER, MENTOR = "E-000001", "E-000000"


def joined(event_id: str, participant: str, person: str) -> Published:
    data = {"participant_id": participant, "program_id": PROGRAM, "person_id": person}
    return Published(event_id, "participant-joined", data)


def updated(event_id: str, participant: str, seq: int) -> Published:
    data = {"participant_id": participant, "display_name": f"someone #{seq}"}
    return Published(event_id, "participant-updated", data)


PROPOSAL = Published(
    "ev-proposed",
    "match-proposed",
    {
        "pairing_id": "pairing-1",
        "program_id": PROGRAM,
        "learner_person_id": LEARNER,
        "mentor_person_id": MENTOR,
    },
)


def facts(**changes: Any) -> Facts:
    """Two employees, two records each, all of it stored, published and mailed once."""
    healthy = Facts(
        accepted=[(MENTOR, 1), (LEARNER, 1), (MENTOR, 2), (LEARNER, 2)],
        program_id=PROGRAM,
        directory={MENTOR: f"{MENTOR} #2", LEARNER: f"{LEARNER} #2"},
        participants=[
            Participant("p-m", MENTOR, PROGRAM, f"{MENTOR} #2"),
            Participant("p-l", LEARNER, PROGRAM, f"{LEARNER} #2"),
        ],
        contacts={"p-m": f"{MENTOR} #2", "p-l": f"{LEARNER} #2"},
        participant_events=[
            joined("j-m", "p-m", MENTOR),
            joined("j-l", "p-l", LEARNER),
            updated("u-m2", "p-m", 2),
            updated("u-l2", "p-l", 2),
        ],
        pairing_events=[PROPOSAL],
        notifications=[
            Notification("n-l", "ev-proposed", "match-proposed", LEARNER, "sent"),
            Notification("n-m", "ev-proposed", "match-proposed", MENTOR, "sent"),
        ],
        emails=["n-l", "n-m"],
        dead_letters=[],
        pairs=[(LEARNER, MENTOR)],
        observations=[{f"directory {LEARNER}": 1}, {f"directory {LEARNER}": 2}],
    )
    return replace(healthy, **changes)


def test_a_healthy_run_passes() -> None:
    verdict = judge(facts())
    assert verdict.passed
    assert verdict.summary() == {
        "accepted": 4,
        "lost": 0,
        "duplicate side effects": 0,
        "per-employee reorders": 0,
        "dead-lettered": 0,
        "in doubt (unconfirmed sends)": 0,
        "republished event ids": 0,
        "consumers behind at the end": 0,
        "consumers restarted": 0,
        "lines logged at ERROR": 0,
    }
    assert verdict.seen["participants enrolled"] == 2
    assert verdict.seen["mails caught"] == 2


def test_a_consumer_still_behind_once_the_drain_is_over_fails_the_run() -> None:
    verdict = judge(facts())
    pairings = [TopicPartition("crossgen.pairings.v1", n) for n in range(3)]
    verdict.behind = [lag_line("sessions", {pairings[2]: 229, pairings[0]: 2, pairings[1]: 0})]
    assert verdict.behind == [
        "sessions: 231 records not consumed yet"
        " (crossgen.pairings.v1[0]: 2, crossgen.pairings.v1[2]: 229)"
    ]
    assert not verdict.passed
    assert verdict.summary()["consumers behind at the end"] == 1
    assert report(verdict, SHORT)["problems"]["behind"] == verdict.behind  # in faults.json


def test_a_consumer_its_service_restarted_is_reported_and_fails_nothing(tmp_path: Path) -> None:
    (tmp_path / "sessions.log").write_text(
        "2026-12-05 00:03:41,002 INFO aiokafka.consumer.consumer Subscribed to topic(s)\n"
        "2026-12-05 00:03:41,127 ERROR crossgen_shared.group_watch sessions:crossgen.pairings.v1:"
        " partitions 0,1,2 held by no member of group crossgen-sessions for 31 s; restarting it."
        " The process's Kafka client tasks were waiting in:\n"
        "  Task-41: GroupCoordinator._coordination_routine:593\n"
    )
    (tmp_path / "matching.log").write_text("2026-12-05 00:03:41,127 INFO uvicorn.error ready\n")
    verdict = judge(facts())
    verdict.restarted = consumer_restarts(tmp_path)
    assert verdict.restarted == [
        "sessions 00:03:41: sessions:crossgen.pairings.v1: partitions 0,1,2 held by no member of"
        " group crossgen-sessions for 31 s"
    ]
    assert verdict.passed
    assert verdict.summary()["consumers restarted"] == 1
    assert report(verdict, SHORT)["consumers_restarted"] == verdict.restarted


def test_the_services_error_lines_are_reported_and_fail_nothing(tmp_path: Path) -> None:
    """Every fault is passing trouble, a WARNING in the services' logs: an ERROR line is for a
    person to read, and the results keep it. The broker's own log is not the services'."""
    (tmp_path / "matching.log").write_text(
        "2026-12-07 16:38:05,086 WARNING crossgen_shared.outbox outbox relay: the database is"
        " unavailable (ConnectionRefusedError: refused); retrying in 0.4 s\n"
        "2026-12-07 16:38:05,087 ERROR crossgen_matching.expiry expiring proposals failed\n"
        "Traceback (most recent call last):\n"
        "2026-12-07 16:38:06,001 INFO uvicorn.error ready\n"
    )
    (tmp_path / "kafka.log").write_text("[2026-12-07 16:38:05,087] ERROR [Controller] ...\n")
    verdict = judge(facts())
    verdict.errors_logged = errors_logged(tmp_path)
    assert verdict.errors_logged == [
        "matching 2026-12-07 16:38:05,087 ERROR crossgen_matching.expiry expiring proposals failed"
    ]
    assert verdict.passed
    assert verdict.summary()["lines logged at ERROR"] == 1
    assert report(verdict, SHORT)["errors_logged"] == verdict.errors_logged


def test_state_behind_the_last_accepted_record_is_lost() -> None:
    verdict = judge(
        facts(
            directory={MENTOR: f"{MENTOR} #1"},
            participants=[Participant("p-m", MENTOR, PROGRAM, f"{MENTOR} #2")],
            contacts={"p-m": f"{MENTOR} #1"},
            pairs=[],
        )
    )
    assert not verdict.passed
    assert len(verdict.lost) == 4
    assert any(f"directory: {LEARNER} at #0" in line for line in verdict.lost)
    assert any(f"{LEARNER} never enrolled" in line for line in verdict.lost)
    assert any(f"contact: {MENTOR}" in line for line in verdict.lost)


def test_a_pair_that_enrolled_itself_must_be_proposed() -> None:
    assert judge(facts(pairing_events=[], notifications=[], emails=[])).lost == [
        f"pairing: {LEARNER} and {MENTOR} never proposed"
    ]
    assert not judge(facts(pairs=[("S-1-L", "S-1-M")])).passed


def test_a_proposal_mail_missing_is_lost_unless_its_send_is_in_doubt() -> None:
    assert judge(facts(emails=["n-l"])).lost == [
        f"mail: pairing pairing-1: {MENTOR} never got the proposal"
    ]
    doubtful = Notification("n-m", "ev-proposed", "match-proposed", MENTOR, "unconfirmed")
    verdict = judge(facts(emails=["n-l"], notifications=[facts().notifications[0], doubtful]))
    assert verdict.passed
    assert len(verdict.in_doubt) == 1


def test_a_second_effect_is_a_duplicate_but_a_republished_event_is_not() -> None:
    republished = facts(
        participant_events=[*facts().participant_events, joined("j-m", "p-m", MENTOR)],
        pairing_events=[PROPOSAL, PROPOSAL],
    )
    assert judge(republished).passed
    assert judge(republished).republished == 2

    twice = facts(
        participant_events=[*facts().participant_events, joined("j-m2", "p-m", MENTOR)],
        participants=[*facts().participants, Participant("p-m2", MENTOR, PROGRAM, "x #2")],
        emails=["n-l", "n-m", "n-m"],
    )
    assert len(judge(twice).duplicates) == 3

    proposed_again = facts(pairing_events=[PROPOSAL, replace(PROPOSAL, event_id="ev-2")])
    assert judge(proposed_again).duplicates == [f"pairing: {LEARNER} and {MENTOR} proposed 2 times"]


def test_an_older_record_after_a_newer_one_is_a_reorder() -> None:
    events = [*facts().participant_events, updated("u-m1", "p-m", 1)]
    assert judge(facts(participant_events=events)).reorders == [
        "participant-updated: p-m #1 after #2"
    ]
    went_back = [{f"directory {LEARNER}": 2}, {f"directory {LEARNER}": 1}]
    assert len(judge(facts(observations=went_back)).reorders) == 1


def test_dead_letters_are_counted_and_recovery_is_timed() -> None:
    fault = Fault("restart kafka", injected_at=10.0, repaired_at=15.0, recovered_at=18.5)
    verdict = judge(facts(dead_letters=["bad record"], faults=[fault]))
    assert verdict.summary()["dead-lettered"] == 1
    assert verdict.faults[0].recovery == 3.5
    assert Fault("x", 0.0, 1.0, None).recovery is None
