"""Fuzzing every HTTP API from its OpenAPI with schemathesis: no request may get a 5xx, and
every answer the OpenAPI documents must fit the schema it declares. Every operation that takes a
body is also sent one that schemathesis does not draw: JSON nested past Python's recursion limit.

The apps run in-process without their lifespan, so no Kafka: events just stay in the outbox.
"""

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

import crossgen_matching
import crossgen_notifications
import crossgen_sessions
from crossgen_local.databases import migrated_database
from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching.app import create_app as matching_app
from crossgen_matching.settings import MatchingSettings
from crossgen_notifications.app import create_app as notifications_app
from crossgen_notifications.settings import NotificationsSettings
from crossgen_sessions.app import create_app as sessions_app
from crossgen_sessions.settings import SessionsSettings

APPS: dict[str, tuple[Callable[[Any], FastAPI], type, Path]] = {
    "matching": (matching_app, MatchingSettings, Path(crossgen_matching.__file__).parent),
    "sessions": (sessions_app, SessionsSettings, Path(crossgen_sessions.__file__).parent),
    "notifications": (
        notifications_app,
        NotificationsSettings,
        Path(crossgen_notifications.__file__).parent,
    ),
}
# CROSSGEN_FUZZ_DEPTH=10 draws ten times the examples: a deeper run by hand (README).
FUZZ = settings(
    max_examples=15 * int(os.environ.get("CROSSGEN_FUZZ_DEPTH", "1")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

CHECKS = [not_a_server_error, response_schema_conformance]


@asynccontextmanager
async def no_kafka(_: FastAPI) -> AsyncIterator[None]:
    yield


def app_of(name: str, postgres: LocalPostgres, tokens: TokenIssuer) -> FastAPI:
    create_app, settings_type, package = APPS[name]
    app = create_app(
        settings_type(
            database_url=migrated_database(postgres, package / "migrations"),
            jwt_issuer=tokens.issuer,
            jwt_audience=tokens.audience,
            jwt_public_key=tokens.public_key_pem,
        )
    )
    app.router.lifespan_context = no_kafka
    return app


@pytest.mark.parametrize("name", sorted(APPS))
def test_an_api_answers_bad_input_without_a_server_error(
    name: str, postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app_of(name, postgres, tokens))
    callers = [
        tokens.headers("hr", "admin", programs=[str(uuid4())]),
        tokens.headers("E-100", "participant"),
    ]
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.path == "/health/ready":
            continue  # 503 is its answer while Kafka is away, as here

        @FUZZ
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            for headers in callers:
                case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except BaseExceptionGroup as exc:  # schemathesis's FailureGroup
            failures[operation.label] = str(exc)
    assert not failures, "\n\n".join(f"{op}: {why}" for op, why in failures.items())


# json raises RecursionError for it, which is no ValueError: a body read by hand (SCIM's) got a 500.
NESTED_TOO_DEEPLY = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize("name", sorted(APPS))
def test_a_body_nested_too_deeply_is_bad_input(
    name: str, postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    app = app_of(name, postgres, tokens)
    callers = [
        tokens.headers("hr", "admin", programs=[str(uuid4())]),
        tokens.headers("E-100", "participant"),
        tokens.headers("idp", "integration"),
    ]
    # The app's database in one event loop.
    answers = asyncio.run(_answers(app, callers, lambda: NESTED_TOO_DEEPLY))
    failing = {path: codes for path, codes in answers.items() if max(codes) >= 500}
    assert not failing, failing


@pytest.mark.parametrize("name", sorted(APPS))
def test_a_body_over_the_limit_is_refused_before_it_is_read(
    name: str, postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    """FastAPI reads and parses a body before it checks the caller's token: unlimited, anyone
    who reaches the port could make a service hold gigabytes (a 10 MB list of numbers took 430
    MB). Refused by its declared length, or once that much has come (a chunked body). Operations
    that declare no body do not read one (SCIM's reads it after the token)."""
    app = app_of(name, postgres, tokens)
    too_long = b"[" + b"1," * (1024 * 1024) + b"1]"

    async def chunked() -> AsyncIterator[bytes]:
        yield too_long

    for body in (lambda: too_long, chunked):
        answers = asyncio.run(_answers(app, [{}], body, declared=True))  # no token
        assert {code for codes in answers.values() for code in codes} == {413}, answers


async def _answers(
    app: FastAPI, callers: list[dict[str, str]], body: Callable[[], Any], declared: bool = False
) -> dict[str, set[int]]:
    """The status codes each POST, PUT and PATCH operation (only those whose OpenAPI declares a
    body, if ``declared``) answered ``body()`` with."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    paths = [
        (operation.method.upper(), re.sub(r"\{[^}]+\}", str(uuid4()), operation.path))
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.method.upper() in {"POST", "PUT", "PATCH"}
        and (len(operation.body) or not declared)
    ]
    assert paths, "no operation takes a body"
    answers: dict[str, set[int]] = {}
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method, path in paths:
            for headers in callers:
                response = await client.request(
                    method,
                    path,
                    content=body(),
                    headers=headers | {"Content-Type": "application/json"},
                )
                answers.setdefault(f"{method} {path}", set()).add(response.status_code)
    return answers
