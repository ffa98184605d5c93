"""The fault suite's verdict: what the HRIS feed got accepted against what each service stored and
sent. Pure: it judges collected facts (see ``evidence``), so it is tested without any I/O.

Every HRIS record carries its employee's sequence number in the display name (``hris_feed``), so a
stored or published name tells which record it came from.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crossgen_local.hris_feed import seq_of

PROPOSED = "match-proposed"
# A message whose sender died mid-send: it may have arrived, and is never resent by itself.
IN_DOUBT = ("sending", "unconfirmed")


@dataclass(frozen=True)
class Published:
    """One record of an event on a topic, in its partition's order."""

    event_id: str
    type: str  # the event's name, e.g. "participant-updated"
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Participant:
    id: str
    person_id: str
    program_id: str
    display_name: str


@dataclass(frozen=True)
class Notification:
    id: str
    source_event_id: str
    template: str
    person_id: str
    status: str


@dataclass(frozen=True)
class Fault:
    """One injected fault: when it began, when it was repaired, when the pipeline was through
    again (None: never): a probe record sent right after the repair seen at its end, or, after
    the SMTP relay's outage, no email left waiting to be tried again."""

    name: str
    injected_at: float
    repaired_at: float
    recovered_at: float | None

    @property
    def recovery(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.repaired_at


@dataclass
class Facts:
    accepted: list[tuple[str, int]]  # (employee number, seq) the broker acknowledged
    program_id: str  # the program that enrols every employee the feed brings
    directory: dict[str, str]  # matching's employees: number -> display name
    participants: list[Participant]  # matching's
    contacts: dict[str, str]  # notifications': participant id -> display name
    participant_events: list[Published]  # the participants topic, from the beginning
    pairing_events: list[Published]  # the pairings topic, from the beginning
    notifications: list[Notification]  # notifications' delivery log
    emails: list[str]  # the Message-ID of every mail the SMTP sink caught
    dead_letters: list[str]  # the reason of every record on a dead-letter topic
    # Pairs who enrolled themselves, both accepted: (learner, mentor) person ids (``pairs``).
    pairs: list[tuple[str, str]] = field(default_factory=list)
    # Stored state sampled while the stream ran: what -> seq it showed ("directory E-000001").
    observations: list[dict[str, int]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)


@dataclass
class Verdict:
    accepted: int
    lost: list[str]
    duplicates: list[str]
    reorders: list[str]
    dead_lettered: list[str]
    in_doubt: list[str]
    republished: int  # event ids seen more than once on a topic (at-least-once; not an effect)
    faults: list[Fault]
    seen: dict[str, int]  # what the services did with the stream, to show it was exercised
    # Consumers still behind once the drain's time was up: a consumer that stalls loses nothing
    # the broker holds, but what it would do is never done.
    behind: list[str] = field(default_factory=list)
    # Consumers their service restarted, having lost their place in the group (group_watch.py):
    # a stall that happened and was mended, not a failure.
    restarted: list[str] = field(default_factory=list)
    # The services' lines at ERROR (evidence.errors_logged): for a person to read; fails nothing.
    errors_logged: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicates or self.reorders or self.behind)

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "lost": len(self.lost),
            "duplicate side effects": len(self.duplicates),
            "per-employee reorders": len(self.reorders),
            "dead-lettered": len(self.dead_lettered),
            "in doubt (unconfirmed sends)": len(self.in_doubt),
            "republished event ids": self.republished,
            "consumers behind at the end": len(self.behind),
            "consumers restarted": len(self.restarted),
            "lines logged at ERROR": len(self.errors_logged),
        }


def judge(facts: Facts) -> Verdict:
    latest = _latest(facts.accepted)
    mail_lost, mail_duplicates, in_doubt = _proposal_mails(facts)
    lost = (
        _directory_lost(facts, latest)
        + _enrolment_lost(facts, latest)
        + _pairs_lost(facts)
        + mail_lost
    )
    duplicates = _enrolment_duplicates(facts) + _proposal_duplicates(facts) + mail_duplicates
    events = [*facts.participant_events, *facts.pairing_events]
    kinds = Counter(e.type for e in _first_of_each(events))
    return Verdict(
        accepted=len(facts.accepted),
        lost=lost,
        duplicates=duplicates,
        reorders=_reorders(facts),
        dead_lettered=list(facts.dead_letters),
        in_doubt=in_doubt,
        republished=len(events) - len(_first_of_each(events)),
        faults=list(facts.faults),
        seen={
            "employees in the directory": len(facts.directory),
            "participants enrolled": sum(
                p.program_id == facts.program_id for p in facts.participants
            ),
            "participant-updated events": kinds["participant-updated"],
            "pairs who enrolled themselves": len(facts.pairs),
            "contacts in notifications": len(facts.contacts),
            "pairings proposed": kinds[PROPOSED],
            "pairings withdrawn": kinds["match-declined"],
            "mails caught": len(facts.emails),
        },
    )


