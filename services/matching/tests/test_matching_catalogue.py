"""A program's skill catalogue at ``/programs/{id}/skills``, and enrolments and profile changes
refused for naming a skill outside it."""

import httpx

from crossgen_local.tokens import TokenIssuer

from .test_matching_admin import admin
from .test_matching_flow import ENROL, enrol, program
from .test_matching_profile import put_profile

MISSING = "00000000-0000-0000-0000-000000000001"


async def catalogued_program(api: httpx.AsyncClient, tokens: TokenIssuer) -> str:
    pid = await program(api, tokens)
    skills = ["TikTok", "AI  tools", "figma", "tiktok"]
    put = await admin(api, tokens, "PUT", f"/programs/{pid}/skills", json={"skills": skills})
    assert put.status_code == 200, put.text
    assert put.json() == {"skills": ["ai tools", "figma", "tiktok"]}
    return pid


async def test_a_program_owner_sets_the_catalogue_and_participants_read_it(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await catalogued_program(api, tokens)
    url = f"/programs/{pid}/skills"
    read = await api.get(url, headers=tokens.headers("L1", "participant"))
    assert read.status_code == 200 and read.json() == {"skills": ["ai tools", "figma", "tiktok"]}

    as_participant = tokens.headers("L1", "participant")
    refused = await api.put(url, json={"skills": ["cobol"]}, headers=as_participant)
    assert refused.status_code == 403
    assert (await api.get(url)).status_code == 401
    for body in [{"skills": []}, {"skills": ["  "]}, {"skills": ["x"] * 1001}, {"skill": ["x"]}]:
        bad = await admin(api, tokens, "PUT", url, json=body)
        assert bad.status_code == 422, (body, bad.text)
    assert (await admin(api, tokens, "GET", url)).json()["skills"] == [
        "ai tools",
        "figma",
        "tiktok",
    ]
    for method in ("GET", "PUT"):
        unknown = await admin(api, tokens, method, f"/programs/{MISSING}/skills", json={})
        assert unknown.status_code == 404, (method, unknown.text)

    for emptied in ({"skills": None}, {}):  # back to taking any skill
        await admin(api, tokens, "PUT", url, json={"skills": ["tiktok"]})
        cleared = await admin(api, tokens, "PUT", url, json=emptied)
        assert cleared.status_code == 200 and cleared.json() == {"skills": None}
        assert (await admin(api, tokens, "GET", url)).json() == {"skills": None}


async def test_an_enrolment_with_an_unknown_skill_is_refused_with_a_suggestion(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await catalogued_program(api, tokens)
    refused = await api.post(
        f"/programs/{pid}/enrolments",
        json=ENROL | {"role": "learner", "skills": ["TikTok", "Tik Tok", "quantum chemistry"]},
        headers=tokens.headers("L1", "participant"),
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        "unknown skill 'tik tok' (did you mean 'tiktok'?); unknown skill 'quantum chemistry';"
        f" the program's skills are listed at GET /programs/{pid}/skills"
    )
    joined = await enrol(api, tokens, pid, "L1", role="learner", skills=["TikTok", "AI tools"])
    assert [s["name"] for s in joined["skills"]] == ["ai tools", "tiktok"]


async def test_a_profile_change_with_an_unknown_skill_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await catalogued_program(api, tokens)
    await enrol(api, tokens, pid, "M1", role="mentor", skills=["figma"])
    refused = await put_profile(api, tokens, pid, "M1", skills=["figma", "tik tok"])
    assert refused.status_code == 422, refused.text
    assert "unknown skill 'tik tok' (did you mean 'tiktok'?)" in refused.json()["detail"]
    mine = await api.get(
        f"/programs/{pid}/enrolments/me", headers=tokens.headers("M1", "participant")
    )
    assert mine.json()["skills"] == [{"name": "figma", "level": 3}]
    assert (await put_profile(api, tokens, pid, "M1", skills=["tiktok"])).status_code == 200


async def test_narrowing_the_catalogue_leaves_participants_as_they_are(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await catalogued_program(api, tokens)
    await enrol(api, tokens, pid, "M1", role="mentor", skills=["figma", "tiktok"])
    narrowed = await admin(
        api, tokens, "PUT", f"/programs/{pid}/skills", json={"skills": ["tiktok"]}
    )
    assert narrowed.status_code == 200, narrowed.text
    mine = await api.get(
        f"/programs/{pid}/enrolments/me", headers=tokens.headers("M1", "participant")
    )
    assert [s["name"] for s in mine.json()["skills"]] == ["figma", "tiktok"]


async def test_a_program_without_a_catalogue_takes_any_skill(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "L1", role="learner", skills=["tik tok", "quantum chemistry"])
    changed = await put_profile(api, tokens, pid, "L1", skills=["cobol"])
    assert changed.status_code == 200, changed.text
