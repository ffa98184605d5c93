"""Chat and signed webhooks against a real local HTTP server, and the URL checks that guard them."""

import asyncio
import gzip
import json
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from faststream.kafka import KafkaBroker
from hypothesis import given
from hypothesis import strategies as st

from crossgen_local.processes import free_port
from crossgen_notifications.channels import DeliveryError, signing
from crossgen_notifications.channels.http import HttpPoster, _seconds_to_wait
from crossgen_notifications.channels.urls import UnsafeUrl, UrlPolicy
from crossgen_notifications.channels.webhook import DELIVERY_HEADER
from crossgen_notifications.preferences import store
from crossgen_notifications.preferences.model import ChatIn, EmailIn, PreferencesIn, WebhookIn
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.settings import NotificationsSettings
from crossgen_notifications.testing import Clock, emitted, notifications_of
from crossgen_shared.events import (
    MatchProposed,
    NotificationFailed,
    NotificationSent,
    ParticipantJoined,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event

HTTP_DATE = "%a, %d %b %Y %H:%M:%S GMT"
HANG = -1  # a reply that never comes
STALL = -2  # a 200 whose body never ends


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int]  # the connection's address and port

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers as told."""

    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    # Status codes, HANG or STALL, or a status with headers; then 200.
    replies: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)  # ends every HANG and STALL

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(scope["path"], headers, body, tuple(scope["client"])))
        reply = self.replies.pop(0) if self.replies else 200
        status, extra = reply if isinstance(reply, tuple) else (reply, {})
        if status == HANG:
            await self.released.wait()
        if status == STALL:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"o", "more_body": True})
            await self.released.wait()
            await send({"type": "http.response.body", "body": b"k"})
            return
        headers = [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"nope"})


@asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    """``app`` served on 127.0.0.1:``port`` for the block."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        # No logging config, level or access switch of uvicorn's: each outlives the server and
        # would hide its loggers' lines from the tests that come later.
        log_config=None,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event to wait on
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serving(receiver, receiver.port):
        yield receiver
        receiver.released.set()  # before the server stops: it waits for every request


async def prefer(
    notifications: Service, settings: NotificationsSettings, person_id: str, **chosen: Any
) -> str | None:
    """Store a person's preferences (email off unless said); returns their webhook secret."""
    async with notifications.unit_of_work() as uow:
        saved = await store.save(
            uow.session,
            person_id,
            PreferencesIn(**{"email": EmailIn(enabled=False)} | chosen),
            UrlPolicy.of(settings),
        )
        await uow.commit()
    return saved.webhook_secret


@pytest.fixture
async def proposal_by_webhook(
    broker: KafkaBroker,
    notifications: Service,
    settings: NotificationsSettings,
    receiver: Receiver,
    both_known: None,
    learner: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    """The learner takes messages by webhook, at ``receiver``, and has a proposal to be told of."""
    await prefer(notifications, settings, learner.person_id, webhook=WebhookIn(url=receiver.url()))
    await publish_event(broker, proposal)


@pytest.fixture
def deliver(
    notifications: Service, settings: NotificationsSettings, clock: Clock
) -> Callable[[], Delivery]:
    return lambda: Delivery(notifications.unit_of_work, settings, clock=clock)


# --- the allow-list ------------------------------------------------------------------------

STRICT = UrlPolicy(("hooks.slack.com", "*.webhook.office.com", "169.254.169.254", "localhost"))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.slack.com/services/x", "must use https"),
        ("ftp://hooks.slack.com/x", "must use https"),
        ("https://evil.example/x", "not on the allow-list"),
        ("https://hooks.slack.com.evil.example/x", "not on the allow-list"),
        ("https://webhook.office.com/x", "not on the allow-list"),  # the wildcard wants a subdomain
        ("https://user:pw@hooks.slack.com/x", "user name or password"),
        ("https://169.254.169.254/latest/meta-data", "private, loopback or reserved"),
        ("not a url at all", "must use https"),
    ],
)
def test_urls_off_the_allow_list_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        STRICT.check(url)