def _latest(accepted: Iterable[tuple[str, int]]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for number, seq in accepted:
        latest[number] = max(seq, latest.get(number, 0))
    return latest


def _first_of_each(events: Iterable[Published]) -> list[Published]:
    """Each event once: a relay that crashed between publishing and marking republishes a batch
    with the same ids, and consumers drop those on their inbox."""
    seen: set[str] = set()
    first = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            first.append(event)
    return first


def _directory_lost(facts: Facts, latest: Mapping[str, int]) -> list[str]:
    return [
        f"directory: {number} at #{seq_of(facts.directory.get(number, ''))}, accepted #{seq}"
        for number, seq in sorted(latest.items())
        if seq_of(facts.directory.get(number, "")) < seq
    ]


def _enrolment_lost(facts: Facts, latest: Mapping[str, int]) -> list[str]:
    enrolled = {p.person_id: p for p in facts.participants if p.program_id == facts.program_id}
    lost = []
    for number, seq in sorted(latest.items()):
        participant = enrolled.get(number)
        if participant is None:
            lost.append(f"enrolment: {number} never enrolled")
            continue
        if seq_of(participant.display_name) < seq:
            lost.append(f"participant: {number} at {participant.display_name!r}, accepted #{seq}")
        contact = facts.contacts.get(participant.id)
        if contact is None or seq_of(contact) < seq:
            lost.append(f"contact: {number} at {contact!r} in notifications, accepted #{seq}")
    return lost


def _pairs_lost(facts: Facts) -> list[str]:
    enrolled = {p.person_id for p in facts.participants}
    proposed = {
        (e.data["learner_person_id"], e.data["mentor_person_id"])
        for e in facts.pairing_events
        if e.type == PROPOSED
    }
    lost = [
        f"enrolment: {person} never enrolled"
        for pair in facts.pairs
        for person in pair
        if person not in enrolled
    ]
    return lost + [
        f"pairing: {learner} and {mentor} never proposed"
        for learner, mentor in facts.pairs
        if (learner, mentor) not in proposed
    ]


def _enrolment_duplicates(facts: Facts) -> list[str]:
    rows = Counter((p.person_id, p.program_id) for p in facts.participants)
    joined = Counter(
        (e.data["person_id"], e.data["program_id"])
        for e in _first_of_each(facts.participant_events)
        if e.type == "participant-joined"
    )
    return [
        f"enrolment: {person} has {count} participant rows in program {program}"
        for (person, program), count in sorted(rows.items())
        if count > 1
    ] + [
        f"enrolment: {person} joined program {program} {count} times (participant-joined)"
        for (person, program), count in sorted(joined.items())
        if count > 1
    ]


def _proposal_duplicates(facts: Facts) -> list[str]:
    """Nobody declines or leaves in the suite: a pair proposed twice is one proposal done twice."""
    proposed = Counter(
        (e.data["learner_person_id"], e.data["mentor_person_id"])
        for e in _first_of_each(facts.pairing_events)
        if e.type == PROPOSED
    )
    return [
        f"pairing: {learner} and {mentor} proposed {count} times"
        for (learner, mentor), count in sorted(proposed.items())
        if count > 1
    ]


def _proposal_mails(facts: Facts) -> tuple[list[str], list[str], list[str]]:
    """Each proposed pairing: one proposal mail to each of the two, no more, no fewer."""
    proposals = {
        e.event_id: e.data for e in _first_of_each(facts.pairing_events) if e.type == PROPOSED
    }
    rows = {n.id: n for n in facts.notifications if n.source_event_id in proposals}
    caught = Counter(
        (rows[n].source_event_id, rows[n].person_id) for n in facts.emails if n in rows
    )
    doubtful = {(n.source_event_id, n.person_id) for n in rows.values() if n.status in IN_DOUBT}
    lost, duplicates = [], []
    for event_id, pairing in proposals.items():
        for person in (pairing["learner_person_id"], pairing["mentor_person_id"]):
            count = caught[event_id, person]
            where = f"pairing {pairing['pairing_id']}: {person}"
            if count > 1:
                duplicates.append(f"mail: {where} got the proposal {count} times")
            elif count == 0 and (event_id, person) not in doubtful:
                lost.append(f"mail: {where} never got the proposal")
    in_doubt = [
        f"mail: pairing {proposals[n.source_event_id]['pairing_id']}: {n.person_id} {n.status}"
        for n in rows.values()
        if n.status in IN_DOUBT
    ]
    return lost, duplicates, in_doubt


def _reorders(facts: Facts) -> list[str]:
    """A participant's updates must be published in the order of their records, and no stored
    state may ever go back to an older record than one seen before."""
    reorders = []
    newest: dict[str, int] = {}
    for event in _first_of_each(facts.participant_events):
        if event.type != "participant-updated":
            continue
        who, seq = event.data["participant_id"], seq_of(event.data["display_name"])
        if seq < newest.get(who, 0):
            reorders.append(f"participant-updated: {who} #{seq} after #{newest[who]}")
        newest[who] = max(seq, newest.get(who, 0))
    highest: dict[str, int] = defaultdict(int)
    for sample in facts.observations:
        for what, seq in sample.items():
            if seq < highest[what]:
                reorders.append(f"stored: {what} went back to #{seq} after #{highest[what]}")
            highest[what] = max(seq, highest[what])
    return reorders
