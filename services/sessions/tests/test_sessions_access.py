"""Who may call what, for every endpoint: the pair acts in its pairing, the program owner reads
their program, anyone else gets 403 (401 without a valid token), and a refused call changes
nothing."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest

from crossgen_local.tokens import TokenIssuer
from crossgen_shared.events import MatchAccepted
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

Schedule = Callable[..., Awaitable[Any]]
Headers = dict[str, str]

RATINGS = dict.fromkeys(
    ("knowledge", "skills", "communication", "perspectives", "cultural_awareness", "learning"), 4
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {pairing}, {session}, {goal}, {program}
    body: Any
    allowed: frozenset[str]  # "pair" (the learner or the mentor), "owner" (of the program)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _endpoint(method: str, path: str, body: Any = None, *allowed: str) -> Endpoint:
    return Endpoint(method, path, body, frozenset(allowed))


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


ENDPOINTS = [
    _endpoint("GET", "/pairings/{pairing}", None, "pair", "owner"),
    _endpoint("PUT", "/pairings/{pairing}/end-date", {"ends_on": "2099-01-01"}, "pair"),
    _endpoint(
        "POST",
        "/pairings/{pairing}/sessions",
        {"starts_at": later(3), "duration_minutes": 30},
        "pair",
    ),
    _endpoint("POST", "/sessions/{session}/reschedule", {"starts_at": later(4)}, "pair"),
    _endpoint("POST", "/sessions/{session}/cancel", {"reason": "ill"}, "pair"),
    _endpoint("POST", "/sessions/{session}/held", {"held_minutes": 30}, "pair"),
    _endpoint("POST", "/sessions/{session}/no-show", {}, "pair"),
    _endpoint(
        "POST",
        "/sessions/{session}/complete",
        {"held_minutes": 30, "feedback": {"ratings": RATINGS}},
        "pair",
    ),
    _endpoint("POST", "/sessions/{session}/feedback", {"ratings": RATINGS}, "pair"),
    _endpoint("POST", "/pairings/{pairing}/goals", {"title": "Notion"}, "pair"),
    _endpoint("PATCH", "/goals/{goal}", {"progress": 50}, "pair"),
    _endpoint("GET", "/pairings/{pairing}/goals", None, "pair", "owner"),
    _endpoint("GET", "/programs/{program}/outcomes", None, "owner"),
    _endpoint("GET", "/programs/{program}/outcomes.csv", None, "owner"),
    _endpoint("GET", "/programs/{program}/overview", None, "owner"),
    _endpoint("GET", "/programs/{program}/pairings-at-risk", None, "owner"),
]


@pytest.fixture
async def things(
    api: httpx.AsyncClient, tokens: TokenIssuer, pairing: MatchAccepted, schedule: Schedule
) -> dict[str, str]:
    """A pairing with a scheduled session and a goal: what the paths point at."""
    session = await schedule(pairing)
    goal = await api.post(
        f"/pairings/{pairing.pairing_id}/goals",
        json={"title": "Slack"},
        headers=tokens.headers("E-100", "participant"),
    )
    return {
        "pairing": str(pairing.pairing_id),
        "session": session["id"],
        "goal": goal.json()["id"],
        "program": str(pairing.program_id),
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_only_the_pair_and_the_program_owner_get_in(
    endpoint: Endpoint,
    api: httpx.AsyncClient,
    sessions_service: Service,
    tokens: TokenIssuer,
    owner: Callable[..., Headers],
    pairing: MatchAccepted,
    things: dict[str, str],
) -> None:
    url = endpoint.path.format(**things)
    emitted_before = len(await outbox(sessions_service.sessions))

    async def call(headers: Headers) -> httpx.Response:
        return await api.request(endpoint.method, url, json=endpoint.body, headers=headers)

    unauthenticated: dict[str, Headers] = {
        "no token": {},
        "not a token": {"Authorization": "Bearer nonsense"},
        "expired": {
            "Authorization": f"Bearer {tokens.token('E-100', 'participant', lifetime=-60)}"
        },
    }
    if "owner" in endpoint.allowed:
        unauthenticated["programs claim not a list"] = owner(programs=things["program"])
    for name, headers in unauthenticated.items():
        response = await call(headers)
        assert response.status_code == 401, (name, response.text)

    the_pair = {
        "learner": tokens.headers("E-100", "participant"),
        "mentor": tokens.headers("E-200", "participant"),
    }
    forbidden: dict[str, Headers] = {
        "integration": tokens.headers("E-100", "integration"),
        "participant outside the pairing": tokens.headers("E-999", "participant"),
        "owner of another program": owner(uuid4()),
        "admin owning no program": tokens.headers("hr", "admin"),
    }
    if "pair" not in endpoint.allowed:
        forbidden |= {f"{side}, not the owner": headers for side, headers in the_pair.items()}
    if "owner" not in endpoint.allowed:
        forbidden |= {"owner acting for the pair": owner(pairing.program_id)}
    for name, headers in forbidden.items():
        response = await call(headers)
        assert response.status_code == 403, (name, response.text)
        assert response.json()["detail"]
    assert len(await outbox(sessions_service.sessions)) == emitted_before

    allowed = the_pair if "pair" in endpoint.allowed else {}
    if "owner" in endpoint.allowed:
        allowed = allowed | {"owner": owner(pairing.program_id)}
    for name, headers in allowed.items():
        response = await call(headers)
        assert response.status_code not in (401, 403), (name, response.text)


async def test_my_pairings_are_mine_only(
    api: httpx.AsyncClient,
    tokens: TokenIssuer,
    owner: Callable[..., Headers],
    pairing: MatchAccepted,
) -> None:
    for who in ("E-100", "E-200"):
        mine = await api.get("/me/pairings", headers=tokens.headers(who, "participant"))
        assert [p["id"] for p in mine.json()] == [str(pairing.pairing_id)]
    stranger = await api.get("/me/pairings", headers=tokens.headers("E-999", "participant"))
    assert stranger.json() == []
    assert (await api.get("/me/pairings")).status_code == 401
    as_owner = await api.get("/me/pairings", headers=owner(pairing.program_id))
    assert as_owner.status_code == 403


async def test_the_dashboard_page_holds_no_data_and_needs_no_token(api: httpx.AsyncClient) -> None:
    page = await api.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        served = await api.get(f"/dashboard/{asset}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(kind)
