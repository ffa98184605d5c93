"""The SCIM endpoint driven by a real SCIM client library (scim2-client), over httpx's ASGI
transport, against a real PostgreSQL; and what its changes do to the programs."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from scim2_client import BaseAsyncSCIMClient
from scim2_models import (
    Context,
    Email,
    EnterpriseUser,
    Error,
    ListResponse,
    Manager,
    ResourceType,
    ScimProvider,
    SearchRequest,
    User,
)

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import service, views
from crossgen_matching.directory import employees
from crossgen_matching.directory import scim as scim_endpoint
from crossgen_matching.directory.models import Employee
from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.directory.scim.resources import CrossgenUser
from crossgen_shared.events import (
    MatchDeclined,
    MatchProposed,
    PairingEnded,
    ParticipantLeft,
    Role,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox

ScimUser = User[EnterpriseUser]
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class HttpxSCIMClient(BaseAsyncSCIMClient):
    """scim2-client over an httpx AsyncClient (the library's own engines use httpx2 or raw ASGI)."""

    def __init__(self, client: httpx.AsyncClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, url, **kwargs)


@pytest.fixture
async def http(matching: Service) -> AsyncIterator[httpx.AsyncClient]:
    app = matching.http_app([views.router, scim_endpoint.router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://matching/scim/v2"
    ) as client:
        yield client
    await matching.engine.dispose()


@pytest.fixture
async def scim(http: httpx.AsyncClient, tokens: TokenIssuer) -> HttpxSCIMClient:
    http.headers.update(tokens.headers("okta", "integration"))
    return HttpxSCIMClient(
        http,
        provider=ScimProvider(
            models=[User, EnterpriseUser], resource_types=[ResourceType.from_resource(ScimUser)]
        ),
    )


def person(number: str, user_name: str, **enterprise: Any) -> ScimUser:
    user = ScimUser(
        user_name=user_name,
        display_name=f"Person {number}",
        emails=[Email(value=user_name, type="work", primary=True)],
        active=True,
    )
    user[EnterpriseUser] = EnterpriseUser(employee_number=number, **enterprise)
    return user


async def test_discovery_describes_users_with_the_enterprise_extension(
    http: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    http.headers.update(tokens.headers("okta", "integration"))
    client = HttpxSCIMClient(http)  # knows nothing but what the server publishes
    await client.discover()
    (users,) = client.provider.resource_types
    assert users.endpoint == "/Users"
    assert [str(e.schema_) for e in users.schema_extensions or []] == [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:extension:crossgen:2.0:User",
    ]
    crossgen = next(s for s in client.provider.schemas if s.id == str(CrossgenUser.__schema__))
    attributes = {a.name: a.multi_valued for a in crossgen.attributes or []}
    assert attributes == {"jobLevel": False, "hireDate": False, "skills": True, "interests": True}
    config = client.provider.config
    assert config and config.patch and config.patch.supported
    assert config.filter and config.filter.supported and config.filter.max_results
    assert config.bulk and not config.bulk.supported


async def test_create_get_replace_and_delete_a_user(
    scim: HttpxSCIMClient, http: httpx.AsyncClient
) -> None:
    created = await scim.create(
        person("E-1", "lea@example.com", department="Sales", manager=Manager(value="E-9"))
    )
    assert isinstance(created, User) and created.id == "E-1"
    assert created.meta is not None and str(created.meta.location).endswith("/scim/v2/Users/E-1")
    fetched = await scim.query(ScimUser, "E-1")
    assert isinstance(fetched, User)
    assert fetched[EnterpriseUser].department == "Sales"
    assert fetched[EnterpriseUser].manager.value == "E-9"

    fetched.title = "Head of Sales"
    fetched[EnterpriseUser].department = None  # a replace without it clears it
    replaced = await scim.replace(fetched)
    assert isinstance(replaced, User)
    assert replaced.title == "Head of Sales" and replaced[EnterpriseUser].department is None

    # An IdP that knows nothing of the enterprise extension replaces what it knows.
    core_only = {
        "schemas": [str(User.__schema__)],
        "userName": "lea@example.com",
        "externalId": "o-1",
    }
    response = await http.put("/Users/E-1", json=core_only)
    assert response.status_code == 200, response.text
    assert response.json()["externalId"] == "o-1" and response.json()["id"] == "E-1"

    await scim.delete(ScimUser, "E-1")
    gone = await scim.query(ScimUser, "E-1", raise_scim_errors=False)
    assert isinstance(gone, Error) and gone.status == 404
    rehired = await scim.create(person("E-1", "lea@example.com"))  # nothing stale blocks it
    assert isinstance(rehired, User) and rehired.active and rehired.title is None


async def test_level_hire_date_skills_and_interests_come_and_go_in_the_crossgen_extension(
    http: httpx.AsyncClient, tokens: TokenIssuer, matching: Service
) -> None:
    http.headers.update(tokens.headers("workday", "integration"))
    FullUser = User[EnterpriseUser | CrossgenUser]
    scim = HttpxSCIMClient(
        http,
        provider=ScimProvider(
            models=[User, EnterpriseUser, CrossgenUser],
            resource_types=[ResourceType.from_resource(FullUser)],
        ),
    )
    user = FullUser.model_validate(_scim_json(person("E-1", "lea@example.com")))
    user[CrossgenUser] = CrossgenUser(
        job_level="L4",
        hire_date=date(2021, 3, 1),
        skills=["TikTok", "AI  Tools"],
        interests=["Excel"],
    )
    created = await scim.create(user)
    assert isinstance(created, User)
    extension = created[CrossgenUser]
    assert (extension.job_level, extension.hire_date) == ("L4", date(2021, 3, 1))
    assert (extension.skills, extension.interests) == (["ai tools", "tiktok"], ["excel"])

    # An IdP that knows nothing of the extension leaves both as they are.
    response = await http.put("/Users/E-1", json=_scim_json(person("E-1", "lea@example.com")))
    assert response.status_code == 200, response.text
    promote = {"Operations": [{"op": "replace", "path": f"{CrossgenUser.__schema__}:jobLevel",
                              "value": "L5"}]}  # fmt: skip
    patched = await scim.modify(FullUser, "E-1", promote, check_request_payload=False)
    assert isinstance(patched, User) and patched[CrossgenUser].job_level == "L5"
    learn = {"Operations": [{"op": "add", "path": f"{CrossgenUser.__schema__}:interests",
                            "value": ["Figma"]}]}  # fmt: skip
    patched = await scim.modify(FullUser, "E-1", learn, check_request_payload=False)
    assert isinstance(patched, User) and patched[CrossgenUser].interests == ["excel", "figma"]
    async with matching.sessions() as session:
        stored = await session.get(Employee, "E-1")
    assert stored is not None and (stored.job_level, stored.hire_date) == ("L5", date(2021, 3, 1))
    assert (stored.skills, stored.interests) == (["ai tools", "tiktok"], ["excel", "figma"])


async def test_list_filters_and_pages(scim: HttpxSCIMClient, matching: Service) -> None:
    for n in range(1, 6):
        user = person(f"E-{n}", f"p{n}@example.com", department="IT" if n % 2 else "HR")
        user.external_id = f"ext-{n}"
        user.active = n != 5
        await scim.create(user)

    async def ids(filter: str | None = None, **paging: int) -> tuple[int, list[str]]:
        found = await scim.query(ScimUser, SearchRequest(filter=filter, **paging))
        assert isinstance(found, ListResponse)
        return found.total_results or 0, [str(u.id) for u in found.resources or []]

    assert await ids('userName eq "P2@EXAMPLE.COM"') == (1, ["E-2"])  # userName ignores case
    assert await ids('externalId eq "ext-3"') == (1, ["E-3"])
    assert await ids('emails.value eq "p4@example.com"') == (1, ["E-4"])
    assert await ids("active eq false") == (1, ["E-5"])
    assert await ids(
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "IT"'
        ' and not (userName sw "p1")'
    ) == (2, ["E-3", "E-5"])
    assert await ids('userName eq "p1@example.com" or externalId eq "ext-2"') == (
        2,
        ["E-1", "E-2"],
    )
    assert await ids(startIndex=2, count=2) == (5, ["E-2", "E-3"])
    assert await ids(startIndex=5, count=10) == (5, ["E-5"])
    assert await ids(count=0) == (5, [])

    # Loaded from an HRIS without a userName, a person goes by their email: an IdP finds them.
    async with matching.unit_of_work() as uow:
        fed = EmployeeRecord(
            employee_number="E-6",
            email="p6@example.com",
            source="hris:bamboohr",
            source_timestamp=datetime.now(UTC),
        )
        await employees.record(uow, fed)
        await uow.commit()
    assert await ids('userName eq "p6@example.com"') == (1, ["E-6"])


async def test_patch_takes_what_entra_id_and_okta_send(
    scim: HttpxSCIMClient, http: httpx.AsyncClient
) -> None:
    await scim.create(person("E-1", "lea@example.com"))
    await scim.create(person("E-7", "max@example.com"))
    entra = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "title", "value": "Analyst"},
            {
                "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "value": "E-7",
            },
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "l@example.com"},
        ],
    }
    patched = await scim.modify(ScimUser, "E-1", entra, check_request_payload=False)
    assert isinstance(patched, User)
    assert patched.active is False and patched.title == "Analyst"
    assert patched[EnterpriseUser].manager.value == "E-7"
    assert patched.emails and patched.emails[0].value == "l@example.com"

    okta = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": True, "displayName": "Lea B."}}],
    }
    patched = await scim.modify(ScimUser, "E-1", okta, check_request_payload=False)
    assert isinstance(patched, User) and patched.active and patched.display_name == "Lea B."
    # Attributes the patch did not touch are kept.
    assert patched.title == "Analyst"