def test_urls_on_the_allow_list_pass() -> None:
    assert STRICT.check("https://hooks.slack.com/services/T0/B0/x").host == "hooks.slack.com"
    assert (
        STRICT.check("https://acme.webhook.office.com/webhookb2/x").host
        == "acme.webhook.office.com"
    )
    assert STRICT.check("https://HOOKS.slack.com/x").host == "hooks.slack.com"


async def test_a_name_resolving_to_a_private_address_is_refused_unless_allowed() -> None:
    with pytest.raises(UnsafeUrl, match=r"127\.0\.0\.1 is a private, loopback or reserved address"):
        await STRICT.resolve("https://localhost/x")
    lenient = UrlPolicy(("localhost",), allow_private=True)
    destination = await lenient.resolve("https://localhost:8443/x")
    assert (destination.host, destination.netloc) == ("localhost", "localhost:8443")
    assert destination.url.host in {"127.0.0.1", "::1"}  # the checked address, pinned


async def test_a_public_address_is_pinned_for_the_request() -> None:
    policy = UrlPolicy(("93.184.215.14",))
    destination = await policy.resolve("https://93.184.215.14/hook?x=1")
    assert str(destination.url) == "https://93.184.215.14/hook?x=1"


# --- signatures ----------------------------------------------------------------------------


