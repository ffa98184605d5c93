"""Who is calling: a participant (acting in their own pairings) or a program owner.

A program owner is an ``admin`` whose token lists the programs they own in a ``programs`` claim
(program ids, set by the identity provider); they read those programs' pairings and outcomes and
nothing else. Without the claim an admin owns no program here.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import Depends

from crossgen_shared.auth import Principal, Role, require
from crossgen_shared.errors import Forbidden


@dataclass(frozen=True)
class Caller:
    person_id: str
    programs: frozenset[str]  # programs this caller owns; empty unless an admin

    def owns(self, program_id: UUID) -> bool:
        return str(program_id) in self.programs

    def ensure_owns(self, program_id: UUID) -> None:
        if not self.owns(program_id):
            raise Forbidden(f"only the owner of program {program_id} can see this")


def caller(*roles: Role) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A FastAPI dependency admitting a caller with any of ``roles`` (401 / 403 otherwise)."""

    async def dependency(principal: Principal = Depends(require(*roles))) -> Caller:
        return Caller(person_id=principal.subject, programs=principal.programs)

    return dependency