async def _pairing(
    matching: Service, learner: str, mentor: str, *, accept: bool = True
) -> tuple[UUID, UUID]:
    """A program where ``learner`` and ``mentor`` are paired; returns (program, pairing)."""
    roles: tuple[tuple[str, Role], ...] = ((learner, "learner"), (mentor, "mentor"))
    async with matching.unit_of_work() as uow:
        program = await service.create_program(uow, "Digital")
        joined = [
            await service.enrol(
                uow,
                program_id=program.id,
                person_id=who,
                role=role,
                display_name=who,
                email=f"{who.lower()}@example.com",
                skills={"ai tools": 3},
                capacity=1,
            )
            for who, role in roles
        ]
        pairing = await service.match_newcomer(uow, joined[0].id)
        assert pairing is not None
        if accept:
            for who in (learner, mentor):
                await service.accept(uow, pairing.id, who)
        await uow.commit()
    return program.id, pairing.id


async def _enrol(matching: Service, program: UUID, who: str, role: Role) -> None:
    async with matching.unit_of_work() as uow:
        await service.enrol(
            uow,
            program_id=program,
            person_id=who,
            role=role,
            display_name=who,
            email=f"{who.lower()}@example.com",
            skills={"ai tools": 3},
            capacity=1,
        )
        await uow.commit()


