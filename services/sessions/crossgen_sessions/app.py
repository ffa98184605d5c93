"""Wiring: the sessions service's consumers and HTTP API on the shared service runtime."""

from fastapi import FastAPI

from crossgen_sessions import service, views
from crossgen_sessions.settings import SessionsSettings
from crossgen_shared import topics
from crossgen_shared.events import MatchAccepted, PairingEnded
from crossgen_shared.service import Service


def build(settings: SessionsSettings) -> Service:
    sessions = Service("sessions", settings)
    sessions.consume(
        topics.PAIRINGS,
        {MatchAccepted: service.on_match_accepted, PairingEnded: service.on_pairing_ended},
    )
    return sessions


def create_app(settings: SessionsSettings) -> FastAPI:
    return build(settings).http_app([views.router])
