"""Erasing a person: contact data, preferences and message contents go; ids and counts stay."""

from datetime import timedelta

from faststream.kafka import KafkaBroker

from crossgen_notifications.channels.urls import UrlPolicy
from crossgen_notifications.models import Contact, Preferences
from crossgen_notifications.people import erase_person
from crossgen_notifications.preferences import store
from crossgen_notifications.preferences.model import PreferencesIn
from crossgen_notifications.testing import START, notifications_of
from crossgen_shared.events import (
    MatchAccepted,
    MatchProposed,
    ParticipantJoined,
    SessionScheduled,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event


async def test_erasure_forgets_the_person_but_keeps_the_pairing_going_for_the_partner(
    broker: KafkaBroker,
    notifications: Service,
    both_known: None,
    learner: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    async with notifications.unit_of_work() as uow:
        await store.save(
            uow.session, learner.person_id, PreferencesIn(timezone="Europe/Berlin"), UrlPolicy(())
        )
        await uow.commit()
    await publish_event(broker, proposal)
    session = SessionScheduled(
        **proposal.model_dump(include={"pairing_id", "program_id", "learner_id", "mentor_id"}),
        session_id=proposal.pairing_id,
        starts_at=START + timedelta(days=7),
        duration_minutes=45,
    )
    await publish_event(broker, session)

    async with notifications.unit_of_work() as uow:
        await erase_person(uow, learner.person_id, START)
        await uow.commit()

    async with notifications.sessions() as db:
        contact = await db.get(Contact, learner.participant_id)
        assert await db.get(Preferences, learner.person_id) is None
    assert contact is not None
    assert (contact.person_id, contact.display_name, contact.email, contact.left_at) == (
        "",
        "",
        "",
        START,
    )

    hers = await notifications_of(notifications, recipient_id=learner.participant_id)
    assert len(hers) == 4  # still counted
    assert {(n.person_id, n.to_address, n.subject, n.body, n.html, n.calendar) for n in hers} == {
        ("", "erased", "erased", "", None, None)
    }
    assert {n.status for n in hers} == {"cancelled"}
    his = await notifications_of(notifications, recipient_id=proposal.mentor_id)
    assert all("linda@example.com" not in (n.calendar or "") for n in his)
    assert {n.status for n in his} == {"pending"}

    # Later events about the pairing still reach the partner, and only him.
    await publish_event(
        broker,
        MatchAccepted(
            **proposal.model_dump(exclude={"score", "explanation", "proposed_at"}),
            accepted_at=START,
        ),
    )
    accepted = await notifications_of(notifications, template="match-accepted")
    assert [n.to_address for n in accepted] == ["max@example.com"]
