"""What matching reads of a program (roster.py)."""

import random
from datetime import UTC, datetime
from uuid import UUID

import httpx

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import roster
from crossgen_shared.service import Service

from .test_matching_admin import cohort
from .test_matching_live_cache import employee


async def test_members_share_one_copy_of_the_words_they_have_in_common(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    """A program's live matching keeps every member it read: each row brings its own copy of
    a role, a skill name, a language, a time zone and a department, which a program of 100,000
    would keep as many times."""
    pid, ids = await cohort(api, tokens)
    async with matching.unit_of_work() as uow:  # one seed: one department
        uow.session.add_all(employee(who, None, random.Random(0)) for who in ("M1", "M2", "L1"))
        await uow.commit()
    async with matching.sessions() as session:
        current = await roster.load(session, UUID(pid))
        [again] = (await roster.newcomers(session, [UUID(ids["M2"])], datetime.now(UTC))).values()
    m1, m2, l1 = (current.participants[who] for who in ("M1", "M2", "L1"))
    [tiktok] = m1.skills
    for member in (m2, l1, again.member):
        assert next(skill for skill in member.skills if skill == tiktok) is tiktok
    assert m1.role is m2.role is again.member.role
    assert m1.timezone is l1.timezone and m1.languages[0] is l1.languages[0]
    people = [current.people[who] for who in ("M1", "M2", "L1")] + [again.person]
    assert all(person.languages is people[0].languages for person in people)
    assert all(person.department is people[0].department for person in people)