async def test_deleting_an_enrolled_person_ends_their_pairing_and_rematches_the_partner(
    scim: HttpxSCIMClient, matching: Service
) -> None:
    for number in ("E-1", "E-2", "E-3"):
        await scim.create(person(number, f"{number.lower()}@example.com"))
    program, pairing = await _pairing(matching, learner="E-1", mentor="E-2")
    await _enrol(matching, program, "E-3", "learner")  # waiting for a mentor

    await scim.delete(ScimUser, "E-1")

    events = [e.event for e in await outbox(matching.sessions)]
    left = [e for e in events if isinstance(e, ParticipantLeft)]
    ended = [e for e in events if isinstance(e, PairingEnded)]
    assert len(left) == 1 and left[0].reason == "left the company"
    assert len(ended) == 1 and ended[0].pairing_id == pairing
    assert ended[0].reason == "the learner left the company"
    rematch = [e for e in events if isinstance(e, MatchProposed)][-1]
    assert (rematch.learner_person_id, rematch.mentor_person_id) == ("E-3", "E-2")


async def _chain_and_junior(scim: HttpxSCIMClient) -> None:
    """E-2 reports to E-1; E-3 reports to nobody yet."""
    await scim.create(person("E-1", "boss@example.com"))
    await scim.create(person("E-2", "mid@example.com", manager=Manager(value="E-1")))
    await scim.create(person("E-3", "junior@example.com"))


async def _report_to(scim: HttpxSCIMClient, who: str, manager: str) -> None:
    path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
    move = {"Operations": [{"op": "replace", "path": path, "value": {"value": manager}}]}
    await scim.modify(ScimUser, who, move, check_request_payload=False)


async def test_a_manager_change_ends_a_pairing_inside_one_management_chain(
    scim: HttpxSCIMClient, matching: Service
) -> None:
    await _chain_and_junior(scim)
    _, pairing = await _pairing(matching, learner="E-1", mentor="E-3", accept=False)

    # The junior mentor now reports to E-2, who reports to the learner E-1.
    await _report_to(scim, "E-3", "E-2")

    declined = [e.event for e in await outbox(matching.sessions)]
    withdrawn = [e for e in declined if isinstance(e, MatchDeclined)]
    assert [e.pairing_id for e in withdrawn] == [pairing]
    assert withdrawn[0].reason == "the learner is now in the mentor's management chain"


