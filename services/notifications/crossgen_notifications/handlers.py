"""Which events concern whom, and what each is told; each handler runs in a consumer's unit of work.

Pairing membership and session times are kept locally (pairings, session_invites): a leaver's
partners, a reschedule's old time and an invite's sequence are facts no single event carries.
"""

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import or_, select, update

from crossgen_notifications import invites
from crossgen_notifications.messages import Messages, Recipient
from crossgen_notifications.models import Contact, Notification, Pairing, SessionInvite, Status
from crossgen_notifications.scheduling.timing import Clock, system_clock
from crossgen_notifications.settings import NotificationsSettings
from crossgen_shared.db import any_of_uuids
from crossgen_shared.envelope import Envelope
from crossgen_shared.events import (
    FeedbackSubmitted,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    PairingAtRisk,
    PairingEnded,
    ParticipantLeft,
    SessionCancelled,
    SessionCompleted,
    SessionScheduled,
)
from crossgen_shared.unit_of_work import UnitOfWork

REMINDER = "session-reminder"
FEEDBACK_REQUEST = "feedback-request"
OPEN = ("proposed", "accepted")
PairingEvent = MatchProposed | MatchAccepted | MatchDeclined | PairingEnded


class Notifier:
    def __init__(
        self,
        settings: NotificationsSettings,
        clock: Clock = system_clock,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.messages = Messages(settings, clock, on_queued)

    # --- participants ---------------------------------------------------------------------

    async def on_participant_left(
        self, event: ParticipantLeft, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        """Tell the partner of each of the leaver's open pairings."""
        contact = await uow.session.get(Contact, event.participant_id, with_for_update=True)
        if contact is None:
            return  # never joined as far as we know: nobody was paired with them
        contact.left_at = event.left_at
        mine = or_(
            Pairing.learner_id == event.participant_id, Pairing.mentor_id == event.participant_id
        )
        pairings = await uow.session.scalars(
            select(Pairing).where(mine, Pairing.status.in_(OPEN)).with_for_update()
        )
        for pairing in pairings:
            # PairingEnded may follow for the same pairing: the partner has been told already.
            pairing.status = "partner-left"
            learner_left = pairing.learner_id == event.participant_id
            partner_id = pairing.mentor_id if learner_left else pairing.learner_id
            partner = await self.messages.recipient(uow, partner_id)
            facts = {
                "partner": contact.display_name,
                "role": "mentor" if learner_left else "learner",
            }
            await self.messages.queue(uow, envelope, partner, "partner-left", facts)

    # --- pairings -------------------------------------------------------------------------

    async def on_match_proposed(
        self, event: MatchProposed, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        await self._pairing(uow, event.pairing_id, event.learner_id, event.mentor_id, "proposed")
        await self._tell_pair(
            uow,
            envelope,
            event.learner_id,
            event.mentor_id,
            "match-proposed",
            explanation=event.explanation,
        )

    async def on_match_accepted(
        self, event: MatchAccepted, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        await self._pairing(uow, event.pairing_id, event.learner_id, event.mentor_id, "accepted")
        await self._tell_pair(uow, envelope, event.learner_id, event.mentor_id, "match-accepted")

    async def on_match_declined(
        self, event: MatchDeclined, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        """Only the one who did not decline needs telling."""
        await self._pairing(uow, event.pairing_id, event.learner_id, event.mentor_id, "declined")
        learner = await self.messages.recipient(uow, event.learner_id)
        mentor = await self.messages.recipient(uow, event.mentor_id)
        for me, other, role in _both(learner, mentor):
            if me.contact.participant_id != event.declined_by:
                facts = {"partner": other.name, "role": role, "reason": event.reason}
                await self.messages.queue(uow, envelope, me, "match-declined", facts)

    async def on_pairing_ended(
        self, event: PairingEnded, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        before = await self._pairing(
            uow, event.pairing_id, event.learner_id, event.mentor_id, "ended"
        )
        if before == "partner-left":
            return  # told when the partner left
        await self._tell_pair(
            uow, envelope, event.learner_id, event.mentor_id, "pairing-ended", reason=event.reason
        )

    # --- sessions -------------------------------------------------------------------------

    async def on_session_scheduled(
        self, event: SessionScheduled, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        """Scheduled or, for a session seen before, rescheduled: an invite, a reminder, and a
        feedback request after its end; a reschedule withdraws the old reminder and request."""
        learner = await self.messages.recipient(uow, event.learner_id)
        mentor = await self.messages.recipient(uow, event.mentor_id)
        invite = await uow.session.get(SessionInvite, event.session_id, with_for_update=True)
        facts: dict[str, Any] = {
            "starts_at": event.starts_at,
            "duration_minutes": event.duration_minutes,
        }
        if invite is None:
            template = "session-scheduled"
            invite = SessionInvite(
                session_id=event.session_id,
                learner_id=event.learner_id,
                mentor_id=event.mentor_id,
                starts_at=event.starts_at,
                duration_minutes=event.duration_minutes,
                sequence=0,
                cancelled=False,
            )
            uow.session.add(invite)
        else:
            template = "session-rescheduled"
            facts["previous_starts_at"] = invite.starts_at
            invite.starts_at, invite.duration_minutes = event.starts_at, event.duration_minutes
            invite.sequence += 1
            invite.cancelled = False
            await self._withdraw(uow, event.session_id, (REMINDER, FEEDBACK_REQUEST), "rescheduled")
        calendar = self._calendar(invite, "REQUEST", learner, mentor)
        remind_at = event.starts_at - self._settings.reminder_lead
        ends_at = event.starts_at + timedelta(minutes=event.duration_minutes)
        queue = functools.partial(self.messages.queue, uow, envelope, session_id=event.session_id)
        for me, other, role in _both(learner, mentor):
            mine = facts | {"partner": other.name, "role": role}
            await queue(me, template, mine, calendar=calendar)
            if remind_at > self._clock():  # a session this close needs no reminder of its own
                await queue(me, REMINDER, mine, due=remind_at)
            await queue(me, FEEDBACK_REQUEST, mine, due=ends_at)

    async def on_session_cancelled(
        self, event: SessionCancelled, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        learner = await self.messages.recipient(uow, event.learner_id)
        mentor = await self.messages.recipient(uow, event.mentor_id)
        invite = await uow.session.get(SessionInvite, event.session_id, with_for_update=True)
        await self._withdraw(uow, event.session_id, (REMINDER, FEEDBACK_REQUEST), "cancelled")
        calendar = None
        if invite is not None and not invite.cancelled:
            invite.cancelled = True
            invite.sequence += 1
            calendar = self._calendar(invite, "CANCEL", learner, mentor)
        for me, other, role in _both(learner, mentor):
            facts = {
                "partner": other.name,
                "role": role,
                "reason": event.reason,
                "starts_at": invite.starts_at if invite else None,
            }
            await self.messages.queue(
                uow,
                envelope,
                me,
                "session-cancelled",
                facts,
                session_id=event.session_id,
                calendar=calendar,
            )

    async def on_session_completed(
        self, event: SessionCompleted, _: Envelope, uow: UnitOfWork
    ) -> None:
        await self._withdraw(uow, event.session_id, (REMINDER,), "the session took place")

    async def on_feedback_submitted(
        self, event: FeedbackSubmitted, _: Envelope, uow: UnitOfWork
    ) -> None:
        await self._withdraw(
            uow,
            event.session_id,
            (FEEDBACK_REQUEST,),
            "feedback given",
            recipient_id=event.participant_id,
        )

    async def on_pairing_at_risk(
        self, event: PairingAtRisk, envelope: Envelope, uow: UnitOfWork
    ) -> None:
        await self._tell_pair(
            uow, envelope, event.learner_id, event.mentor_id, "pairing-at-risk", reason=event.reason
        )

    # --- helpers --------------------------------------------------------------------------

    async def _tell_pair(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        learner_id: UUID,
        mentor_id: UUID,
        template: str,
        **facts: Any,
    ) -> None:
        """One message to the learner and one to the mentor, each naming the other."""
        learner = await self.messages.recipient(uow, learner_id)
        mentor = await self.messages.recipient(uow, mentor_id)
        for me, other, role in _both(learner, mentor):
            mine = facts | {"partner": other.name, "role": role}
            await self.messages.queue(uow, envelope, me, template, mine)

    async def _pairing(
        self, uow: UnitOfWork, pairing_id: UUID, learner_id: UUID, mentor_id: UUID, status: str
    ) -> str | None:
        """Record the pairing's new status; returns the one it had."""
        ahead: dict[UUID, Pairing | None] | None = uow.memo.get(_PAIRINGS_AHEAD)
        if ahead is not None and pairing_id in ahead:
            pairing = ahead[pairing_id]
        else:
            pairing = await uow.session.get(Pairing, pairing_id, with_for_update=True)
        if pairing is None:
            pairing = Pairing(
                pairing_id=pairing_id, learner_id=learner_id, mentor_id=mentor_id, status=status
            )
            uow.session.add(pairing)
            if ahead is not None:
                ahead[pairing_id] = pairing
            return None
        before, pairing.status = pairing.status, status
        return before

    @asynccontextmanager
    async def pairs_in_turn(
        self, uow: UnitOfWork, events: list[PairingEvent]
    ) -> AsyncIterator[None]:
        """The pairings topic's batch: the pairings and recipients its events will ask for, read
        at once; the pairings locked (in one order), held for the unit of work with those it
        adds."""
        ids = sorted({event.pairing_id for event in events})
        found = await uow.session.scalars(_LOCKED_PAIRINGS, {"pairing_ids": ids})
        ahead: dict[UUID, Pairing | None] = dict.fromkeys(ids)
        ahead.update((pairing.pairing_id, pairing) for pairing in found)
        uow.memo[_PAIRINGS_AHEAD] = ahead
        people = {side for event in events for side in (event.learner_id, event.mentor_id)}
        await self.messages.read_recipients(uow, people)
        yield

    async def _withdraw(
        self,
        uow: UnitOfWork,
        session_id: UUID,
        templates: tuple[str, ...],
        reason: str,
        recipient_id: UUID | None = None,
    ) -> None:
        """Cancel a session's messages that have not gone out yet."""
        await uow.write_held()  # messages queued earlier in this transaction are among them
        query = update(Notification).where(
            Notification.session_id == session_id,
            Notification.template.in_(templates),
            Notification.status.in_([Status.PENDING, Status.COLLECTED]),
        )
        if recipient_id is not None:
            query = query.where(Notification.recipient_id == recipient_id)
        await uow.session.execute(query.values(status=Status.CANCELLED, last_error=reason))

    def _calendar(
        self, invite: SessionInvite, method: invites.Method, learner: Recipient, mentor: Recipient
    ) -> str:
        return invites.invite(
            session_id=invite.session_id,
            starts_at=invite.starts_at,
            duration_minutes=invite.duration_minutes,
            sequence=invite.sequence,
            method=method,
            organizer=self._settings.smtp_sender,
            attendees=[
                invites.Attendee(p.name, p.contact.email) for p in (learner, mentor) if not p.left
            ],
            stamp=self._clock(),
        )


_PAIRINGS_AHEAD = "pairings read ahead"
# The pairings a batch names, locked in one order; built once.
_LOCKED_PAIRINGS = (
    select(Pairing)
    .where(Pairing.pairing_id == any_of_uuids("pairing_ids"))
    .order_by(Pairing.pairing_id)
    .with_for_update()
)


def _both(learner: Recipient, mentor: Recipient) -> tuple[tuple[Recipient, Recipient, str], ...]:
    """Each side of a pair, with the other side and their own role."""
    return ((learner, mentor, "learner"), (mentor, learner, "mentor"))
