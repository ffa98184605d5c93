"""SCIM discovery (RFC 7644 §4): what the service supports, its resource types and schemas.

An IdP reads these to learn that Users carry the enterprise and Crossgen extensions and what
PATCH and filters can do; scim2-models derives them from the same models the endpoint validates
with.
"""

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    ListResponse,
    Meta,
    NotFoundException,
    Patch,
    ResourceType,
    Schema,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

from crossgen_matching.directory.scim.protocol import ScimRoute, integration, respond
from crossgen_matching.directory.scim.resources import TOLERANT, CrossgenUser, ScimUser
from crossgen_shared.auth import Principal

MAX_PAGE_SIZE = 500

PROVIDER = ScimProvider(
    models=[User, EnterpriseUser, CrossgenUser],
    resource_types=[ResourceType.from_resource(ScimUser)],
    config=ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_PAGE_SIZE),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="OAuth Bearer Token",
                description="A JWT with the integration role; its subject names the integration",
                primary=True,
            )
        ],
    ),
    policy=TOLERANT,
)

router = APIRouter(route_class=ScimRoute)


@router.get("/ServiceProviderConfig")
async def service_provider_config(
    request: Request, _: Principal = Depends(integration)
) -> Response:
    assert PROVIDER.config is not None
    config = PROVIDER.config.model_copy(
        update={"meta": Meta(resource_type="ServiceProviderConfig", location=str(request.url))}
    )
    return respond(config)


@router.get("/ResourceTypes")
async def resource_types(_: Principal = Depends(integration)) -> Response:
    return _list(list(PROVIDER.resource_types), ResourceType)


@router.get("/ResourceTypes/{name}")
async def resource_type(name: str, _: Principal = Depends(integration)) -> Response:
    found = next((t for t in PROVIDER.resource_types if t.id == name), None)
    if found is None:
        raise NotFoundException(detail=f"no resource type {name}")
    return respond(found)


@router.get("/Schemas")
async def schemas(_: Principal = Depends(integration)) -> Response:
    return _list(list(PROVIDER.schemas), Schema)


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, _: Principal = Depends(integration)) -> Response:
    found = next((s for s in PROVIDER.schemas if s.id == schema_id), None)
    if found is None:
        raise NotFoundException(detail=f"no schema {schema_id}")
    return respond(found)


def _list(items: list[Any], model: type[Any]) -> Response:
    page = ListResponse[model](  # type: ignore[valid-type]
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return respond(page)
