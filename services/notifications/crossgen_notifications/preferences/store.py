"""Each person's preferences: stored, read back, and turned into how to reach them now."""

import secrets
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crossgen_notifications.channels import ChannelName
from crossgen_notifications.channels.urls import UnsafeUrl, UrlPolicy
from crossgen_notifications.models import Contact, Preferences
from crossgen_notifications.preferences.model import (
    ChatIn,
    EmailIn,
    PreferencesIn,
    PreferencesOut,
    QuietHoursIn,
    WebhookOut,
)
from crossgen_notifications.scheduling.timing import QuietHours
from crossgen_shared.errors import Unprocessable
from crossgen_shared.time_zones import zone


@dataclass(frozen=True)
class Reach:
    """How to reach one recipient: language, clock, pace, and an address per channel they use."""

    person_id: str
    locale: str
    timezone: str
    quiet: QuietHours | None
    digest: bool
    addresses: dict[ChannelName, str]

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)


def reach(contact: Contact, preferences: Preferences | None) -> Reach:
    if preferences is None:
        return Reach(
            contact.person_id, contact.locale, "UTC", None, False, {"email": contact.email}
        )
    addresses: dict[ChannelName, str] = {}
    if preferences.email_enabled:
        addresses["email"] = contact.email
    if preferences.chat_url:
        addresses["chat"] = preferences.chat_url
    if preferences.webhook_url:
        addresses["webhook"] = preferences.webhook_url
    quiet = (
        QuietHours(preferences.quiet_start, preferences.quiet_end)
        if preferences.quiet_start is not None and preferences.quiet_end is not None
        else None
    )
    return Reach(
        contact.person_id,
        preferences.locale or contact.locale,
        preferences.timezone,
        quiet,
        preferences.digest,
        addresses,
    )


def enabled(preferences: Preferences | None, channel: ChannelName) -> bool:
    """Whether the person still wants ``channel``: checked again right before sending."""
    if preferences is None:
        return channel == "email"
    return {
        "email": preferences.email_enabled,
        "chat": preferences.chat_url is not None,
        "webhook": preferences.webhook_url is not None,
    }[channel]


def shown(preferences: Preferences | None) -> PreferencesOut:
    if preferences is None:
        return PreferencesOut()
    quiet = (
        QuietHoursIn(start=preferences.quiet_start, end=preferences.quiet_end)
        if preferences.quiet_start is not None and preferences.quiet_end is not None
        else None
    )
    return PreferencesOut(
        locale=preferences.locale,
        timezone=preferences.timezone,
        quiet_hours=quiet,
        delivery="daily_digest" if preferences.digest else "immediate",
        email=EmailIn(enabled=preferences.email_enabled),
        chat=ChatIn.model_validate({"kind": preferences.chat_kind, "url": preferences.chat_url})
        if preferences.chat_url
        else None,
        webhook=WebhookOut(url=preferences.webhook_url, secret=preferences.webhook_secret or "")
        if preferences.webhook_url
        else None,
    )


async def save(
    session: AsyncSession, person_id: str, chosen: PreferencesIn, policy: UrlPolicy
) -> Preferences:
    """Store ``chosen``; 422 for a chat or webhook URL Crossgen will not post to."""
    for field, channel in (("chat", chosen.chat), ("webhook", chosen.webhook)):
        if channel is not None:
            try:
                policy.check(channel.url)
            except UnsafeUrl as exc:
                raise Unprocessable(f"{field}.url: {exc}") from exc
    values = {
        "locale": chosen.locale,
        "timezone": chosen.timezone,
        "quiet_start": chosen.quiet_hours.start if chosen.quiet_hours else None,
        "quiet_end": chosen.quiet_hours.end if chosen.quiet_hours else None,
        "digest": chosen.delivery == "daily_digest",
        "email_enabled": chosen.email.enabled,
        "chat_kind": chosen.chat.kind if chosen.chat else None,
        "chat_url": chosen.chat.url if chosen.chat else None,
        "webhook_url": chosen.webhook.url if chosen.webhook else None,
        "webhook_secret": secrets.token_urlsafe(32) if chosen.webhook else None,
    }
    upsert = insert(Preferences).values(person_id=person_id, **values)
    # A webhook keeps its secret while it stays configured: receivers need not re-verify.
    kept_secret = case(
        (upsert.excluded.webhook_url.is_(None), None),
        else_=func.coalesce(Preferences.webhook_secret, upsert.excluded.webhook_secret),
    )
    updates: dict[str, Any] = {k: upsert.excluded[k] for k in values} | {
        "webhook_secret": kept_secret
    }
    saved = await session.execute(
        upsert.on_conflict_do_update(index_elements=[Preferences.person_id], set_=updates)
        .returning(Preferences)
        .execution_options(populate_existing=True)
    )
    return saved.scalar_one()


async def turn_off_email(session: AsyncSession, person_id: str) -> None:
    upsert = insert(Preferences).values(
        person_id=person_id, timezone="UTC", digest=False, email_enabled=False
    )
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=[Preferences.person_id], set_={"email_enabled": False}
        )
    )
