"""SCIM over HTTP: who may call, ``application/scim+json``, and RFC 7644 §3.12 error bodies.

The routes use ``ScimRoute``, so authentication (401/403), a directory conflict (409) and bad
input (400) all answer with ``schemas: [...:Error]``, ``status`` as a string, ``scimType`` and
``detail`` — what IdPs parse — instead of the service's plain ``{"detail": ...}``.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from scim2_models import Error, SCIMException, UniquenessException

from crossgen_matching.directory.scim.resources import dump
from crossgen_shared.auth import require
from crossgen_shared.errors import Conflict, RequestError

MEDIA_TYPE = "application/scim+json"

# A bearer token of an integration (an IdP, an HRIS connector): its subject names it.
integration = require("integration")


class ScimResponse(JSONResponse):
    media_type = MEDIA_TYPE


def respond(resource: Any, status_code: int = 200, **headers: str) -> ScimResponse:
    return ScimResponse(dump(resource), status_code=status_code, headers=headers)


def error_response(error: Error, headers: dict[str, str] | None = None) -> ScimResponse:
    return ScimResponse(error.model_dump(), status_code=error.status or 400, headers=headers)


def _as_error(exc: Exception) -> tuple[Error, dict[str, str] | None]:
    if isinstance(exc, SCIMException):
        return exc.to_error(), None
    if isinstance(exc, HTTPException):
        return Error(status=exc.status_code, detail=str(exc.detail)), dict(exc.headers or {})
    if isinstance(exc, Conflict):
        return UniquenessException(detail=str(exc)).to_error(), None
    if isinstance(exc, RequestError):
        return Error(status=exc.status_code, detail=str(exc)), None
    assert isinstance(exc, RequestValidationError)
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return Error(status=400, scim_type="invalidValue", detail=detail), None


class ScimRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except (SCIMException, HTTPException, RequestError, RequestValidationError) as exc:
                return error_response(*_as_error(exc))

        return scim_handler
