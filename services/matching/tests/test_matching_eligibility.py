"""Who a program admits: its rules over the HTTP API, the check at self-enrolment, and a run
refused for want of a role (the switch to automatic: test_automatic_enrolment.py)."""

from datetime import UTC, date, datetime
from typing import Any

import httpx

from crossgen_local.tokens import TokenIssuer
from crossgen_matching.directory import employees
from crossgen_matching.directory.record import EmployeeRecord
from crossgen_shared.events import ParticipantJoined
from crossgen_shared.service import Service

from .test_matching_admin import admin, events
from .test_matching_flow import ENROL, enrol, program

JUNIOR_DESIGNERS = {
    "enrolment": "self",
    "learner": {"job_level_min": 5},
    "mentor": {"tenure_years_max": 5, "departments": ["Design"]},
}


async def hire(matching: Service, number: str, **fields: Any) -> None:
    """Put a person in the directory, as an HRIS would."""
    async with matching.unit_of_work() as uow:
        await employees.record(
            uow,
            EmployeeRecord(
                employee_number=number,
                source="test",
                source_timestamp=datetime.now(UTC),
                active=True,
                **fields,
            ),
        )
        await uow.commit()


async def company(matching: Service) -> None:
    """Two junior designers (one without an email), a senior, a finance junior and a leaver."""
    recent, long_ago = date.today().replace(day=1), date(2010, 1, 4)
    await hire(matching, "D1", display_name="Dana", email="dana@example.com",
               department="Design", job_level="L2", hire_date=recent, languages=("de-AT",),
               timezone="Europe/Berlin")  # fmt: skip
    await hire(matching, "D2", department="Design", job_level="L2", hire_date=recent)
    await hire(matching, "S1", email="sam@example.com", department="Sales", job_level="L7",
               hire_date=long_ago)  # fmt: skip
    await hire(matching, "F1", email="fay@example.com", department="Finance", job_level="L1",
               hire_date=recent)  # fmt: skip
    await hire(matching, "X1", email="x@example.com", department="Design", hire_date=recent)
    await hire(matching, "X1", removed=True)


async def test_the_rules_are_kept_with_how_many_meet_them(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    await company(matching)
    pid = await program(api, tokens)
    url = f"/programs/{pid}/eligibility"
    default = (await admin(api, tokens, "GET", url)).json()
    assert default["enrolment"] == "self" and default["automatic_enrolment"] is None
    assert default["learner"]["departments"] == [] and default["learner"]["job_level_min"] is None
    assert default["eligible"] == {"learner": 4, "mentor": 4}  # every present employee

    put = await admin(api, tokens, "PUT", url, json=JUNIOR_DESIGNERS)
    assert put.status_code == 200, put.text
    assert put.json()["eligible"] == {"learner": 1, "mentor": 2}
    assert put.json()["mentor"]["departments"] == ["Design"]
    assert put.json()["automatic_enrolment"] is None
    assert (await admin(api, tokens, "GET", url)).json() == put.json()

    assert (await api.get(url, headers=tokens.headers("D1", "participant"))).status_code == 403
    missing = "/programs/00000000-0000-0000-0000-000000000000/eligibility"
    assert (await admin(api, tokens, "PUT", missing, json=JUNIOR_DESIGNERS)).status_code == 404


async def test_bad_rules_are_refused_saying_which(
    api: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    url = f"/programs/{await program(api, tokens)}/eligibility"
    for body, says in [
        ({"learner": {"job_level_min": 6, "job_level_max": 2}}, "job_level_min 6 is above"),
        ({"mentor": {"tenure_years_min": -2}}, "tenure_years_min"),
        ({"mentor": {"grade": 3}}, "grade"),
        ({"enrolment": "lottery"}, "enrolment"),
        ({"enrolment": "automatic"}, "automatic enrolment needs rules"),
    ]:
        response = await admin(api, tokens, "PUT", url, json=body)
        assert response.status_code == 422 and says in response.text, (body, response.text)


async def test_self_enrolment_must_meet_the_rules_of_the_role(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    await company(matching)
    pid = await program(api, tokens)
    await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=JUNIOR_DESIGNERS)

    async def attempt(who: str, role: str) -> httpx.Response:
        return await api.post(
            f"/programs/{pid}/enrolments",
            json=ENROL | {"role": role},
            headers=tokens.headers(who, "participant"),
        )

    refused = await attempt("S1", "mentor")
    assert refused.status_code == 403
    assert "not eligible as mentor: tenure 1" in refused.text
    assert "years is above the maximum 5; department 'Sales' is not one of Design" in refused.text
    stranger = await attempt("Z9", "mentor")
    assert stranger.status_code == 403
    assert "Z9 is not in the company directory, and program 'Digital' admits" in stranger.text
    leaver = await attempt("X1", "mentor")
    assert leaver.status_code == 403 and "no longer active" in leaver.text
    assert (await attempt("D1", "mentor")).status_code == 201
    assert (await attempt("S1", "learner")).status_code == 201
    assert len(await events(matching, ParticipantJoined)) == 2

    # Without rules, anyone enrols as before: even someone the directory does not know.
    open_program = await program(api, tokens)
    await enrol(api, tokens, open_program, "Z9", role="mentor")


async def test_a_run_without_a_role_says_why_and_how_many_meet_its_rules(
    api: httpx.AsyncClient, matching: Service, tokens: TokenIssuer
) -> None:
    await company(matching)
    pid = await program(api, tokens)
    for action in ("preview", "publish"):
        empty = await admin(api, tokens, "POST", f"/programs/{pid}/matching/{action}")
        assert empty.status_code == 422
        assert "the program has no mentors: nobody is enrolled as mentor" in empty.text

    rules = JUNIOR_DESIGNERS | {"mentor": {"tenure_years_max": 5, "departments": ["Marketing"]}}
    await admin(api, tokens, "PUT", f"/programs/{pid}/eligibility", json=rules)
    await enrol(api, tokens, pid, "S1", role="learner")
    refused = await admin(api, tokens, "POST", f"/programs/{pid}/matching/preview")
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "the program has no mentors: nobody is enrolled as mentor; 0 employees in the directory"
        " meet the mentor rules (tenure ≤ 5 years, department in Marketing)"
    )

    await enrol(api, tokens, (other := await program(api, tokens)), "S1", role="mentor")
    no_learners = await admin(api, tokens, "POST", f"/programs/{other}/matching/publish")
    assert no_learners.status_code == 422
    assert "the program has no learners: nobody is enrolled as learner" in no_learners.text
