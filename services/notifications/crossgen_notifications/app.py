"""Wiring: the notifications service's consumers, delivery worker and HTTP API."""

from fastapi import FastAPI

from crossgen_notifications import service, views
from crossgen_notifications.delivery import EmailDelivery
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared import topics
from crossgen_shared.events import (
    MatchAccepted,
    MatchProposed,
    ParticipantJoined,
    ParticipantUpdated,
    SessionCompleted,
)
from crossgen_shared.service import Service


def build(settings: NotificationsSettings) -> Service:
    notifications = Service("notifications", settings)
    notifications.consume(
        topics.PARTICIPANTS,
        {
            ParticipantJoined: service.on_participant_joined,
            ParticipantUpdated: service.on_participant_updated,
        },
    )
    notifications.consume(
        topics.PAIRINGS,
        {MatchProposed: service.on_match_proposed, MatchAccepted: service.on_match_accepted},
    )
    notifications.consume(topics.SESSIONS, {SessionCompleted: service.on_session_completed})
    notifications.workers.append(EmailDelivery(notifications.unit_of_work, settings).run)
    return notifications


def create_app(settings: NotificationsSettings) -> FastAPI:
    return build(settings).http_app([views.router])
