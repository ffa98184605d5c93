"""HTTP API for preferences: a person edits their own; whoever has the link unsubscribes."""

from typing import cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from crossgen_notifications.channels.urls import UrlPolicy
from crossgen_notifications.models import Preferences
from crossgen_notifications.preferences import store, unsubscribe
from crossgen_notifications.preferences.model import PreferencesIn, PreferencesOut
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared.auth import Principal, require
from crossgen_shared.errors import NotFound
from crossgen_shared.service import service_of, unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

router = APIRouter(tags=["preferences"])


def settings_of(request: Request) -> NotificationsSettings:
    return cast(NotificationsSettings, service_of(request).settings)


@router.get("/me/preferences", response_model=PreferencesOut)
async def my_preferences(
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
) -> PreferencesOut:
    async with uow:
        found = await uow.session.scalar(
            select(Preferences).where(Preferences.person_id == who.subject)
        )
        return store.shown(found)


@router.put("/me/preferences", response_model=PreferencesOut)
async def set_my_preferences(
    chosen: PreferencesIn,
    who: Principal = Depends(require("participant")),
    uow: UnitOfWork = Depends(unit_of_work),
    settings: NotificationsSettings = Depends(settings_of),
) -> PreferencesOut:
    """Replace the caller's preferences; 422 for a value Crossgen cannot use, such as a webhook
    URL that is not https or whose host is not on the allow-list."""
    async with uow:
        saved = await store.save(uow.session, who.subject, chosen, UrlPolicy.of(settings))
        await uow.commit()
        return store.shown(saved)


_DONE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body><p>You will get no more emails from Crossgen.
You can turn them on again in your notification preferences.</p></body></html>
"""


@router.get("/unsubscribe", response_class=HTMLResponse)
@router.post("/unsubscribe", response_class=HTMLResponse)  # RFC 8058 one-click from mail clients
async def unsubscribe_from_email(
    token: str, uow: UnitOfWork = Depends(unit_of_work)
) -> HTMLResponse:
    """Turn email off for the person the signed link names; no login needed."""
    async with uow:
        person_id = unsubscribe.person_of(await unsubscribe.signing_key(uow.session), token)
        if person_id is None:
            raise NotFound("this unsubscribe link is not valid")
        await store.turn_off_email(uow.session, person_id)
        await uow.commit()
    return HTMLResponse(_DONE)
