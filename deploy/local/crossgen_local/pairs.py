"""Pairs who enrol themselves while the fault suite runs: a learner and a mentor who share a skill
nobody else has, so matching must propose exactly them and notifications must mail both.

HRIS records enrol people without skills, which matching cannot pair; these pairs are what makes
proposals and their mails flow during the faults.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from crossgen_local.tokens import TokenIssuer
from crossgen_shared.events import Role

RETRY = 0.5  # seconds between attempts while matching is down


@dataclass
class PairStream:
    """``await stream.run(rate, until)``; ``accepted`` holds each pair matching took in whole."""

    urls: Callable[[], list[str]]  # matching's processes running now
    tokens: TokenIssuer
    give_up_after: float  # seconds of refusals before a person counts as never accepted
    program_id: str = ""  # a program anyone may enrol in
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (learner, mentor) person ids

    async def run(self, rate: float, streaming: Callable[[], bool]) -> None:
        """A pair every ``1 / rate`` seconds while ``streaming()``."""
        async with httpx.AsyncClient(timeout=10) as http:
            number = 0
            while streaming():
                number += 1
                learner, mentor = f"S-{number:05d}-L", f"S-{number:05d}-M"
                skill = f"skill {number}"
                if await self.enrol(http, learner, "learner", skill) and await self.enrol(
                    http, mentor, "mentor", skill
                ):
                    self.accepted.append((learner, mentor))
                await asyncio.sleep(1 / rate)

    async def enrol(self, http: httpx.AsyncClient, person: str, role: Role, skill: str) -> bool:
        """Enrol ``person`` until matching answers; 409 means an attempt whose answer was lost
        got through."""
        body = {
            "role": role,
            "display_name": person,
            "email": f"{person.lower()}@example.com",
            "skills": [skill],
        }
        headers = self.tokens.headers(person, "participant")
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            for url in self.urls():
                try:
                    response = await http.post(
                        f"{url}/programs/{self.program_id}/enrolments", json=body, headers=headers
                    )
                except httpx.HTTPError:
                    continue
                if response.status_code in (201, 409):
                    return True
            await asyncio.sleep(RETRY)
        return False
