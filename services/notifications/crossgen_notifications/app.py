"""Wiring: the notifications service's consumers, delivery worker and HTTP API."""

from fastapi import FastAPI

from crossgen_notifications import people, views
from crossgen_notifications.handlers import Notifier
from crossgen_notifications.preferences import views as preference_views
from crossgen_notifications.scheduling.delivery import Delivery
from crossgen_notifications.scheduling.timing import Clock, system_clock
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared import topics
from crossgen_shared.events import (
    FeedbackSubmitted,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    PairingAtRisk,
    PairingEnded,
    ParticipantErased,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    SessionCancelled,
    SessionCompleted,
    SessionScheduled,
)
from crossgen_shared.service import Service


def build(settings: NotificationsSettings, clock: Clock = system_clock) -> Service:
    notifications = Service("notifications", settings)
    delivery = Delivery(notifications.unit_of_work, settings, clock=clock)
    notifications.workers.append(delivery.run)
    # A message due now is sent at once, not at the delivery loops' next look.
    notifier = Notifier(settings, clock, on_queued=delivery.wake)
    notifications.consume(
        topics.PARTICIPANTS,
        {
            ParticipantJoined: people.on_participant_joined,
            ParticipantUpdated: people.after_joins(people.on_participant_updated),
            ParticipantLeft: people.after_joins(notifier.on_participant_left),
            ParticipantErased: people.after_joins(
                lambda e, _, uow: people.erase_person(uow, e.person_id, e.erased_at)
            ),
        },
        in_turn=people.joins_together,
    )
    notifications.consume(
        topics.PAIRINGS,
        {
            MatchProposed: notifier.on_match_proposed,
            MatchAccepted: notifier.on_match_accepted,
            MatchDeclined: notifier.on_match_declined,
            PairingEnded: notifier.on_pairing_ended,
        },
        in_turn=notifier.pairs_in_turn,
    )
    notifications.consume(
        topics.SESSIONS,
        {
            SessionScheduled: notifier.on_session_scheduled,
            SessionCancelled: notifier.on_session_cancelled,
            SessionCompleted: notifier.on_session_completed,
            FeedbackSubmitted: notifier.on_feedback_submitted,
            PairingAtRisk: notifier.on_pairing_at_risk,
        },
    )
    return notifications


def create_app(settings: NotificationsSettings) -> FastAPI:
    return build(settings).http_app([views.router, preference_views.router])
