"""Errors a use case raises for a caller's mistake; HTTP maps them to a 4xx with the reason."""


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
