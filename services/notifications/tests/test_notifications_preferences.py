"""Preferences over HTTP: each person reads and edits only their own; bad values are refused with
a reason; the unsubscribe link in every email works without a login."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker

from crossgen_local.smtp import SmtpSink
from crossgen_local.tokens import TokenIssuer
from crossgen_notifications import views
from crossgen_notifications.preferences import views as preference_views
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.settings import NotificationsSettings
from crossgen_notifications.testing import notifications_of
from crossgen_shared.events import MatchProposed, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"
CHOICES: dict[str, Any] = {
    "locale": "de",
    "timezone": "Europe/Berlin",
    "quiet_hours": {"start": "22:00:00", "end": "07:00:00"},
    "delivery": "daily_digest",
    "email": {"enabled": True},
    "chat": {"kind": "slack", "url": SLACK},
    "webhook": {"url": "https://acme.webhook.office.com/hook"},
}


@pytest.fixture
def settings(settings: NotificationsSettings) -> NotificationsSettings:
    """As in production: https only, public addresses only."""
    return settings.model_copy(
        update={"outbound_allow_http": False, "outbound_allow_private": False}
    )


@pytest.fixture
async def api(notifications: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API without its Kafka lifespan."""
    app = notifications.http_app([views.router, preference_views.router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://notifications"
    ) as client:
        yield client


async def test_without_a_row_a_person_gets_email_immediately(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    response = await api.get("/me/preferences", headers=tokens.headers("E-1", "participant"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "locale": None,
        "timezone": "UTC",
        "quiet_hours": None,
        "delivery": "immediate",
        "email": {"enabled": True},
        "chat": None,
        "webhook": None,
    }


async def test_a_person_sets_and_reads_back_their_own_preferences(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    linda, max_ = tokens.headers("E-Linda", "participant"), tokens.headers("E-Max", "participant")
    saved = await api.put("/me/preferences", json=CHOICES, headers=linda)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    secret = body["webhook"].pop("secret")
    assert len(secret) >= 32
    assert body == CHOICES
    assert (await api.get("/me/preferences", headers=linda)).json()["webhook"]["secret"] == secret

    # Someone else's are untouched: /me is the only way in, and it is always the caller.
    assert (await api.get("/me/preferences", headers=max_)).json()["chat"] is None

    # The webhook keeps its secret while it stays set, and loses it when removed.
    again = await api.put("/me/preferences", json=CHOICES | {"locale": "en"}, headers=linda)
    assert again.json()["webhook"]["secret"] == secret
    removed = await api.put("/me/preferences", json=CHOICES | {"webhook": None}, headers=linda)
    assert removed.json()["webhook"] is None
    back = await api.put("/me/preferences", json=CHOICES, headers=linda)
    assert back.json()["webhook"]["secret"] != secret


async def test_preferences_need_a_participant_token(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    assert (await api.get("/me/preferences")).status_code == 401
    assert (await api.put("/me/preferences", json=CHOICES)).status_code == 401
    bad = {"Authorization": "Bearer nonsense"}
    assert (await api.get("/me/preferences", headers=bad)).status_code == 401
    system = tokens.headers("hris-bot", "integration")
    assert (await api.get("/me/preferences", headers=system)).status_code == 403
    assert (await api.put("/me/preferences", json=CHOICES, headers=system)).status_code == 403


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"webhook": {"url": "https://evil.example/hook"}},
            "webhook.url: host 'evil.example' is not on the allow-list",
        ),
        (
            {"chat": {"kind": "slack", "url": "http://hooks.slack.com/x"}},
            "chat.url: the URL must use https",
        ),
        ({"webhook": {"url": "https://127.0.0.1/hook"}}, "127.0.0.1 is a private, loopback"),
        ({"timezone": "Mars/Olympus"}, "is not an IANA time zone"),
        ({"locale": "klingon"}, "unknown locale"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "different times"),
        (
            {"quiet_hours": {"start": "22:00+02:00", "end": "07:00"}},
            "local times in the chosen timezone: give 22:00, without an offset",
        ),
        ({"quiet_hours": {"start": "22:00", "end": "07:00Z"}}, "give 07:00, without an offset"),
        ({"delivery": "hourly"}, "immediate"),
        ({"chat": {"kind": "discord", "url": SLACK}}, "slack"),
        ({"email": {"enabled": True, "address": "x@example.com"}}, "Extra inputs"),
    ],
)
async def test_values_crossgen_cannot_use_are_refused_with_a_reason(
    api: httpx.AsyncClient, tokens: TokenIssuer, change: dict[str, Any], reason: str
) -> None:
    response = await api.put(
        "/me/preferences", json=CHOICES | change, headers=tokens.headers("E-1", "participant")
    )
    assert response.status_code == 422, response.text
    assert reason in response.text


async def test_the_unsubscribe_link_turns_email_off_without_a_login(
    api: httpx.AsyncClient,
    tokens: TokenIssuer,
    notifications: Service,
    delivery: Callable[..., Delivery],
    smtp: SmtpSink,
    broker: KafkaBroker,
    learner: ParticipantJoined,
    proposal: MatchProposed,
    proposed: str,
) -> None:
    await delivery().deliver_due()
    mail = next(m.message for m in smtp.messages if m.rcpt_tos == ["linda@example.com"])
    link = httpx.URL(mail["List-Unsubscribe"].strip("<>"))
    assert link.path == "/notifications/unsubscribe"

    forged = await api.get("/unsubscribe", params={"token": link.params["token"][:-2] + "xx"})
    assert forged.status_code == 404
    done = await api.get("/unsubscribe", params=dict(link.params))
    assert done.status_code == 200 and "no more emails" in done.text
    assert (
        await api.post("/unsubscribe", params=dict(link.params))
    ).status_code == 200  # one-click

    mine = await api.get(
        "/me/preferences", headers=tokens.headers(learner.person_id, "participant")
    )
    assert mine.json()["email"] == {"enabled": False}

    # Nothing more by email for Linda: new messages are not even queued for it...
    await publish_event(broker, proposal)
    assert [n.to_address for n in await notifications_of(notifications, status="pending")] == [
        "max@example.com"
    ]


async def test_turning_email_off_stops_messages_already_queued(
    api: httpx.AsyncClient,
    tokens: TokenIssuer,
    notifications: Service,
    delivery: Callable[..., Delivery],
    smtp: SmtpSink,
    learner: ParticipantJoined,
    proposed: str,
) -> None:
    response = await api.put(
        "/me/preferences",
        json={"email": {"enabled": False}},
        headers=tokens.headers(learner.person_id, "participant"),
    )
    assert response.status_code == 200, response.text
    assert await delivery().deliver_due() == 2
    assert [m.rcpt_tos for m in smtp.messages] == [["max@example.com"]]
    [withdrawn] = await notifications_of(notifications, status="cancelled")
    assert (withdrawn.to_address, withdrawn.last_error) == ("linda@example.com", "email turned off")
