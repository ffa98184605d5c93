"""Errors a use case raises for a caller's mistake; HTTP maps them to a 4xx with the reason.

The bodies are declared here too, so that every API's OpenAPI says what its 4xx answers hold.
"""

from pydantic import BaseModel


class RequestError(Exception):
    status_code = 400


class NotFound(RequestError):
    status_code = 404


class Forbidden(RequestError):
    status_code = 403


class Conflict(RequestError):
    status_code = 409


class Unprocessable(RequestError):
    """Well-formed, but the rules refuse it (a session in the past, say)."""

    status_code = 422


class Refusal(BaseModel):
    """The body of a refused request (a RequestError, a failed sign-in, data the database
    refused): the reason, as one sentence."""

    detail: str


class InputError(BaseModel):
    """One thing wrong with a request's shape, as FastAPI reports it."""

    loc: list[str | int]
    msg: str
    type: str


class InputErrors(BaseModel):
    """FastAPI's body for a request that does not fit the operation's parameters or body."""

    detail: list[InputError]
