"""Writing an email out (channels/email.py): the headers written as they are are the ones compat32
would write, and the boundaries ``compose`` sets never occur in a part, whatever its text."""

from datetime import UTC, datetime
from email import message_from_bytes, policy
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from crossgen_notifications import invites
from crossgen_notifications.channels import Outgoing
from crossgen_notifications.channels.email import WIRE, EmailChannel
from crossgen_notifications.settings import NotificationsSettings

COMPAT32 = policy.compat32.clone(linesep="\r\n", max_line_length=998)
# Text as templates may make it: anything but line breaks other than "\n".
LINE = st.text(
    st.characters(
        exclude_categories=("Cs",),
        exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    ),
    max_size=120,
)
CHANNEL = EmailChannel(
    NotificationsSettings(
        database_url="postgresql+asyncpg://unused/unused",
        jwt_issuer="test",
        jwt_audience="test",
        jwt_public_key="unused",
    )
)


def invite() -> str:
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    attendee = invites.Attendee("Lea", "lea@example.com")
    return invites.invite(
        session_id=uuid4(),
        starts_at=at,
        duration_minutes=45,
        sequence=0,
        method="REQUEST",
        organizer="Crossgen <no-reply@crossgen.example>",
        attendees=[attendee],
        stamp=at,
    )


@st.composite
def bodies(draw: st.DrawFn, notification_id: UUID) -> str:
    """Lines, some of them the very boundaries of the message."""
    boundary = f"--=_{notification_id.hex}"
    lines = st.one_of(LINE, st.sampled_from([f"{boundary}_a", f"{boundary}_m--", boundary]))
    return "\n".join(draw(st.lists(lines, max_size=8)))


@st.composite
def emails(draw: st.DrawFn) -> Outgoing:
    notification_id = draw(st.uuids())
    return Outgoing(
        notification_id=notification_id,
        channel="email",
        to_address=draw(st.sampled_from(["lea@example.com", "léa@exämple.com"])),
        template="match-proposed",
        source_event_id="e-1",
        source_event_type="match-proposed",
        recipient_id=uuid4(),
        person_id="E-1",
        subject=draw(LINE),
        text=draw(bodies(notification_id)),
        html=draw(st.none() | bodies(notification_id)),
        calendars=draw(st.sampled_from([(), (invite(),), (invite(), invite())])),
        created_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        unsubscribe_url=draw(st.none() | st.just(f"https://x.example/u?t={'a' * 200}")),
    )


@settings(max_examples=300, deadline=None)
@given(emails())
def test_an_email_is_written_as_compat32_writes_it_and_reads_back_whole(
    message: Outgoing,
) -> None:
    mail = CHANNEL.compose(message)
    wire = mail.as_bytes(policy=WIRE)
    assert wire == mail.as_bytes(policy=COMPAT32)

    parsed = message_from_bytes(wire, policy=policy.default)
    texts = [part.get_content() for part in parsed.walk() if part.get_content_maintype() == "text"]
    sent = [message.text, *([message.html] if message.html is not None else [])]
    assert [t.replace("\r\n", "\n") for t in texts[: len(sent)]] == sent
    assert len(list(parsed.iter_attachments())) == len(message.calendars)
