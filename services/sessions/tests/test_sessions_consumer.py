"""What sessions does with matching's pairing events, over a real PostgreSQL and the test broker."""

from datetime import UTC, datetime
from uuid import UUID

from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy import func, select

from crossgen_sessions.models import Pairing
from crossgen_shared import topics
from crossgen_shared.db import InboxRecord
from crossgen_shared.events import MatchAccepted, PairingEnded
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event


async def pairings(service: Service, pairing_id: UUID) -> list[Pairing]:
    async with service.sessions() as session:
        return list(await session.scalars(select(Pairing).where(Pairing.id == pairing_id)))


def ended(accepted: MatchAccepted) -> PairingEnded:
    return PairingEnded(
        **accepted.model_dump(exclude={"accepted_at"}),
        reason="mentor left the company",
        ended_at=datetime.now(UTC),
    )


async def test_an_accepted_match_opens_the_pairing_once(
    sessions_service: Service, match_accepted: MatchAccepted
) -> None:
    async with TestKafkaBroker(sessions_service.broker) as broker:
        event_id = await publish_event(broker, match_accepted)
        await publish_event(broker, match_accepted, event_id=event_id)  # a redelivery
        await publish_event(broker, match_accepted)  # announced again under a new id

    [pairing] = await pairings(sessions_service, match_accepted.pairing_id)
    assert pairing.status == "active"
    assert (pairing.learner_person_id, pairing.mentor_person_id) == ("E-100", "E-200")
    assert pairing.learner_id == match_accepted.learner_id
    assert pairing.opened_at == match_accepted.accepted_at
    async with sessions_service.sessions() as session:
        handled = await session.scalar(select(func.count()).select_from(InboxRecord))
    assert handled == 2


async def test_an_ended_pairing_is_marked_ended(
    sessions_service: Service, match_accepted: MatchAccepted
) -> None:
    end = ended(match_accepted)
    async with TestKafkaBroker(sessions_service.broker) as broker:
        await publish_event(broker, match_accepted)
        await publish_event(broker, end)

    [pairing] = await pairings(sessions_service, match_accepted.pairing_id)
    assert (pairing.status, pairing.ended_at) == ("ended", end.ended_at)


async def test_a_pairing_ended_before_it_was_accepted_leaves_nothing_behind(
    sessions_service: Service, match_accepted: MatchAccepted
) -> None:
    async with TestKafkaBroker(sessions_service.broker) as broker:
        await publish_event(broker, ended(match_accepted))

    assert await pairings(sessions_service, match_accepted.pairing_id) == []


async def test_an_invalid_record_is_dead_lettered_and_the_consumer_goes_on(
    sessions_service: Service, match_accepted: MatchAccepted
) -> None:
    dead_letters: list[dict[str, str]] = []

    @sessions_service.broker.subscriber(topics.dead_letter("sessions"))
    async def park(message: KafkaMessage) -> None:
        dead_letters.append(message.headers)

    async with TestKafkaBroker(sessions_service.broker) as broker:
        await broker.publish(
            b"\xff\x00 not json",
            topics.PAIRINGS,
            key=b"k",
            headers={
                "ce_id": "garbage-1",
                "ce_type": MatchAccepted.event_type(),
                "ce_source": "/test",
                "ce_specversion": "1.0",
            },
        )
        await publish_event(broker, match_accepted)

    [parked] = dead_letters
    assert "not a CloudEvent" in parked["dlq_reason"]
    assert parked["dlq_origin_topic"] == topics.PAIRINGS
    assert parked["ce_id"] == "garbage-1"
    assert await pairings(sessions_service, match_accepted.pairing_id) != []
