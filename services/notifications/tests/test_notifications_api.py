"""The delivery log over HTTP: admins see everything and resend after review, a participant sees
their own."""

from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import update

from crossgen_local.tokens import TokenIssuer
from crossgen_notifications import views
from crossgen_notifications.models import Notification
from crossgen_notifications.testing import notifications_of
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.service import Service


@pytest.fixture
async def api(notifications: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API without its Kafka lifespan."""
    app = notifications.http_app([views.router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://notifications"
    ) as client:
        yield client


async def test_the_delivery_log_is_for_admins(
    api: httpx.AsyncClient, tokens: TokenIssuer, proposed: str
) -> None:
    assert (await api.get("/notifications")).status_code == 401
    bad = {"Authorization": "Bearer nonsense"}
    assert (await api.get("/notifications", headers=bad)).status_code == 401
    participant = tokens.headers("E-Linda", "participant")
    assert (await api.get("/notifications", headers=participant)).status_code == 403

    log = await api.get("/notifications", headers=tokens.headers("hr", "admin"))
    assert log.status_code == 200, log.text
    rows = log.json()
    assert len(rows) == 2
    assert {r["source_event_id"] for r in rows} == {proposed}
    assert rows[0]["created_at"] >= rows[1]["created_at"]  # newest first


async def test_the_delivery_log_filters_and_pages(
    api: httpx.AsyncClient, tokens: TokenIssuer, learner: ParticipantJoined, proposed: str
) -> None:
    admin = tokens.headers("hr", "admin")

    async def log(**params: str | int) -> list[dict[str, object]]:
        response = await api.get("/notifications", params=params, headers=admin)
        assert response.status_code == 200, response.text
        rows: list[dict[str, object]] = response.json()
        return rows

    mine = await log(recipient_id=str(learner.participant_id))
    assert [r["to_address"] for r in mine] == ["linda@example.com"]
    assert len(await log(status="pending")) == 2
    assert await log(status="sent") == []
    first, second = await log(limit=1), await log(limit=1, offset=1)
    assert len(first) == len(second) == 1 and first[0]["id"] != second[0]["id"]
    assert await log(status="unconfirmed") == []
    bad = await api.get("/notifications", params={"status": "lost"}, headers=admin)
    assert bad.status_code == 422
    assert (await api.get("/notifications", params={"limit": 0}, headers=admin)).status_code == 422


async def test_a_participant_sees_only_their_own_notifications(
    api: httpx.AsyncClient, tokens: TokenIssuer, learner: ParticipantJoined, proposed: str
) -> None:
    response = await api.get(
        "/me/notifications", headers=tokens.headers(learner.person_id, "participant")
    )
    assert response.status_code == 200, response.text
    assert [(r["to_address"], r["subject"]) for r in response.json()] == [
        ("linda@example.com", "You have a proposed match: Max")
    ]
    stranger = await api.get("/me/notifications", headers=tokens.headers("E-0", "participant"))
    assert stranger.json() == []
    assert (await api.get("/me/notifications")).status_code == 401


async def test_an_admin_resends_an_unconfirmed_message_and_nothing_else(
    api: httpx.AsyncClient, tokens: TokenIssuer, notifications: Service, proposed: str
) -> None:
    linda, max_ = await notifications_of(notifications)
    async with notifications.sessions() as session, session.begin():
        await session.execute(
            update(Notification)
            .where(Notification.id == linda.id)
            .values(status="unconfirmed", attempts=1, last_error="maybe delivered")
        )
    admin = tokens.headers("hr", "admin")
    resend = f"/notifications/{linda.id}/resend"
    assert (await api.post(resend)).status_code == 401
    participant = tokens.headers("E-Linda", "participant")
    assert (await api.post(resend, headers=participant)).status_code == 403

    unconfirmed = await api.get("/notifications", params={"status": "unconfirmed"}, headers=admin)
    assert [r["id"] for r in unconfirmed.json()] == [str(linda.id)]
    done = await api.post(resend, headers=admin)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["attempts"]) == ("pending", 0)

    again = await api.post(resend, headers=admin)
    assert again.status_code == 409 and "this one is pending" in again.text
    assert (await api.post(f"/notifications/{max_.id}/resend", headers=admin)).status_code == 409
    assert (await api.post(f"/notifications/{uuid4()}/resend", headers=admin)).status_code == 404