def test_a_signature_verifies_only_for_its_secret_body_and_time() -> None:
    body = b'{"id":"1"}'
    header = signing.sign("secret", body, 1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert signing.verify("secret", header, body, now=1_800_000_100)
    assert not signing.verify("other", header, body, now=1_800_000_100)
    assert not signing.verify("secret", header, body + b" ", now=1_800_000_100)
    assert not signing.verify("secret", header, body, now=1_800_000_000 + 301)  # a replay
    assert not signing.verify("secret", "v1=abc", body, now=1_800_000_000)
    assert not signing.verify("secret", "t=soon,v1=abc", body, now=1_800_000_000)


# --- delivery ------------------------------------------------------------------------------


async def test_a_webhook_gets_a_signed_description_of_each_message(
    broker: KafkaBroker,
    notifications: Service,
    settings: NotificationsSettings,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    both_known: None,
    learner: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    secret = await prefer(
        notifications, settings, learner.person_id, webhook=WebhookIn(url=receiver.url())
    )
    assert secret
    event_id = await publish_event(broker, proposal)
    assert await deliver().deliver_due() == 2  # Linda's webhook, Max's email (no SMTP: retried)

    [request] = receiver.requests
    [row] = await notifications_of(notifications, channel="webhook")
    assert row.status == "sent"
    assert request.headers[DELIVERY_HEADER.lower()] == str(row.id)
    assert request.headers["content-type"] == "application/json"
    header = request.headers[signing.HEADER.lower()]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert signing.verify(secret, header, request.body, now=timestamp)
    payload = request.json()
    assert payload["id"] == str(row.id)
    assert payload["template"] == "match-proposed"
    assert payload["source_event_id"] == event_id
    assert payload["person_id"] == learner.person_id
    assert payload["subject"] == "You have a proposed match: Max"
    assert payload["text"].startswith("You have a proposed match")
    sent = [e for e in await emitted(notifications) if isinstance(e, NotificationSent)]
    assert [(e.notification_id, e.channel) for e in sent] == [(row.id, "webhook")]


@pytest.mark.parametrize("kind", ["slack", "teams"])
async def test_chat_messages_have_the_shape_each_chat_expects(
    broker: KafkaBroker,
    notifications: Service,
    settings: NotificationsSettings,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    both_known: None,
    learner: ParticipantJoined,
    proposal: MatchProposed,
    kind: str,
) -> None:
    chat = ChatIn.model_validate({"kind": kind, "url": receiver.url()})
    await prefer(notifications, settings, learner.person_id, chat=chat)
    await publish_event(broker, proposal.model_copy(update={"explanation": ("<!channel> & co",)}))
    await deliver().deliver_due()

    [request] = receiver.requests
    assert signing.HEADER.lower() not in request.headers  # the URL itself is the secret
    payload = request.json()
    if kind == "slack":
        assert payload["text"].startswith("You have a proposed match: Max\n")
        header, section = payload["blocks"]
        assert header == {
            "type": "header",
            "text": {"type": "plain_text", "text": "You have a proposed match: Max"},
        }
        assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
        assert "&lt;!channel&gt; &amp; co" in section["text"]["text"]  # cannot ping a channel
    else:
        assert payload["type"] == "message"
        [attachment] = payload["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
        assert card["body"][0]["text"] == "You have a proposed match: Max"
        assert "<!channel> & co" in card["body"][1]["text"]


async def test_a_500_is_retried_with_the_same_delivery_id(
    notifications: Service,
    settings: NotificationsSettings,
    clock: Clock,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    proposal_by_webhook: None,
) -> None:
    receiver.replies = [500]
    worker = deliver()
    await worker.deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500: nope")

    clock.advance(seconds=settings.delivery_retry_delay)
    await worker.deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, row.attempts) == ("sent", 2)
    assert [r.headers[DELIVERY_HEADER.lower()] for r in receiver.requests] == [str(row.id)] * 2


@pytest.mark.parametrize(
    ("status", "retry_after", "waits"),
    [
        (429, lambda: "600", 600),
        (503, lambda: (datetime.now(UTC) + timedelta(seconds=900)).strftime(HTTP_DATE), 900),
        (429, lambda: str(10**400), 3600),  # no longer than the longest backoff
        (429, lambda: "soon", None),  # not understood: the usual backoff
    ],
    ids=["seconds", "date", "too long", "garbled"],
)
async def test_a_receiver_that_asks_to_wait_is_not_asked_again_sooner(
    notifications: Service,
    settings: NotificationsSettings,
    clock: Clock,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    proposal_by_webhook: None,
    status: int,
    retry_after: Callable[[], str],  # made when the test runs: a date is relative to then
    waits: int | None,
) -> None:
    """A chat that limits how often it is posted to says when to come back (Retry-After): asked
    sooner, it refuses again, and each refusal uses up one of the message's attempts."""
    receiver.replies = [(status, {"Retry-After": retry_after()})]
    failed_at = clock()
    worker = deliver()
    await worker.deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - failed_at).total_seconds()
    if waits is None:
        assert settings.delivery_retry_delay / 2 <= wait <= settings.delivery_retry_delay
    else:
        assert waits - 60 <= wait <= waits  # an HTTP-date is to the second
        clock.advance(seconds=waits - 60)
        await worker.deliver_due()
        assert len(receiver.requests) == 1
    clock.advance(seconds=60)
    await worker.deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, len(receiver.requests)) == ("sent", 2)


@given(
    st.text(max_size=40)
    | st.from_regex(
        r"[A-Z][a-z]{2}, [0-9]{1,2} [A-Z][a-z]{2} [0-9]{1,5} [0-9]{2}:[0-9]{2}:[0-9]{2} "
        r"(GMT|[+-][0-9]{4})",
        fullmatch=True,
    )
)
def test_any_retry_after_is_read_as_a_wait_or_not_at_all(retry_after: str) -> None:
    wait = _seconds_to_wait(retry_after)
    assert wait is None or wait >= 0


async def test_posts_to_one_receiver_share_a_connection(receiver: Receiver) -> None:
    """A short answer is read whole: one left unread would close its connection, and every
    message to a chat would pay a new connection (and TLS handshake)."""
    poster = HttpPoster(UrlPolicy(("127.0.0.1",), allow_http=True, allow_private=True), 10.0)
    try:
        for _ in range(3):
            await poster.post(receiver.url(), b"{}", {})
    finally:
        await poster.aclose()
    assert len({request.client for request in receiver.requests}) == 1


