"""Rendering a message from its Jinja2 templates, in the reader's language and timezone.

Each locale has a folder (``templates/en``, ``templates/de``, ``templates/pt-BR``) with two files a
message: ``<name>.txt`` (blocks ``subject`` and ``body``) and ``<name>.html``, both extending that
folder's layout. A message is rendered whole in the first language of the chain ``pt-BR`` → ``pt``
→ ``en`` that has it, so one email never mixes languages. Undefined variables raise, so a template
that does not fit its facts fails loudly instead of sending a message with blanks in it.
"""

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from crossgen_shared.time_zones import zone

TEMPLATES = Path(__file__).parent / "templates"
FALLBACK = "en"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str  # the whole email: greeting, body, sign-off and footer
    html: str | None
    excerpt: str  # the body alone, for chat messages, webhooks and digests


def render(
    template: str, *, locale: str, timezone: str, html: bool = True, **facts: Any
) -> Message:
    """Raises jinja2.TemplateError (or a formatting error) when the template cannot render."""
    language = _language(template, locale)
    if language is None:
        raise TemplateNotFound(f"{template}.txt")
    env = _environment(language)
    variables = facts | {"locale": locale, "timezone": timezone}
    text = env.get_template(f"{template}.txt")
    subject = "".join(text.blocks["subject"](text.new_context(variables)))
    excerpt = "".join(text.blocks["body"](text.new_context(variables)))
    return Message(
        # One line, whatever a display name contains: a header cannot carry a line break.
        subject=" ".join(subject.split()),
        text=text.render(variables).strip() + "\n",
        html=env.get_template(f"{template}.html").render(variables) if html else None,
        excerpt=excerpt.strip() + "\n",
    )


def locale_chain(tag: str) -> list[str]:
    """``pt-BR`` → ``["pt-BR", "pt", "en"]``: the template folders to look in, in order."""
    parts = tag.replace("_", "-").split("-")
    chain = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return chain if FALLBACK in chain else [*chain, FALLBACK]


def known_locale(tag: str) -> bool:
    try:
        Locale.parse(tag.replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


# The templates are the package's files: they do not change while the service runs, so where each
# is found is looked up once, and Jinja does not check their times at every render (which cost
# about as much as the render itself).
@functools.lru_cache(maxsize=1024)
def _language(template: str, locale: str) -> str | None:
    """The first language of ``locale``'s chain that has ``template``."""
    chain = locale_chain(locale)
    return next((lang for lang in chain if (TEMPLATES / lang / f"{template}.txt").is_file()), None)


@functools.cache
def _environment(language: str) -> Environment:
    env = Environment(
        # A layout or partial missing in a translation comes from a more general language.
        loader=ChoiceLoader(
            [FileSystemLoader(TEMPLATES / lang) for lang in locale_chain(language)]
        ),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["date"] = _date
    env.filters["time"] = _time
    return env


def _local(context: Context, value: datetime) -> tuple[datetime, Locale]:
    locale = Locale.parse(str(context["locale"]).replace("_", "-"), sep="-")
    return value.astimezone(zone(str(context["timezone"]))), locale


@pass_context
def _date(context: Context, value: datetime) -> str:
    """The day, written out in the reader's language and timezone: Monday, March 1, 2027."""
    local, locale = _local(context, value)
    return format_date(local, "full", locale=locale)


@pass_context
def _time(context: Context, value: datetime) -> str:
    """The time of day in the reader's language and timezone: 9:00 AM, 09:00."""
    local, locale = _local(context, value)
    return format_time(local, "short", locale=locale)
