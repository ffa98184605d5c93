"""ParticipantErased, as matching publishes it, reaches erase_person through the consumer."""

from faststream.kafka import KafkaBroker

from crossgen_notifications.channels.urls import UrlPolicy
from crossgen_notifications.models import Contact, Preferences
from crossgen_notifications.preferences import store
from crossgen_notifications.preferences.model import PreferencesIn
from crossgen_notifications.testing import START, notifications_of
from crossgen_shared.events import MatchProposed, ParticipantErased, ParticipantJoined
from crossgen_shared.service import Service
from crossgen_shared.testing import publish_event


async def test_participant_erased_event_forgets_the_person(
    broker: KafkaBroker,
    notifications: Service,
    both_known: None,
    learner: ParticipantJoined,
    mentor: ParticipantJoined,
    proposal: MatchProposed,
) -> None:
    async with notifications.unit_of_work() as uow:
        await store.save(
            uow.session, learner.person_id, PreferencesIn(timezone="Europe/Berlin"), UrlPolicy(())
        )
        await uow.commit()
    await publish_event(broker, proposal)
    erased = ParticipantErased(
        participant_id=learner.participant_id,
        program_id=learner.program_id,
        person_id=learner.person_id,
        erased_at=START,
    )

    await publish_event(broker, erased)
    await publish_event(broker, erased)  # a redelivery changes nothing

    async with notifications.sessions() as db:
        contact = await db.get(Contact, learner.participant_id)
        partner = await db.get(Contact, mentor.participant_id)
        assert await db.get(Preferences, learner.person_id) is None
    assert contact is not None and partner is not None
    assert (contact.person_id, contact.display_name, contact.email) == ("", "", "")
    assert partner.email == "max@example.com"
    hers = await notifications_of(notifications, recipient_id=learner.participant_id)
    assert hers and {(n.to_address, n.status) for n in hers} == {("erased", "cancelled")}
