"""Templates render to a one-line subject, plain text and HTML, in the reader's language and
timezone, falling back to English; calendar invites carry a stable UID and a rising SEQUENCE."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from icalendar import Calendar
from jinja2 import TemplateNotFound, UndefinedError

from crossgen_notifications.invites import Attendee, invite
from crossgen_notifications.rendering import TEMPLATES, known_locale, locale_chain, render

FACTS = {"recipient": "Linda", "partner": "Max", "role": "learner"}
EN = {"locale": "en", "timezone": "UTC"}
STARTS = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
SESSION = {"starts_at": STARTS, "duration_minutes": 45}


def test_match_proposed_names_the_partner_and_the_explanation_in_text_and_html() -> None:
    message = render("match-proposed", **EN, **FACTS, explanation=("mentor teaches <b>ai</b>",))
    assert message.subject == "You have a proposed match: Max"
    assert message.text.startswith("Hello Linda,\n\nYou have a proposed match")
    assert "Max as your\nmentor, you as the learner" in message.text
    assert "  - mentor teaches <b>ai</b>\n" in message.text
    assert message.text.endswith("The Crossgen team\n")
    assert message.html is not None
    assert "<p>Hello Linda,</p>" in message.html
    assert "<li>mentor teaches &lt;b&gt;ai&lt;/b&gt;</li>" in message.html  # escaped in HTML only
    assert (
        message.excerpt.startswith("You have a proposed match") and "Hello" not in message.excerpt
    )


def test_an_email_carries_the_unsubscribe_link_and_a_chat_message_does_not() -> None:
    url = "https://crossgen.example/unsubscribe?token=abc"
    email = render("match-accepted", **EN, **FACTS, unsubscribe_url=url)
    assert f"To stop emails from Crossgen: {url}" in email.text
    assert email.html is not None and f'<a href="{url}">' in email.html
    chat = render("match-accepted", **EN, **FACTS, html=False)
    assert chat.html is None and "unsubscribe" not in chat.text
    assert chat.excerpt.startswith("Your pairing is on: you and Max have both accepted")


def test_times_are_written_in_the_reader_s_timezone_and_language() -> None:
    berlin = render("session-scheduled", locale="de", timezone="Europe/Berlin", **FACTS, **SESSION)
    assert berlin.subject == "Termin mit Max am Montag, 8. März 2027"
    assert "am Montag, 8. März 2027 um 10:00 Uhr\n(Europe/Berlin)" in berlin.text
    assert berlin.text.startswith("Hallo Linda,") and "Ihr Crossgen-Team" in berlin.text
    assert berlin.html is not None and '<html lang="de">' in berlin.html

    new_york = render(
        "session-reminder", locale="en-US", timezone="America/New_York", **FACTS, **SESSION
    )
    assert new_york.subject == "Reminder: session with Max at 4:00 AM"  # one line, plain spaces
    assert "Monday, March 8, 2027 at 4:00\u202fAM\n(America/New_York)" in new_york.text


def test_a_message_without_a_translation_comes_whole_in_english() -> None:
    message = render("pairing-ended", locale="de-AT", timezone="UTC", **FACTS, reason="")
    assert message.subject == "Your pairing with Max has ended"
    assert message.text.startswith("Hello Linda,") and "The Crossgen team" in message.text
    assert (TEMPLATES / "de" / "match-proposed.txt").exists()  # German exists for others
    assert render(
        "match-proposed", locale="de-AT", timezone="UTC", **FACTS, explanation=()
    ).subject == ("Vorgeschlagenes Tandem: Max")


def test_locale_chains_and_known_locales() -> None:
    assert locale_chain("pt-BR") == ["pt-BR", "pt", "en"]
    assert locale_chain("pt_BR") == ["pt-BR", "pt", "en"]
    assert locale_chain("en") == ["en"]
    assert all(known_locale(tag) for tag in ("en", "de", "pt-BR", "fr_CA"))
    assert not any(known_locale(tag) for tag in ("", "xx", "english", "de-DE-x-!!"))


def test_every_template_renders_in_every_language_it_has() -> None:
    facts = (
        FACTS
        | SESSION
        | {
            "explanation": ("skills",),
            "reason": "a reason",
            "previous_starts_at": STARTS - timedelta(days=1),
            "items": [{"subject": "S", "text": "T"}],
        }
    )
    for folder in TEMPLATES.iterdir():
        for template in folder.glob("*.txt"):
            if template.stem == "layout":
                continue
            message = render(template.stem, locale=folder.name, timezone="UTC", **facts)
            assert message.subject and message.text and message.html, template


@pytest.mark.parametrize("template", ["match-proposed", "match-accepted", "session-reminder"])
def test_a_missing_fact_raises_instead_of_leaving_a_blank(template: str) -> None:
    with pytest.raises(UndefinedError, match="partner"):
        render(template, **EN, recipient="Linda", role="learner", explanation=(), **SESSION)


def test_an_unknown_template_raises() -> None:
    with pytest.raises(TemplateNotFound):
        render("no-such-message", **EN, **FACTS)


def test_a_line_break_in_a_name_cannot_reach_the_subject_header() -> None:
    message = render("match-accepted", **EN, **FACTS | {"partner": "Max\nBcc: all@example.com"})
    assert "\n" not in message.subject


def test_an_invite_has_a_stable_uid_a_sequence_and_both_attendees() -> None:
    session_id = uuid4()
    common = {
        "session_id": session_id,
        "starts_at": STARTS,
        "duration_minutes": 45,
        "organizer": "Crossgen <no-reply@crossgen.example>",
        "attendees": [Attendee("Linda", "linda@example.com"), Attendee("Max", "max@example.com")],
        "stamp": STARTS - timedelta(days=7),
    }
    request = Calendar.from_ical(invite(**common, sequence=0, method="REQUEST"))
    cancel = Calendar.from_ical(invite(**common, sequence=2, method="CANCEL"))

    assert (request["METHOD"], cancel["METHOD"]) == ("REQUEST", "CANCEL")
    first, last = request.walk("VEVENT")[0], cancel.walk("VEVENT")[0]
    assert first["UID"] == last["UID"] == f"{session_id}@crossgen"
    assert (first["SEQUENCE"], last["SEQUENCE"]) == (0, 2)
    assert (first["STATUS"], last["STATUS"]) == ("CONFIRMED", "CANCELLED")
    assert first.decoded("DTSTART") == STARTS
    assert first.decoded("DTEND") == STARTS + timedelta(minutes=45)
    assert str(first["ORGANIZER"]) == "mailto:no-reply@crossgen.example"
    assert [str(a) for a in first["ATTENDEE"]] == [
        "mailto:linda@example.com",
        "mailto:max@example.com",
    ]
    assert first["ATTENDEE"][0].params["CN"] == "Linda"
