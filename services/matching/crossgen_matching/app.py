"""Wiring: the matching service's consumers and HTTP API on the shared service runtime."""

from functools import partial

from fastapi import FastAPI

from crossgen_matching import automatic_enrolment, erasure, expiry, joins, resolve, views
from crossgen_matching.directory import intake, scim
from crossgen_matching.settings import MatchingSettings
from crossgen_shared import topics
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.service import Service


def build(settings: MatchingSettings) -> Service:
    matching = Service("matching", settings)
    matching.consume(
        topics.PARTICIPANTS,
        {ParticipantJoined: joins.on_participant_joined},
        in_turn=joins.in_turn,
    )
    intake.register(matching, settings.hris_batch_wait)
    matching.workers.append(
        partial(
            erasure.watch,
            matching.unit_of_work,
            settings.erasure_grace,
            settings.erasure_check_interval,
        )
    )
    matching.workers.append(
        partial(
            expiry.watch,
            matching.unit_of_work,
            settings.proposal_expiry,
            settings.proposal_expiry_check_interval,
        )
    )
    matching.workers.append(
        partial(
            automatic_enrolment.watch,
            matching.unit_of_work,
            settings.automatic_enrolment_check_interval,
        )
    )
    if settings.resolve_interval_hours:
        matching.workers.append(
            partial(resolve.watch, matching.unit_of_work, settings.resolve_interval_hours * 3600)
        )
    return matching


def create_app(settings: MatchingSettings) -> FastAPI:
    return build(settings).http_app([views.router, scim.router])
