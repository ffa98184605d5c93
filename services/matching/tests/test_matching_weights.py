"""A program owner's weights of the score."""

from uuid import UUID, uuid4

import httpx

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import optimiser, roster
from crossgen_shared.service import Service

from .test_matching_admin import admin, cohort

CHOSEN = {
    "skills": 1.0,
    "cross_department": 0.0,
    "cross_generation": 0.0,
    "working_hours": 0.0,
    "full_tenure_gap": 10.0,
    "full_level_gap": 3.0,
}


async def test_weights_are_stored_shown_and_used(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    pid, _ = await cohort(api, tokens)
    url = f"/programs/{pid}/weights"
    defaults = (await admin(api, tokens, "GET", url)).json()
    assert defaults == {
        "skills": 0.6,
        "cross_department": 0.1,
        "cross_generation": 0.15,
        "working_hours": 0.15,
        "full_tenure_gap": 15.0,
        "full_level_gap": 4.0,
    }
    put = await admin(api, tokens, "PUT", url, json=CHOSEN)
    assert put.status_code == 200 and put.json() == CHOSEN
    assert (await admin(api, tokens, "GET", url)).json() == CHOSEN
    async with matching.sessions() as session:
        current = await roster.load(session, UUID(pid))
    assert current.program.weights == optimiser.Weights(**CHOSEN)
    # Skills alone: the best teacher of the only wanted skill scores full marks.
    run = (await admin(api, tokens, "POST", f"/programs/{pid}/matching/preview")).json()
    assert run["proposed"][0]["score"] == 1.0


async def test_weights_out_of_range_or_by_others_are_refused(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    pid, _ = await cohort(api, tokens)
    url = f"/programs/{pid}/weights"
    for bad in (
        {"skills": 1.5},
        {"cross_department": -0.1},
        {"full_tenure_gap": 0},
        {"skills": 0.0},  # with the others zero too
    ):
        response = await admin(api, tokens, "PUT", url, json=CHOSEN | bad)
        assert response.status_code == 422, bad
    missing = {k: v for k, v in CHOSEN.items() if k != "skills"}
    assert (await admin(api, tokens, "PUT", url, json=missing)).status_code == 422
    as_learner = await api.put(url, json=CHOSEN, headers=tokens.headers("L1", "participant"))
    assert as_learner.status_code == 403
    assert (await api.get(url, headers=tokens.headers("L1", "participant"))).status_code == 403
    unknown = f"/programs/{uuid4()}/weights"
    assert (await admin(api, tokens, "PUT", unknown, json=CHOSEN)).status_code == 404
    assert (await admin(api, tokens, "GET", unknown)).status_code == 404
