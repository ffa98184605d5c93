"""What ``serve`` waits for before it serves: a Kafka broker that answers, and a database whose
schema the service's migrations have reached.

Under Kubernetes or compose the broker may come up after the services, and a service that exited
would be started again only after a back-off that grows to minutes. On a database without the
service's latest migration, a record whose transaction needs a missing table or column would fail
until it was parked in the dead-letter topic. So it also waits while the database cannot be used
(down, or refusing the service's credentials or database name), to check the schema once it can:
a database restored from an old backup comes back behind.

While it waits, a stand-in answers on the service's HTTP port (``Standin``), so that the pod is
not restarted meanwhile.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from crossgen_shared import migrations
from crossgen_shared.db import unavailable
from crossgen_shared.settings import ServiceSettings
from crossgen_shared.unreachable import database_unusable, kafka_not_answering

log = logging.getLogger(__name__)

LONGEST_PAUSE = 10.0  # seconds between two tries at most: what came up is found that soon


class SchemaBehind(Exception):
    """The database lacks migrations this release of the service needs."""


class Standin:
    """Answers on the service's HTTP port from the first pause of the wait: alive, so that the
    pod's startup probe leaves it be (a pod it restarted would wait again, after a back-off
    that grows to minutes); not ready, so that it gets no traffic; any other request 503, with
    what the service waits for. Stopped before the service itself serves there."""

    def __init__(self, settings: ServiceSettings) -> None:
        config = uvicorn.Config(
            self.answer,
            host=settings.http_host,
            port=settings.http_port,
            interface="asgi3",
            lifespan="off",
            # As the service's own server has them: uvicorn sets its loggers for the process,
            # and access_log=False would leave the service's access lines unlogged.
            log_config=None,
        )
        self._server = uvicorn.Server(config)
        self._serving: asyncio.Task[None] | None = None
        self.waiting_for = ""

    def say(self, line: str) -> None:
        """Log a pause's line, and answer with it from now on."""
        log.warning(line)
        self.waiting_for = line
        if self._serving is None:
            config = self._server.config
            log.info("meanwhile %s:%d answers: alive, not ready", config.host, config.port)
            self._serving = asyncio.create_task(self._server.serve(), name="stand-in")

    async def stop(self) -> None:
        if self._serving is not None:
            self._server.should_exit = True
            await self._serving

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/health/live":
            response = JSONResponse({"status": "alive"})
        else:
            response = JSONResponse(
                {"status": "starting", "detail": self.waiting_for},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        await response(scope, receive, send)


async def until_ready(settings: ServiceSettings, script_location: Path) -> None:
    standin = Standin(settings)
    try:
        await until_kafka_answers(settings, standin)
        await until_schema_current(settings, script_location, standin)
    finally:
        await standin.stop()


async def until_kafka_answers(settings: ServiceSettings, standin: Standin) -> None:
    async def answers() -> None:
        admin = AIOKafkaAdminClient(**settings.kafka_client_options())
        try:
            await admin.start()
        finally:
            await admin.close()

    def pausing(attempt: RetryCallState) -> str:
        return kafka_not_answering(settings, f"; trying again in {attempt.upcoming_sleep:g} s")

    def passing(exc: BaseException) -> bool:
        return isinstance(exc, KafkaConnectionError)

    if await _until(answers, passing, pausing, standin):
        log.info("Kafka at %s answers", settings.kafka_bootstrap_servers)


async def until_schema_current(
    settings: ServiceSettings, script_location: Path, standin: Standin
) -> None:
    """Wait while the database cannot be used, and while its schema is behind the service's
    latest migration. A schema ahead of it, which a newer release migrated, is used: migrations
    keep the last release working."""
    engine = create_async_engine(settings.database_url, poolclass=pool.NullPool)

    async def current() -> None:
        async with engine.connect() as connection:
            missing = await connection.run_sync(
                migrations.missing_revisions, script_location, settings.database_url
            )
        if missing:
            raise SchemaBehind(f"the database lacks migration(s) {', '.join(missing)}")

    def passing(exc: BaseException) -> bool:
        return isinstance(exc, SchemaBehind) or unavailable(exc)

    def pausing(attempt: RetryCallState) -> str:
        assert attempt.outcome is not None
        failed = attempt.outcome.exception()
        assert failed is not None
        then = f"Looking again in {attempt.upcoming_sleep:g} s"
        if isinstance(failed, SchemaBehind):
            return f"{failed}; run this service's `migrate` command. {then}"
        return f"{database_unusable(settings, failed)} {then}"

    try:
        if await _until(current, passing, pausing, standin):
            log.info("the database's schema is current")
    finally:
        await engine.dispose()


async def _until(
    attempt_once: Callable[[], Awaitable[None]],
    passing: Callable[[BaseException], bool],
    pausing: Callable[[RetryCallState], str],
    standin: Standin,
) -> bool:
    """Try until no ``passing`` error is raised, saying ``pausing`` before each pause; whether
    there was one."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(passing),
        wait=wait_exponential(multiplier=0.5, max=LONGEST_PAUSE),
        before_sleep=lambda attempt: standin.say(pausing(attempt)),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await attempt_once()
    return attempt.retry_state.attempt_number > 1