async def test_a_person_who_left_cannot_enrol_until_rehired(
    scim: HttpxSCIMClient, http: httpx.AsyncClient, tokens: TokenIssuer, matching: Service
) -> None:
    await scim.create(person("E-1", "lea@example.com"))
    program, _ = await _pairing(matching, learner="E-1", mentor="E-2")
    leave = {"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    await scim.modify(ScimUser, "E-1", leave, check_request_payload=False)

    enrolment = {"role": "learner", "display_name": "Lea", "email": "lea@example.com"}
    url = f"http://matching/programs/{program}/enrolments"
    as_lea = tokens.headers("E-1", "participant")
    refused = await http.post(url, json=enrolment | {"skills": ["ai"]}, headers=as_lea)
    assert refused.status_code == 409 and "not an active employee" in refused.json()["detail"]

    rehire = {"Operations": [{"op": "Replace", "path": "active", "value": "True"}]}
    await scim.modify(ScimUser, "E-1", rehire, check_request_payload=False)
    again = await http.post(url, json=enrolment | {"skills": ["ai"]}, headers=as_lea)
    assert again.status_code == 201, again.text


async def test_errors_are_rfc_7644_error_responses(
    scim: HttpxSCIMClient, http: httpx.AsyncClient, tokens: TokenIssuer
) -> None:
    await scim.create(person("E-1", "lea@example.com"))

    async def error(method: str, url: str, status: int, **kwargs: Any) -> dict[str, Any]:
        response = await http.request(method, url, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/scim+json")
        body: dict[str, Any] = response.json()
        assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == str(status)
        return body

    no_token = {"Authorization": ""}
    assert "bearer" in (await error("GET", "/Users", 401, headers=no_token))["detail"]
    participant = tokens.headers("E-1", "participant")
    assert "integration" in (await error("GET", "/Users", 403, headers=participant))["detail"]
    await error("GET", "/Users/E-404", 404)
    # The same userName in another case is the same userName.
    body = await error("POST", "/Users", 409, json=_scim_json(person("E-2", "LEA@example.com")))
    assert body["scimType"] == "uniqueness" and "lea@example.com" in body["detail"].lower()
    twice = await error("POST", "/Users", 409, json=_scim_json(person("E-1", "x@example.com")))
    assert twice["scimType"] == "uniqueness"
    bad_filter = await error("GET", "/Users", 400, params={"filter": "userName eq"})
    assert bad_filter["scimType"] == "invalidFilter"
    unknown = await error("GET", "/Users", 400, params={"filter": 'nickName eq "x"'})
    assert unknown["scimType"] == "invalidFilter" and "not supported" in unknown["detail"]
    syntax = await error("POST", "/Users", 400, content=b"{not json")
    assert syntax["scimType"] == "invalidSyntax"
    deep = await error("PUT", "/Users/E-1", 400, content=b"[" * 50_000 + b"]" * 50_000)
    assert deep["scimType"] == "invalidSyntax" and "nested too deeply" in deep["detail"]
    nameless = {"schemas": [str(User.__schema__)], "userName": "who@example.com"}
    assert (await error("POST", "/Users", 400, json=nameless))["scimType"] == "invalidValue"
    bad_email = _scim_json(person("E-3", "z@example.com")) | {"emails": [{"value": "nope"}]}
    assert (await error("POST", "/Users", 400, json=bad_email))["scimType"] == "invalidValue"
    renumber = {"Operations": [{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:"
                               "enterprise:2.0:User:employeeNumber", "value": "E-9"}]}  # fmt: skip
    assert (await error("PATCH", "/Users/E-1", 400, json=renumber))["scimType"] == "mutability"


def _scim_json(user: ScimUser) -> dict[str, Any]:
    body: dict[str, Any] = user.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    return body


async def test_an_accepted_pairing_inside_one_chain_ends_and_both_are_matched_again(
    scim: HttpxSCIMClient, matching: Service
) -> None:
    await _chain_and_junior(scim)
    await scim.create(person("E-4", "other@example.com"))
    program, pairing = await _pairing(matching, learner="E-1", mentor="E-3")
    await _enrol(matching, program, "E-4", "mentor")  # free, outside the chain

    await _report_to(scim, "E-3", "E-2")

    events = [e.event for e in await outbox(matching.sessions)]
    ended = [e for e in events if isinstance(e, PairingEnded)]
    assert [e.pairing_id for e in ended] == [pairing]
    assert ended[0].reason == "the learner is now in the mentor's management chain"
    after = events[events.index(ended[0]) :]
    rematch = [e for e in after if isinstance(e, MatchProposed)]
    # The learner finds the other mentor; their old mentor is never proposed to them again.
    assert [(e.learner_person_id, e.mentor_person_id) for e in rematch] == [("E-1", "E-4")]
