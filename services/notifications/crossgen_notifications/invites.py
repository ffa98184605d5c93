"""Calendar invites (iCalendar, RFC 5545 / iTIP RFC 5546) for a session's two participants.

The UID is stable per session, so each reschedule (METHOD:REQUEST) or cancellation (METHOD:CANCEL)
updates the same calendar entry; a higher SEQUENCE tells calendars which version is current.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Literal
from uuid import UUID

from icalendar import Calendar, Event, vCalAddress

Method = Literal["REQUEST", "CANCEL"]


@dataclass(frozen=True)
class Attendee:
    name: str
    email: str


def uid(session_id: UUID) -> str:
    return f"{session_id}@crossgen"


def invite(
    *,
    session_id: UUID,
    starts_at: datetime,
    duration_minutes: int,
    sequence: int,
    method: Method,
    organizer: str,
    attendees: list[Attendee],
    stamp: datetime,
) -> str:
    """The invite as text; ``organizer`` is an address like ``Crossgen <no-reply@…>``."""
    calendar = Calendar()
    calendar.add("prodid", "-//Crossgen//Reverse mentoring//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", uid(session_id))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", starts_at)
    event.add("dtend", starts_at + timedelta(minutes=duration_minutes))
    event.add("summary", "Reverse mentoring: " + " & ".join(a.name for a in attendees))
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    name, address = parseaddr(organizer)
    event.add("organizer", _address(name, address))
    for attendee in attendees:
        event.add("attendee", _address(attendee.name, attendee.email, role="REQ-PARTICIPANT"))
    calendar.add_component(event)
    return calendar.to_ical().decode()


def _address(name: str, email: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = name
    address.params.update(params)
    return address
