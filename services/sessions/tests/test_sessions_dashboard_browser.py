"""The program owner's dashboard in headless Chromium, against the service served over HTTP.

Chromium loads the page, runs its script, which fetches the overview and the at-risk list with
the token from the URL fragment and draws them; ``--dump-dom`` returns the drawn page. The
screenshot is kept in test-artifacts/ for a human to look at.
"""

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import uvicorn

from crossgen_local.tokens import TokenIssuer
from crossgen_sessions.app import ROUTERS, build
from crossgen_sessions.at_risk.service import check
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared.events import MatchAccepted
from crossgen_shared.service import Service

OpenPairing = Callable[..., Awaitable[MatchAccepted]]
Schedule = Callable[..., Awaitable[Any]]
MoveSession = Callable[[str, datetime], Awaitable[None]]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BENEFITS = (
    "knowledge",
    "skills",
    "communication",
    "perspectives",
    "cultural_awareness",
    "learning",
)
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
NOW = datetime.now(UTC)

# On a developer's machine without root the browser may be missing; CI always has it.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="needs Chromium: run deploy/local/install-chromium.sh",
)


@contextlib.contextmanager
def serving(settings: SessionsSettings) -> Iterator[str]:
    """The HTTP API (no Kafka) served by uvicorn on a free port, in a thread with its own loop
    and its own service: database connections belong to the loop that opened them."""
    service = build(settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(service.http_app(ROUTERS), lifespan="off", log_level="warning")
    )

    async def serve() -> None:
        try:
            await server.serve(sockets=[listener])
        finally:
            await service.engine.dispose()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


async def chromium(url: str, *output: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            # Let the page's fetches and drawing finish before the dump or the screenshot.
            "--virtual-time-budget=10000",
            *output,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, err.decode(errors="replace")
    return out.decode()


class Page(HTMLParser):
    """The elements of a dumped page, and the text of each at-risk row."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.at_risk: list[list[str]] = []
        self._in_row = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag == "tr":
            self._in_row = attributes.get("class") == "at-risk-row"
            if self._in_row:
                self.at_risk.append([])

    def handle_data(self, data: str) -> None:
        if self._in_row and data.strip():
            self.at_risk[-1].append(data.strip())

    def find(self, tag: str, css_class: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and a.get("class") == css_class]

    def body(self) -> dict[str, str]:
        [attributes] = [a for t, a in self.elements if t == "body"]
        return attributes


async def test_the_dashboard_draws_the_program_in_a_browser(
    api: httpx.AsyncClient,
    sessions_service: Service,
    settings: SessionsSettings,
    tokens: TokenIssuer,
    owner: Callable[..., dict[str, str]],
    open_pairing: OpenPairing,
    schedule: Schedule,
    move_session: MoveSession,
) -> None:
    program = uuid4()
    met = await open_pairing("E-1", "E-2", program_id=program, accepted_at=NOW - timedelta(days=20))
    await open_pairing("E-3", "E-4", program_id=program, accepted_at=NOW - timedelta(days=40))
    missing = await open_pairing(
        "E-5", "E-6", program_id=program, accepted_at=NOW - timedelta(days=9)
    )
    for days_ago, score in ((12, 3), (3, 5)):
        session = await schedule(met, who="E-1", starts_at=NOW + timedelta(days=days_ago))
        feedback = {"ratings": dict.fromkeys(BENEFITS, score) | {"perspectives": score - 1}}
        held = await api.post(
            f"/sessions/{session['id']}/complete",
            json={"held_minutes": 50, "feedback": feedback},
            headers=tokens.headers("E-1", "participant"),
        )
        rated = await api.post(
            f"/sessions/{session['id']}/feedback",
            json=feedback | {"ratings": dict.fromkeys(BENEFITS, 4)},
            headers=tokens.headers("E-2", "participant"),
        )
        assert (held.status_code, rated.status_code) == (200, 201)
        await move_session(session["id"], NOW - timedelta(days=days_ago))
    for days_ago in (6, 2):
        session = await schedule(missing, who="E-5", starts_at=NOW + timedelta(days=days_ago))
        await move_session(session["id"], NOW - timedelta(days=days_ago))
        missed = await api.post(
            f"/sessions/{session['id']}/no-show",
            json={},
            headers=tokens.headers("E-5", "participant"),
        )
        assert missed.status_code == 200
    assert await check(sessions_service.unit_of_work, settings.at_risk_policy(), NOW) == 2
    token = owner(program)["Authorization"].removeprefix("Bearer ")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "sessions-dashboard.png"
    screenshot.unlink(missing_ok=True)

    with serving(settings) as base:
        page_url = f"{base}/dashboard?program_id={program}#token={token}"
        page = Page(await chromium(page_url, "--dump-dom"))
        await chromium(page_url, f"--screenshot={screenshot}")
        another_program = f"{base}/dashboard?program_id={uuid4()}#token={token}"
        refused = await chromium(another_program, "--dump-dom")

    assert page.body()["data-state"] == "ready"
    assert len(page.find("rect", "funnel-stage")) == 4
    assert len(page.find("rect", "bar-held")) == 12
    learners, mentors = page.find("polygon", "radar-learner"), page.find("polygon", "radar-mentor")
    assert len(learners) == len(mentors) == 1
    assert len(learners[0]["points"].split()) == 6
    assert len(page.find("polygon", "radar-grid")) == 5
    assert sorted(row[:3] for row in page.at_risk) == [
        ["E-3", "E-4", "Stalled: no session held in 40 days"],
        ["E-5", "E-6", "No-shows: 2 no-shows in a row"],
    ]
    assert screenshot.stat().st_size > 10_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert Page(refused).body()["data-state"] == "error"
    assert "403: only the owner of program" in refused
