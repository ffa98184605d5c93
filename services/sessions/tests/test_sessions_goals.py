"""Learning goals over the HTTP API and a real PostgreSQL."""

from collections.abc import Callable

import httpx

from crossgen_local.tokens import TokenIssuer
from crossgen_shared.events import MatchAccepted


async def test_the_pair_sets_goals_and_moves_their_progress(
    api: httpx.AsyncClient,
    tokens: TokenIssuer,
    owner: Callable[..., dict[str, str]],
    pairing: MatchAccepted,
) -> None:
    url = f"/pairings/{pairing.pairing_id}/goals"
    learner = tokens.headers("E-100", "participant")
    mentor = tokens.headers("E-200", "participant")

    first = await api.post(url, json={"title": "Run a Teams live event"}, headers=learner)
    assert first.status_code == 201
    assert (first.json()["progress"], first.json()["created_by"]) == (0, str(pairing.learner_id))
    second = await api.post(url, json={"title": "Prompting", "progress": 20}, headers=mentor)
    assert second.status_code == 201

    goal = f"/goals/{first.json()['id']}"
    moved = await api.patch(goal, json={"progress": 60}, headers=mentor)
    assert moved.status_code == 200
    assert (moved.json()["title"], moved.json()["progress"]) == ("Run a Teams live event", 60)
    renamed = await api.patch(goal, json={"title": "Host a Teams town hall"}, headers=learner)
    assert (renamed.json()["title"], renamed.json()["progress"]) == ("Host a Teams town hall", 60)
    assert renamed.json()["updated_at"] > first.json()["updated_at"]

    for reader in (learner, owner(pairing.program_id)):
        listed = await api.get(url, headers=reader)
        assert [(g["title"], g["progress"]) for g in listed.json()] == [
            ("Host a Teams town hall", 60),
            ("Prompting", 20),
        ]


async def test_goal_input_is_checked(
    api: httpx.AsyncClient, tokens: TokenIssuer, pairing: MatchAccepted
) -> None:
    url = f"/pairings/{pairing.pairing_id}/goals"
    learner = tokens.headers("E-100", "participant")
    bad = await api.post(url, json={"title": "", "progress": 101}, headers=learner)
    assert bad.status_code == 422
    assert {e["loc"][-1] for e in bad.json()["detail"]} == {"title", "progress"}

    goal = (await api.post(url, json={"title": "Slack etiquette"}, headers=learner)).json()
    negative = await api.patch(f"/goals/{goal['id']}", json={"progress": -5}, headers=learner)
    assert negative.status_code == 422
    empty = await api.patch(f"/goals/{goal['id']}", json={}, headers=learner)
    assert empty.status_code == 422 and "give a title, a progress, or both" in empty.text
    unknown = await api.patch(
        "/goals/00000000-0000-0000-0000-000000000000", json={"progress": 5}, headers=learner
    )
    assert unknown.status_code == 404 and "does not exist" in unknown.json()["detail"]
