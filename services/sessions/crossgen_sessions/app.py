"""Wiring: the sessions service's consumers, background worker and HTTP API."""

from datetime import timedelta
from functools import partial

from fastapi import APIRouter, FastAPI

from crossgen_sessions.at_risk import service as at_risk
from crossgen_sessions.at_risk import views as at_risk_views
from crossgen_sessions.goals import views as goals_views
from crossgen_sessions.outcomes import dashboard
from crossgen_sessions.outcomes import views as outcomes_views
from crossgen_sessions.pairings import consumers
from crossgen_sessions.pairings import views as pairings_views
from crossgen_sessions.sessions import views as sessions_views
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared import topics
from crossgen_shared.events import ParticipantErased, ParticipantLeft
from crossgen_shared.service import Service

ROUTERS: tuple[APIRouter, ...] = (
    pairings_views.router,
    sessions_views.router,
    goals_views.router,
    outcomes_views.router,
    at_risk_views.router,
    dashboard.router,
)


def build(settings: SessionsSettings) -> Service:
    sessions = Service("sessions", settings)
    sessions.consume(
        topics.PAIRINGS, consumers.pairing_events(timedelta(days=settings.pairing_term_days))
    )
    sessions.consume(
        topics.PARTICIPANTS,
        {
            ParticipantLeft: consumers.on_participant_left,
            ParticipantErased: consumers.on_participant_erased,
        },
    )
    sessions.workers.append(
        partial(
            at_risk.watch,
            sessions.unit_of_work,
            settings.at_risk_policy(),
            settings.at_risk_check_interval,
        )
    )
    return sessions


def create_app(settings: SessionsSettings) -> FastAPI:
    return build(settings).http_app(ROUTERS)
