"""SCIM Users (RFC 7644 §3): create, read, list with filters, replace, patch and delete.

Every call needs a bearer token with the ``integration`` role; its subject names the integration
and is kept as the record's source (``scim:<subject>``).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import ValidationError
from scim2_models import (
    Context,
    EnterpriseUser,
    InvalidSyntaxException,
    InvalidValueException,
    ListResponse,
    MutabilityException,
    NotFoundException,
    PatchOp,
    ResponseParameters,
    SearchRequest,
    UniquenessException,
)
from sqlalchemy import ColumnElement, and_, func, select

from crossgen_matching.directory import employees, payload
from crossgen_matching.directory.models import Employee
from crossgen_matching.directory.record import EmployeeRecord
from crossgen_matching.directory.scim import filters, resources
from crossgen_matching.directory.scim.discovery import MAX_PAGE_SIZE
from crossgen_matching.directory.scim.protocol import ScimResponse, ScimRoute, integration, respond
from crossgen_matching.directory.scim.resources import TOLERANT, ScimUser
from crossgen_shared.auth import Principal
from crossgen_shared.service import unit_of_work
from crossgen_shared.unit_of_work import UnitOfWork

PAGE_SIZE = 100

router = APIRouter(route_class=ScimRoute)


def _users_url(request: Request) -> str:
    return str(request.url_for("list_users"))


async def _body(request: Request) -> Any:
    try:
        return payload.parse(await request.body())
    except ValueError as exc:
        raise InvalidSyntaxException(detail=f"the body is not JSON: {exc}") from exc


def _source(who: Principal) -> str:
    return f"scim:{who.subject}"


@router.get("/Users", name="list_users")
async def list_users(
    request: Request,
    _: Principal = Depends(integration),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    try:
        search = SearchRequest[ScimUser].model_validate(
            dict(request.query_params), scim_policy=TOLERANT
        )
    except ValidationError as exc:
        raise resources.first_error(exc) from exc
    condition: ColumnElement[bool] = Employee.removed_at.is_(None)
    if search.filter is not None:
        condition = and_(condition, filters.where(search.filter))
    start = search.start_index or 1
    count = min(PAGE_SIZE if search.count is None else search.count, MAX_PAGE_SIZE)
    async with uow:
        total = await uow.session.scalar(select(func.count()).where(condition)) or 0
        found = await uow.session.scalars(
            select(Employee)
            .where(condition)
            .order_by(Employee.employee_number)
            .offset(start - 1)
            .limit(count)
        )
        users = [resources.to_user(e, _users_url(request)) for e in found]
    page = ListResponse[ScimUser](
        total_results=total, start_index=start, items_per_page=len(users), resources=users
    )
    return ScimResponse(
        page.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search)
    )


@router.post("/Users")
async def create_user(
    request: Request,
    who: Principal = Depends(integration),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    user = resources.parse_user(await _body(request))
    number = resources.employee_number_of(user)
    if not number:
        raise InvalidValueException(
            detail="the employee number is required: enterprise employeeNumber or externalId"
        )
    if not user.user_name:
        raise InvalidValueException(detail="userName is required")
    async with uow:
        existing = await uow.session.get(Employee, number)
        if existing is not None and existing.removed_at is None:
            raise UniquenessException(detail=f"employee {number} already exists")
        change = await employees.record(uow, _record(number, who, resources.person_fields(user)))
        await uow.commit()
    assert change.employee is not None
    created = resources.to_user(change.employee, _users_url(request))
    return respond(
        created, status.HTTP_201_CREATED, Location=str(created.meta and created.meta.location)
    )


@router.get("/Users/{employee_number}")
async def get_user(
    employee_number: str,
    request: Request,
    _: Principal = Depends(integration),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    try:
        wanted = ResponseParameters[ScimUser].model_validate(
            dict(request.query_params), scim_policy=TOLERANT
        )
    except ValidationError as exc:
        raise resources.first_error(exc) from exc
    async with uow:
        employee = await _existing(uow, employee_number, lock=False)
        user = resources.to_user(employee, _users_url(request))
    return ScimResponse(resources.dump(user, response_parameters=wanted))


@router.put("/Users/{employee_number}")
async def replace_user(
    employee_number: str,
    request: Request,
    who: Principal = Depends(integration),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    replacement = resources.parse_user(await _body(request))
    return await _update(employee_number, request, who, uow, lambda _: replacement)


@router.patch("/Users/{employee_number}")
async def patch_user(
    employee_number: str,
    request: Request,
    who: Principal = Depends(integration),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    try:
        patch = PatchOp[ScimUser].model_validate(
            _entra_manager(await _body(request)),
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=TOLERANT,
        )
    except ValidationError as exc:
        raise resources.first_error(exc) from exc

    def patched(current: ScimUser) -> ScimUser:
        patch.patch(current, scim_policy=TOLERANT)
        return current

    return await _update(employee_number, request, who, uow, patched)


@router.delete("/Users/{employee_number}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    employee_number: str,
    who: Principal = Depends(integration),
    uow: UnitOfWork = Depends(unit_of_work),
) -> Response:
    async with uow:
        await _existing(uow, employee_number)
        await employees.record(
            uow,
            EmployeeRecord(
                employee_number=employee_number,
                source=_source(who),
                source_timestamp=datetime.now(UTC),
                removed=True,
            ),
        )
        await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _existing(uow: UnitOfWork, employee_number: str, *, lock: bool = True) -> Employee:
    """The employee a URL names, locked for the change the request makes (404 if deleted)."""
    employee = await uow.session.get(Employee, employee_number, with_for_update=lock)
    if employee is None or employee.removed_at is not None:
        raise NotFoundException(detail=f"no user {employee_number}")
    return employee


async def _update(
    employee_number: str,
    request: Request,
    who: Principal,
    uow: UnitOfWork,
    change_of: Callable[[ScimUser], ScimUser],
) -> Response:
    """Replace or patch: record the SCIM-visible fields that differ from the current view."""
    async with uow:
        current = resources.to_user(await _existing(uow, employee_number), _users_url(request))
        before = resources.person_fields(current)
        after_user = change_of(current.model_copy(deep=True))
        extension = resources.extension_of(after_user, EnterpriseUser)
        if extension and extension.employee_number not in (None, employee_number):
            raise MutabilityException(detail="employeeNumber is the resource id and cannot change")
        after = resources.person_fields(after_user)
        # A User without Crossgen's extension says nothing of its fields: either side may lack them.
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        change = await employees.record(uow, _record(employee_number, who, changed))
        await uow.commit()
    assert change.employee is not None
    return respond(resources.to_user(change.employee, _users_url(request)))


def _record(employee_number: str, who: Principal, fields: dict[str, Any]) -> EmployeeRecord:
    try:
        return EmployeeRecord(
            employee_number=employee_number,
            source=_source(who),
            source_timestamp=datetime.now(UTC),
            **fields,
        )
    except ValidationError as exc:
        raise resources.first_error(exc) from exc


def _entra_manager(body: Any) -> Any:
    """Entra ID sets the manager with a bare id as the value; RFC 7643 wants ``{"value": id}``."""
    for operation in body.get("Operations") or [] if isinstance(body, dict) else []:
        path = str(operation.get("path") or "") if isinstance(operation, dict) else ""
        if path.lower().endswith("manager") and isinstance(operation.get("value"), str):
            operation["value"] = {"value": operation["value"]}
    return body
