"""Channels a message can go out on: email (SMTP), chat (Slack / Teams webhooks), signed webhooks.

A channel sends one ``Outgoing`` message or raises ``DeliveryError`` saying whether trying again
could help. Channels never touch the database: the delivery worker records what happened.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

ChannelName = Literal["email", "chat", "webhook"]


@dataclass(frozen=True)
class Outgoing:
    """A claimed message, as the channel needs it."""

    notification_id: UUID
    channel: ChannelName
    to_address: str
    template: str
    source_event_id: str
    source_event_type: str
    recipient_id: UUID
    person_id: str
    subject: str
    text: str
    html: str | None
    calendars: tuple[str, ...]  # iCalendar invites to attach (a digest may carry several)
    created_at: datetime
    unsubscribe_url: str | None = None
    chat_kind: str | None = None
    webhook_secret: str | None = None


class DeliveryError(Exception):
    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after  # seconds the receiver asked us to wait, if it did


class Channel(Protocol):
    async def send(self, message: Outgoing) -> None: ...