async def test_an_error_s_body_is_read_only_as_far_as_the_log_shows_it() -> None:
    """A receiver decides how much it answers: 100 MB of zeros as 100 kB of gzip was read and
    unpacked whole (300 MiB at the peak), for the 200 characters the error keeps of it. Asked
    for no compression, a receiver that compresses all the same is shown as it answered."""
    bomb = gzip.compress(bytes(100 * 1024 * 1024))

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-encoding", b"gzip"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": bomb})

    port = free_port()
    poster = HttpPoster(UrlPolicy(("127.0.0.1",), allow_http=True, allow_private=True), 10.0)
    async with serving(answer, port):
        tracemalloc.start()
        try:
            with pytest.raises(DeliveryError) as refused:
                await poster.post(f"http://127.0.0.1:{port}/hook", b"{}", {})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await poster.aclose()
    assert peak < 10 * 1024 * 1024, f"{peak / 2**20:.0f} MiB at the peak"
    reason = refused.value.reason
    assert reason.startswith("HTTP 500: \x1f\ufffd") and len(reason) == len("HTTP 500: ") + 200
    assert not refused.value.permanent


async def test_a_webhook_that_hangs_times_out_and_is_retried(
    notifications: Service,
    settings: NotificationsSettings,
    clock: Clock,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    proposal_by_webhook: None,
) -> None:
    receiver.replies = [HANG]
    worker = deliver()
    started = asyncio.get_running_loop().time()
    await worker.deliver_due()
    assert asyncio.get_running_loop().time() - started < settings.webhook_timeout + 2
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, row.attempts) == ("pending", 1)
    assert "timed out" in (row.last_error or "")

    clock.advance(seconds=settings.delivery_retry_delay)
    await worker.deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_webhook_that_answers_200_and_stalls_has_the_message_once(
    notifications: Service,
    settings: NotificationsSettings,
    clock: Clock,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    proposal_by_webhook: None,
) -> None:
    """The status says the message arrived: a body that never ends must not turn it into a
    timeout, or the message is posted again."""
    receiver.replies = [STALL]
    worker = deliver()
    await worker.deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)

    clock.advance(seconds=settings.delivery_retry_delay)
    await worker.deliver_due()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(("status", "permanent"), [(301, True), (308, True), (307, False)])
async def test_a_redirect_is_not_followed_and_says_where_it_leads(
    notifications: Service,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    proposal_by_webhook: None,
    status: int,
    permanent: bool,
) -> None:
    """A redirect could lead past the allow-list; a permanent one answers every retry the same."""
    receiver.replies = [(status, {"Location": "https://hooks.example/new" + "x" * 500})]
    await deliver().deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    reason = f"HTTP {status}: redirects to https://hooks.example/new{'x' * 175}, and redirects"
    assert (row.status, row.last_error) == (
        "failed" if permanent else "pending",
        f"{reason} are not followed",
    )
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [404, 410])
async def test_a_webhook_that_is_gone_fails_for_good(
    notifications: Service,
    deliver: Callable[[], Delivery],
    receiver: Receiver,
    proposal_by_webhook: None,
    status: int,
) -> None:
    receiver.replies = [status]
    await deliver().deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert (row.status, row.last_error) == ("failed", f"HTTP {status}: nope")
    failed = [e for e in await emitted(notifications) if isinstance(e, NotificationFailed)]
    assert [(e.notification_id, e.reason) for e in failed] == [(row.id, f"HTTP {status}: nope")]


async def test_a_url_refused_at_send_time_fails_without_a_request(
    notifications: Service,
    settings: NotificationsSettings,
    clock: Clock,
    receiver: Receiver,
    proposal_by_webhook: None,
) -> None:
    # The operator has since closed the door on private addresses.
    closed = settings.model_copy(update={"outbound_allow_private": False})
    await Delivery(notifications.unit_of_work, closed, clock=clock).deliver_due()
    [row] = await notifications_of(notifications, channel="webhook")
    assert row.status == "failed"
    assert (row.last_error or "").startswith("refused URL: 127.0.0.1 is a private")
    assert receiver.requests == []
