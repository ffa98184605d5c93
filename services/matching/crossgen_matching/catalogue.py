"""A program's skill catalogue: the skill names it knows, so that a typo ("tik tok" for "tiktok")
is refused at enrolment instead of making a learner no mentor can ever match.

Pure: which names a catalogue lacks, and the nearest name it has. Without a catalogue any name
goes. Reading the program and refusing the request is ``service``'s.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Annotated

from pydantic import AfterValidator, Field

from crossgen_matching.models import skill_name

SkillName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(skill_name)]


@dataclass(frozen=True)
class UnknownSkill:
    name: str
    suggestion: str | None  # the catalogue's closest name, when one is close enough

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"unknown skill {self.name!r}{hint}"


def outside(names: Iterable[str], catalogue: Collection[str] | None) -> list[str]:
    """The ``names`` (as ``skill_name`` gives them) the catalogue lacks, in their order; none when
    there is no catalogue."""
    if not catalogue:
        return []
    known = set(catalogue)
    return [name for name in names if name not in known]


def unknown_skills(names: Iterable[str], catalogue: Collection[str] | None) -> list[UnknownSkill]:
    """``outside``, each with the catalogue's closest name to suggest."""
    return [
        UnknownSkill(name, next(iter(get_close_matches(name, catalogue or (), n=1)), None))
        for name in outside(names, catalogue)
    ]
