"""Templates render to a one-line subject and a plain-text body; a missing fact is an error."""

import pytest
from jinja2 import UndefinedError

from crossgen_notifications.rendering import render

FACTS = {"recipient": "Linda", "partner": "Max", "role": "learner"}


def test_match_proposed_names_the_partner_and_the_explanation() -> None:
    message = render("match-proposed", **FACTS, explanation=("mentor teaches ai tools",))
    assert message.subject == "You have a proposed match: Max"
    assert "Hello Linda," in message.body
    assert "Max as your\nmentor, you as the learner" in message.body
    assert "  - mentor teaches ai tools\n" in message.body


def test_match_accepted_says_the_pairing_is_on() -> None:
    as_mentor = render("match-accepted", **FACTS | {"role": "mentor"})
    assert as_mentor.subject == "Your pairing is on: you and Max"
    assert "You will be Max's mentor" in as_mentor.body
    assert "Max will be your mentor" in render("match-accepted", **FACTS).body


def test_session_follow_up_asks_for_feedback() -> None:
    message = render("session-follow-up", **FACTS, held_minutes=50)
    assert message.subject == "How did your session go?"
    assert "session with Max go? It lasted 50 minutes." in message.body
    assert "feedback" in message.body and message.body.endswith("The Crossgen team\n")


@pytest.mark.parametrize("template", ["match-proposed", "match-accepted", "session-follow-up"])
def test_a_missing_fact_raises_instead_of_leaving_a_blank(template: str) -> None:
    with pytest.raises(UndefinedError, match="partner"):
        render(template, recipient="Linda", role="learner", explanation=(), held_minutes=5)


def test_a_line_break_in_a_name_cannot_reach_the_subject_header() -> None:
    message = render("match-accepted", **FACTS | {"partner": "Max\nBcc: all@example.com"})
    assert "\n" not in message.subject
