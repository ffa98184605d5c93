"""What every service is made of: one broker, one database, an outbox relay, consumers and HTTP.

A service module builds a ``Service``, registers its consumers, and asks it for the HTTP app; the
FastAPI lifespan starts and stops the Kafka side with it, so SIGTERM drains both gracefully.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import InvalidSessionTimeoutError, TopicAlreadyExistsError
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter, make_asgi_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from crossgen_shared import asyncapi, dead_letters, observability, retention, topics
from crossgen_shared.auth import TokenVerifier
from crossgen_shared.broker import Broker
from crossgen_shared.consumer import Consumer, Handler, InTurn, Progress
from crossgen_shared.db import create_engine, reason, refused_data, session_factory, unavailable
from crossgen_shared.errors import InputErrors, Refusal, RequestError
from crossgen_shared.events import Event
from crossgen_shared.group_watch import GroupWatch, records_gone
from crossgen_shared.outbox import OutboxRelay
from crossgen_shared.periodic import every
from crossgen_shared.settings import ServiceSettings
from crossgen_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

OFFSETS_AT_STOP = 5.0  # seconds a stopping service waits to commit its consumers' offsets
RECORDS_GONE = Counter(
    "crossgen_records_deleted_unread_total",
    "Records deleted (the topic's retention) before the service's group read them",
    ["consumer"],
)

# What every operation of a service's routers may answer besides success. A 422 is either a use
# case's refusal or FastAPI's list of what is wrong with the input; both keep ``detail``.
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal, "description": "No valid bearer token"},
    403: {"model": Refusal, "description": "The caller may not do this"},
    404: {"model": Refusal, "description": "Something the request names does not exist"},
    409: {"model": Refusal, "description": "It clashes with the current state"},
    422: {
        "model": Refusal | InputErrors,
        "description": "The input does not fit the operation, or the rules refuse it",
    },
}


class Service:
    def __init__(self, name: str, settings: ServiceSettings) -> None:
        self.name = name
        self.settings = settings
        self.broker = Broker(
            settings.kafka_bootstrap_servers,
            client_id=f"crossgen-{name}",
            enable_idempotence=True,
            acks="all",
            graceful_timeout=settings.shutdown_timeout,
            security=settings.kafka_security().for_broker(),
            # A plain logger, so FastStream's lines come out in the service's log format.
            logger=logging.getLogger("faststream.kafka"),
            # Its "Received" and "Processed" for every batch of every consumer, at DEBUG: at
            # INFO they were nearly all of a service's log, and said nothing the metrics do not.
            # Failures keep their own levels, partition assignments theirs (INFO).
            log_level=logging.DEBUG,
        )
        self.engine = create_engine(
            settings.database_url,
            name,
            settings.database_idle_transaction_timeout,
            pool_size=settings.database_pool_size,
            pool_timeout=settings.database_pool_timeout,
        )
        self.sessions = session_factory(self.engine)
        self.relay = OutboxRelay(
            self.sessions, self.broker, poll_interval=settings.outbox_poll_interval
        )
        self.consumers: list[Consumer] = []
        self.progress = Progress()
        self.workers: list[Callable[[], Coroutine[Any, Any, None]]] = [
            partial(
                retention.watch,
                self.engine,
                settings.outbox_retention,
                settings.inbox_retention,
                settings.retention_check_interval,
            )
        ]

    @property
    def source(self) -> str:
        return f"/crossgen/{self.name}"

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.source, on_commit=self.relay.wake)

    def consume(
        self,
        topic: str,
        handlers: Mapping[type[Event], Handler],
        in_turn: InTurn | None = None,
        *,
        batch_wait: float = 0.0,
        kind: type[Consumer] = Consumer,
    ) -> None:
        """Consume ``topic`` in the service's group, with a ``Consumer`` or a ``kind`` of it."""
        consumer = kind(
            self.name,
            topic,
            handlers,
            self.unit_of_work,
            in_turn=in_turn,
            commit_every=self.settings.offset_commit_interval,
            batch_wait=batch_wait,
            session_timeout=self.settings.consumer_session_timeout,
            progress=self.progress,
        )
        consumer.register(self.broker)
        self.consumers.append(consumer)

    def kafka_admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self.settings.kafka_client_options())

    def kafka_offsets(self) -> AIOKafkaConsumer:
        """A Kafka consumer in no group, to read partitions' offsets."""
        return AIOKafkaConsumer(
            enable_auto_commit=False,
            # The ends its consumers can read to: short of a transaction not committed yet.
            isolation_level="read_committed",
            **self.settings.kafka_client_options(),
        )

    async def prepare_topics(self) -> None:
        """Before the consumers start, with one admin client: the topics created (unless the
        chart does that), dead letters cut to fit their topic, records deleted unread told."""
        admin = self.kafka_admin()
        try:
            if self.settings.create_topics:
                await admin.start()
                await self._ensure_topics(admin)
            await self._fit_dead_letters(admin)
            await self._report_records_gone(admin)
        finally:
            await admin.close()

    async def _ensure_topics(self, admin: AIOKafkaAdminClient) -> None:
        wanted = [*topics.ALL, topics.dead_letter(self.name)]
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=self.settings.topic_partitions,
                replication_factor=self.settings.topic_replication_factor,
            )
            for name in wanted
            if name not in existing
        ]
        if new:
            # A replica may create them at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)

    async def _fit_dead_letters(self, admin: AIOKafkaAdminClient) -> None:
        """The dead-letter topic may take less than Kafka's default: a letter it refused, the
        outbox relay would try forever, holding every later event."""
        topic = topics.dead_letter(self.name)
        try:
            await admin.start()  # already, if it created the topics; optional otherwise
            room = await dead_letters.room_on(admin, topic)
        except Exception as exc:
            log.warning(
                "%s: cannot read %s's %s (%s: %s): dead letters are cut to %d bytes, to fit"
                " Kafka's default; allow DescribeConfigs on the topic if it takes less",
                self.name,
                topic,
                dead_letters.MAX_BYTES,
                type(exc).__name__,
                exc,
                dead_letters.LIMIT,
            )
            return
        if room < dead_letters.LIMIT:
            log.info("%s: dead letters are cut to %d bytes, to fit %s", self.name, room, topic)
        for consumer in self.consumers:
            consumer.letter_limit = room

    async def _report_records_gone(self, admin: AIOKafkaAdminClient) -> None:
        """Records deleted before the service read them (it was away longer than a topic keeps
        them): its consumers start where the partitions now start, which Kafka's client does
        saying no more than an INFO line, so the service says what it lost."""
        group = topics.consumer_group(self.name)
        offsets = self.kafka_offsets()
        try:
            await admin.start()
            await offsets.start()
            gone = await records_gone(admin, offsets, group, {c.topic for c in self.consumers})
        except Exception as exc:
            log.warning(
                "%s: cannot tell whether records were deleted before it read them (%s: %s)",
                self.name,
                type(exc).__name__,
                exc,
            )
            return
        finally:
            await offsets.stop()
        for partition, lost in sorted(gone.items()):
            RECORDS_GONE.labels(f"{self.name}:{partition.topic}").inc(len(lost))
            log.error(
                "%s: %s[%d]: %d records (offsets %d to %d) were deleted before %s read them: the"
                " topic keeps its records for less time than the service was away. They are"
                " lost to it; have their producer send them again if they matter",
                self.name,
                partition.topic,
                partition.partition,
                len(lost),
                lost.start,
                lost.stop - 1,
                self.name,
            )

    async def watch_group(self) -> None:
        """The background worker that restarts a consumer which lost its place in the group, or
        takes none of the records of the partitions it holds."""
        watch = GroupWatch(
            topics.consumer_group(self.name),
            self.consumers,
            self.kafka_admin,
            self.kafka_offsets,
            self.settings.consumer_stall_after,
        )
        try:
            await every(
                self.settings.consumer_watch_interval,
                "consumer group watch",
                watch.check,
                log,
                first_after_interval=True,
            )
        finally:
            await watch.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Kafka side up for the duration: topics, consumers, relay; drained on exit."""
        await self.prepare_topics()
        try:
            await self.broker.start()
        except Exception as failed:
            await self.broker.stop()  # the clients it had started
            await self.engine.dispose()
            if isinstance(failed, InvalidSessionTimeoutError):
                raise RuntimeError(self._session_timeout_refused()) from failed
            raise
        self.relay.start()
        tasks = [asyncio.create_task(worker()) for worker in [*self.workers, self.watch_group]]
        log.info("%s: consuming and publishing", self.name)
        try:
            yield
        finally:
            # Unsent outbox rows simply wait for the next start: nothing is lost.
            await self.relay.stop()
            for task in tasks:
                task.cancel()
            if tasks:
                # Bounded: a library may swallow a cancel that lands mid-I/O.
                await asyncio.wait(tasks, timeout=self.settings.shutdown_timeout)
            for consumer in self.consumers:
                consumer.offsets.closing()
            # What was handled, committed before the consumers stop. A broker that does not
            # answer is not waited for long: those records come again, and the inbox skips them.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OFFSETS_AT_STOP):
                    await asyncio.gather(
                        *(consumer.offsets.commit() for consumer in self.consumers)
                    )
            await self.broker.stop()  # waits for handlers in flight, which commit at once
            for consumer in self.consumers:
                for stalled in consumer.stopping:  # restarted, and stalled still
                    stalled.cancel()
            await self.engine.dispose()

    def _session_timeout_refused(self) -> str:
        return (
            "the Kafka broker refused the consumers' session timeout of "
            f"{self.settings.consumer_session_timeout:g} s: set "
            f"{self.settings.env_name('consumer_session_timeout')} "
            "within its group.min.session.timeout.ms and group.max.session.timeout.ms "
            "(6 and 1,800 s by default)"
        )

    async def ready(self) -> dict[str, bool]:
        checks = {"kafka": await self.broker.ping(timeout=2.0), "database": True}
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            checks["database"] = False
        return checks

    def http_app(self, routers: Iterable[APIRouter], *, version: str = "0.1.0") -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            async with self.running():
                yield

        app = FastAPI(
            title=f"Crossgen {self.name}",
            version=version,
            lifespan=lifespan,
            telemetry=observability.http_telemetry(),
            max_body_size=self.settings.http_max_body_bytes,
        )
        app.state.service = self
        app.state.token_verifier = TokenVerifier(self.settings.auth())

        @app.get("/health/live", tags=["health"])
        async def live() -> dict[str, str]:
            return {"status": "alive"}

        @app.get("/health/ready", tags=["health"])
        async def ready(response: Response) -> dict[str, Any]:
            checks = await self.ready()
            if not all(checks.values()):
                response.status_code = 503
            return {"status": "ready" if all(checks.values()) else "not ready", "checks": checks}

        @app.exception_handler(RequestError)
        async def request_error(_: Request, exc: RequestError) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

        # OSError too: a connection that cannot be made at all (the server down, its socket
        # gone) reaches us from the driver as it is, not wrapped by SQLAlchemy.
        @app.exception_handler(OSError)
        @app.exception_handler(SQLAlchemyError)
        async def database_error(_: Request, exc: Exception) -> JSONResponse:
            # Either way the unit of work has rolled back: nothing of the request was written.
            if refused_data(exc):
                return JSONResponse({"detail": f"data refused: {reason(exc)}"}, status_code=422)
            if unavailable(exc):
                return JSONResponse(
                    {"detail": "the database is unavailable for a moment; try again"},
                    status_code=503,
                    headers={"Retry-After": "1"},
                )
            raise exc

        app.mount("/metrics", make_asgi_app())
        # The event contract (docs/asyncapi), public like /openapi.json: it holds no data.
        app.include_router(asyncapi.router(self))
        for router in routers:
            app.include_router(router, responses=REFUSALS)
        return app


def service_of(request: Request) -> Service:
    """FastAPI dependency: the running service."""
    service: Service = request.app.state.service
    return service


def unit_of_work(request: Request) -> UnitOfWork:
    """FastAPI dependency: a fresh unit of work on the service's database."""
    return service_of(request).unit_of_work()
