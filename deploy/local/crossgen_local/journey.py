"""The walking-skeleton journey, driven over HTTP against a running stack.

An admin creates a program; a learner and a mentor enrol; matching proposes them to each other;
both accept; sessions opens the pairing; a session is scheduled and completed with feedback.
The demo prints it; the cross-service test checks what every service did.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crossgen_local.tokens import TokenIssuer

LEARNER = "E-1001"
MENTOR = "E-2002"
ADMIN = "hr-owner"


@dataclass
class Journey:
    program: dict[str, Any]
    learner: dict[str, Any]
    mentor: dict[str, Any]
    pairing: dict[str, Any]
    session: dict[str, Any]


def run(urls: Callable[[str], str], tokens: TokenIssuer, say: Callable[[str], None]) -> Journey:
    admin = tokens.headers(ADMIN, "admin")
    learner_auth = tokens.headers(LEARNER, "participant")
    mentor_auth = tokens.headers(MENTOR, "participant")
    with httpx.Client(timeout=10.0) as http:

        def call(method: str, service: str, path: str, **kw: Any) -> Any:
            response = http.request(method, urls(service) + path, **kw)
            if response.is_error:
                raise RuntimeError(
                    f"{method} {service}{path}: {response.status_code} {response.text}"
                )
            return response.json()

        program = call(
            "POST", "matching", "/programs", json={"name": "Digital Fluency 2027"}, headers=admin
        )
        say(f"admin created program {program['name']!r}")
        learner = call(
            "POST",
            "matching",
            f"/programs/{program['id']}/enrolments",
            headers=learner_auth,
            json={
                "role": "learner",
                "display_name": "Linda Learner (VP Finance)",
                "email": "linda@example.com",
                "skills": ["TikTok", "AI assistants"],
            },
        )
        mentor = call(
            "POST",
            "matching",
            f"/programs/{program['id']}/enrolments",
            headers=mentor_auth,
            json={
                "role": "mentor",
                "display_name": "Max Mentor (junior analyst)",
                "email": "max@example.com",
                "skills": ["AI assistants", "Figma"],
            },
        )
        say(f"enrolled learner {learner['display_name']} and mentor {mentor['display_name']}")

        pairing = eventually(
            lambda: first(call("GET", "matching", "/me/pairings", headers=learner_auth)),
            "matching to propose a pair",
        )
        say(
            f"matching proposed pairing {pairing['id']} (score {pairing['score']:.2f}: "
            f"{'; '.join(pairing['explanation'])})"
        )
        call("POST", "matching", f"/pairings/{pairing['id']}/accept", headers=learner_auth)
        pairing = call("POST", "matching", f"/pairings/{pairing['id']}/accept", headers=mentor_auth)
        say(f"both accepted: pairing is {pairing['status']}")

        def opened() -> Any:
            response = http.get(
                f"{urls('sessions')}/pairings/{pairing['id']}", headers=learner_auth
            )
            return response.json() if response.status_code == 200 else None

        eventually(opened, "sessions to open the pairing")
        starts = datetime.now(UTC) + timedelta(days=2)
        session = call(
            "POST",
            "sessions",
            f"/pairings/{pairing['id']}/sessions",
            headers=mentor_auth,
            json={
                "starts_at": starts.isoformat(),
                "duration_minutes": 45,
                "agenda": "AI assistants for board decks",
            },
        )
        say(f"mentor scheduled a session for {starts:%Y-%m-%d %H:%M} UTC")
        ratings = {
            "knowledge": 5,
            "skills": 4,
            "communication": 5,
            "perspectives": 4,
            "cultural_awareness": 4,
            "learning": 5,
        }
        session = call(
            "POST",
            "sessions",
            f"/sessions/{session['id']}/complete",
            headers=learner_auth,
            json={"held_minutes": 50, "feedback": {"ratings": ratings, "comment": "Eye-opening."}},
        )
        say("learner completed the session with feedback on the six benefits")
        return Journey(program, learner, mentor, pairing, session)


def first(items: list[Any]) -> Any:
    return items[0] if items else None


def eventually(probe: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until ``probe`` returns something: events take a moment to cross services."""
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)
    return found
