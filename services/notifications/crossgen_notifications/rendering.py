"""Rendering a notification: a Jinja2 template with a `subject` and a plain-text `body` block.

Undefined variables raise, so a template that does not fit its facts fails loudly instead of
sending a message with blanks in it.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=StrictUndefined,
    autoescape=False,  # plain text, not HTML
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def render(template: str, **facts: Any) -> Message:
    loaded = _templates.get_template(f"{template}.txt")
    context = loaded.new_context(facts)
    subject = "".join(loaded.blocks["subject"](context))
    body = "".join(loaded.blocks["body"](context))
    # One line, whatever a display name contains: a header cannot carry a line break.
    return Message(subject=" ".join(subject.split()), body=body.strip() + "\n")
