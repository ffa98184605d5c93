"""JSON logs with trace ids, and one trace from an HTTP request through the outbox and Kafka to
the events a consumer emits, over a real PostgreSQL and FastStream's test broker."""

import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    SaslAuthenticationFailed,
    UnknownMemberIdError,
)
from fastapi import APIRouter, Depends
from faststream.kafka import TestKafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_shared import observability, topics
from crossgen_shared.db import OutboxRecord
from crossgen_shared.envelope import Envelope, encode
from crossgen_shared.events import ParticipantJoined, ParticipantLeft
from crossgen_shared.service import Service, unit_of_work
from crossgen_shared.settings import ServiceSettings
from crossgen_shared.testing import as_sqlalchemy_raises_it
from crossgen_shared.unit_of_work import UnitOfWork

from .messaging import fresh_settings, messaging_service, offline_settings

FETCHER, COORDINATOR = "aiokafka.consumer.fetcher", "aiokafka.consumer.group_coordinator"
REFUSED = ConnectionRefusedError(111, "Connection refused")

FOREIGN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
FOREIGN_PARENT = f"00-{FOREIGN_TRACE}-00f067aa0ba902b7-01"


def joined() -> ParticipantJoined:
    return ParticipantJoined(
        participant_id=uuid4(),
        program_id=uuid4(),
        person_id="E-100",
        role="learner",
        display_name="Lea",
        email="lea@example.com",
        skills=("TikTok",),
        joined_at=datetime.now(UTC),
    )


async def leave(event: ParticipantJoined, _: Envelope, uow: UnitOfWork) -> None:
    """A handler that emits, as matching's do: its event must continue the consumed trace."""
    await uow.emit(
        ParticipantLeft(
            participant_id=event.participant_id,
            program_id=event.program_id,
            reason="test",
            left_at=datetime.now(UTC),
        )
    )


def trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


async def outbox_headers(service: Service) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        rows = await session.scalars(select(OutboxRecord).order_by(OutboxRecord.seq))
        return [row.headers for row in rows]


@pytest.fixture(scope="module")
def tracer() -> trace.Tracer:
    observability.configure_tracing("test")
    return trace.get_tracer(__name__)


@pytest.fixture
def settings(postgres: LocalPostgres, tokens: TokenIssuer) -> ServiceSettings:
    return fresh_settings(postgres, tokens, log_format="json")


@pytest.fixture
async def service(settings: ServiceSettings, tracer: trace.Tracer) -> AsyncIterator[Service]:
    service = await messaging_service("tracing", settings)
    service.consume(topics.PARTICIPANTS, {ParticipantJoined: leave})
    yield service
    await service.engine.dispose()


async def test_an_event_carries_the_trace_it_was_emitted_in_through_kafka_to_the_next_event(
    service: Service, tracer: trace.Tracer
) -> None:
    with tracer.start_as_current_span("request") as span:
        async with service.unit_of_work() as uow:
            await uow.emit(joined())
            await uow.commit()
    request = span.get_span_context()
    [emitted] = await outbox_headers(service)
    assert emitted["traceparent"].split("-")[1:3] == [
        trace.format_trace_id(request.trace_id),
        trace.format_span_id(request.span_id),
    ]

    # Published later and outside that span, with the row's headers, as the relay does.
    async with TestKafkaBroker(service.broker) as broker:
        await broker.publish(
            encode(joined(), source="/test").value,
            topics.PARTICIPANTS,
            key=b"k",
            headers=emitted,
        )
    caused = (await outbox_headers(service))[1]
    assert caused["ce_type"] == ParticipantLeft.event_type()
    assert trace_id(caused["traceparent"]) == trace.format_trace_id(request.trace_id)


@pytest.fixture
def finished_spans(tracer: trace.Tracer) -> Iterator[InMemorySpanExporter]:
    """The spans ended while the test runs (the provider keeps its processors: this one stops
    keeping spans afterwards)."""
    exporter = InMemorySpanExporter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(observability, "_spans_kept", observability._spans_kept)
        observability.keep_spans(SimpleSpanProcessor(exporter))
        yield exporter
    exporter.shutdown()


async def test_a_records_span_is_a_child_of_the_span_its_event_was_emitted_in(
    service: Service, tracer: trace.Tracer, finished_spans: InMemorySpanExporter
) -> None:
    """Publishing adds no span between them: the relay's publishing is not the record's story,
    and FastStream's producer span cost more than the publishing itself."""
    with tracer.start_as_current_span("request") as span:
        async with service.unit_of_work() as uow:
            await uow.emit(joined())
            await uow.commit()
    [emitted] = await outbox_headers(service)
    async with TestKafkaBroker(service.broker) as broker:
        await broker.publish(
            encode(joined(), source="/test").value, topics.PARTICIPANTS, key=b"k", headers=emitted
        )

    spans: tuple[ReadableSpan, ...] = finished_spans.get_finished_spans()
    [consumed] = [s for s in spans if s.kind == trace.SpanKind.CONSUMER]
    assert consumed.name == f"{topics.PARTICIPANTS} process"
    assert consumed.parent is not None
    assert consumed.parent.span_id == span.get_span_context().span_id
    assert not [s for s in spans if s.kind == trace.SpanKind.PRODUCER]


def test_with_an_exporter_a_send_is_a_span_of_its_kind_in_the_trace_of_its_cause(
    finished_spans: InMemorySpanExporter,
) -> None:
    """How notifications sends a message it queued earlier, in the trace of the event behind it."""
    with observability.continuing(
        {"traceparent": FOREIGN_PARENT}, "email send", trace.SpanKind.CLIENT
    ):
        pass
    [sent] = finished_spans.get_finished_spans()
    assert (sent.name, sent.kind) == ("email send", trace.SpanKind.CLIENT)
    assert (
        sent.parent is not None and trace.format_span_id(sent.parent.span_id) == "00f067aa0ba902b7"
    )
    assert trace.format_trace_id(sent.context.trace_id) == FOREIGN_TRACE


async def test_a_consumer_continues_the_trace_of_a_record_from_another_producer(
    service: Service,
) -> None:
    record = encode(joined(), source="/elsewhere")
    headers = {k: v.decode() for k, v in record.headers.items()} | {"traceparent": FOREIGN_PARENT}
    async with TestKafkaBroker(service.broker) as broker:
        await broker.publish(record.value, topics.PARTICIPANTS, key=record.key, headers=headers)

    [caused] = await outbox_headers(service)
    assert trace_id(caused["traceparent"]) == FOREIGN_TRACE
    assert caused["traceparent"] != FOREIGN_PARENT  # emitted in the consumer's own span


def test_without_an_exporter_a_records_span_is_not_made_yet_its_trace_goes_on(
    tracer: trace.Tracer,
) -> None:
    """Nothing would record the span, and making it was half of what tracing a record cost: the
    logs and the next events get what it would carry on, with a span id of the record's own."""
    with observability.continuing({"traceparent": FOREIGN_PARENT}, "t process"):
        span = trace.get_current_span()
        carried_on = observability.trace_headers()["traceparent"]
    assert not span.is_recording()
    context = span.get_span_context()
    assert carried_on == f"00-{FOREIGN_TRACE}-{trace.format_span_id(context.span_id)}-01"
    assert carried_on != FOREIGN_PARENT


def test_without_an_exporter_a_record_from_outside_any_trace_starts_one(
    tracer: trace.Tracer,
) -> None:
    started = []
    for _ in range(2):
        with observability.continuing({}, "t process"):
            started.append(trace.get_current_span().get_span_context())
    assert all(c.is_valid and c.trace_flags.sampled for c in started)
    assert started[0].trace_id != started[1].trace_id


async def test_an_http_request_continues_the_callers_trace_into_the_events_it_emits(
    service: Service,
) -> None:
    router = APIRouter()

    @router.post("/joined", status_code=204)
    async def join(uow: UnitOfWork = Depends(unit_of_work)) -> None:
        async with uow:
            await uow.emit(joined())
            await uow.commit()

    app = service.http_app([router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.post("/joined", headers={"traceparent": FOREIGN_PARENT})).is_success
        assert (await client.post("/joined")).is_success

    continued, started = await outbox_headers(service)
    assert trace_id(continued["traceparent"]) == FOREIGN_TRACE
    assert trace_id(started["traceparent"]) not in (FOREIGN_TRACE, "0" * 32)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    loggers = [logging.getLogger(), logging.getLogger("faststream")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (NodeNotReadyError("node 1 is not ready"), "NodeNotReadyError: node 1 is not ready"),
        (KafkaTimeoutError(), "KafkaTimeoutError"),
        (FileNotFoundError(2, "gone"), "FileNotFoundError: [Errno 2] gone"),
        (TimeoutError(), "TimeoutError"),
        (InterfaceError("select 1", {}, Exception("closed")), "Exception: closed"),
        # asyncpg's own kind, not the name of the class SQLAlchemy wraps it in ("Error").
        (
            as_sqlalchemy_raises_it(
                asyncpg.exceptions.ReadOnlySQLTransactionError(
                    "cannot execute SELECT FOR UPDATE in a read-only transaction"
                )
            ),
            "ReadOnlySQLTransactionError: cannot execute SELECT FOR UPDATE in a read-only"
            " transaction",
        ),
    ],
)
def test_an_error_is_told_by_its_kind_once_and_its_message(error: Exception, said: str) -> None:
    assert observability.briefly(error) == said


def test_a_commit_refused_after_a_rebalance_is_one_warning(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """FastStream says CRITICAL, with a traceback and advice that does not apply after a pause."""
    observability.configure_logging("matching", offline_settings())
    refused = CommitFailedError("the group has already rebalanced")
    logging.getLogger("faststream.kafka").log(logging.CRITICAL, repr(refused), exc_info=refused)
    [line] = capsys.readouterr().out.splitlines()
    assert " WARNING faststream.kafka offsets not committed: the group gave" in line


def test_a_batch_back_for_the_database_s_trouble_is_not_logged_again(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The consumer has said so in a WARNING line; FastStream's ERROR with the traceback goes.
    The broker's trouble is one WARNING line; any other failure is still logged whole."""
    observability.configure_logging("matching", offline_settings())
    faststream = logging.getLogger("faststream.kafka")
    troubles = (FileNotFoundError(2, "gone"), KafkaTimeoutError(), ValueError("a bug"))
    for failed in troubles:
        faststream.error(repr(failed), exc_info=failed)
    out = capsys.readouterr().out
    assert "FileNotFoundError" not in out
    assert (
        " WARNING faststream.kafka the Kafka broker is unavailable (KafkaTimeoutError);"
        " the records come again" in out
    )
    assert " ERROR faststream.kafka ValueError('a bug')\nValueError: a bug" in out


def test_a_heartbeat_that_meets_a_rebalance_is_news_not_a_warning(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every member's join or leave rebalances the group: another replica's start or stop, or a
    service's own consumers as it starts. Kafka's own client says so at INFO; aiokafka warns. Its
    other heartbeat failures stay warnings, and at the WARNING level the routine line is not
    shown."""
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    for level in ("INFO", "WARNING"):
        observability.configure_logging("matching", offline_settings(log_level=level))
        coordinator.warning("Heartbeat failed for group %s because it is rebalancing", "g")
        coordinator.warning("Heartbeat session expired - marking coordinator dead")
    lines = capsys.readouterr().out.splitlines()
    assert [line.partition(",")[2].split(" ", 1)[1] for line in lines] == [
        "INFO aiokafka.consumer.group_coordinator Heartbeat failed for group g because it is"
        " rebalancing",
        "WARNING aiokafka.consumer.group_coordinator Heartbeat session expired - marking"
        " coordinator dead",
        "WARNING aiokafka.consumer.group_coordinator Heartbeat session expired - marking"
        " coordinator dead",
    ]


def test_the_kafka_client_s_repeated_lines_are_left_out_for_a_while(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """aiokafka's line for each reconnect while the broker is away: the first, then one every
    10 s that counts those left out. Lines from elsewhere, and other loggers', all come through."""
    observability.configure_logging("matching", offline_settings())
    started = time.time()

    def log(name: str, lineno: int, second: float) -> None:
        logger = logging.getLogger(name)
        msg, args = "Unable connect to node with id %s: %s", (1, "Connection refused")
        record = logger.makeRecord(name, logging.ERROR, "conn.py", lineno, msg, args, None)
        record.created = started + second
        logger.handle(record)

    for second in range(25):  # twice a second for 25 s
        log("aiokafka", 42, second)
        log("aiokafka", 42, second + 0.5)
    log("aiokafka", 7, 25)  # another place in the client
    log("crossgen_matching", 42, 25)
    log("crossgen_matching", 42, 25)
    lines = [line.partition(" ERROR ")[2] for line in capsys.readouterr().out.splitlines()]
    refused = "Unable connect to node with id 1: Connection refused"
    assert lines == [
        f"aiokafka {refused}",
        f"aiokafka {refused} (and 19 like it in the 10 s before)",
        f"aiokafka {refused} (and 19 like it in the 10 s before)",
        f"aiokafka {refused}",
        f"crossgen_matching {refused}",
        f"crossgen_matching {refused}",
    ]


@pytest.mark.parametrize(
    ("logger", "msg", "args", "level"),
    [
        # A broker the client cannot reach for the moment: down, restarting, a connection cut.
        ("aiokafka", "Unable connect to node with id %s: %s", (1, REFUSED), "WARNING"),
        (FETCHER, "Failed fetch messages from %s: %s", (1, NodeNotReadyError("node 1")), "WARNING"),
        (
            FETCHER,
            "Failed fetch messages from %s: %s",
            (1, KafkaConnectionError("closed")),
            "WARNING",
        ),
        ("aiokafka", "Unable to update metadata from %s", ([1],), "WARNING"),
        (COORDINATOR, "Heartbeat session expired - marking coordinator dead", (), "WARNING"),
        # After a pause past the session: the client joins the group again by itself.
        (
            COORDINATOR,
            "OffsetCommit failed for group %s due to group error (%s), will rejoin",
            ("crossgen-matching", UnknownMemberIdError("crossgen-matching")),
            "WARNING",
        ),
        # What needs a person: a refused login, a certificate, a topic it may not read.
        (
            "aiokafka",
            "Unable connect to node with id %s: %s",
            (1, SaslAuthenticationFailed()),
            "ERROR",
        ),
        (
            "aiokafka",
            'Unable connect to "%s:%s": %s',
            ("k", 9093, ssl.SSLCertVerificationError()),
            "ERROR",
        ),
        ("aiokafka", "Topic %s is not authorized for this client", ("crossgen.hris.v1",), "ERROR"),
    ],
)
def test_the_kafka_client_s_errors_for_a_broker_away_for_the_moment_are_warnings(
    restore_logging: None,
    capsys: pytest.CaptureFixture[str],
    logger: str,
    msg: str,
    args: tuple[Any, ...],
    level: str,
) -> None:
    """The broker's restart is passing trouble, as the database's is: aiokafka's ERROR lines for
    it would wake whoever is paged on errors at every rolling restart of the brokers."""
    observability.configure_logging("matching", offline_settings())
    logging.getLogger(logger).error(msg, *args)
    [line] = capsys.readouterr().out.splitlines()
    assert f" {level} {logger} " in line


def test_json_logs_are_one_object_a_line_with_the_active_trace(
    tracer: trace.Tracer, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    observability.configure_logging(
        "matching", offline_settings(log_format="json", log_level="DEBUG")
    )
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("crossgen_matching.service").info("matched %d pairs", 3)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s"', "10.0.0.1", "GET", "/programs", extra={"color_message": "\x1b[1m…"}
    )
    # FastStream's own lines too, at the service's level rather than FastStream's INFO.
    logging.getLogger("faststream.kafka").debug("Received", extra={"topic": topics.PARTICIPANTS})

    first, access, kafka = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    context = span.get_span_context()
    assert first["message"] == "matched 3 pairs"
    assert first["level"] == "INFO" and first["logger"] == "crossgen_matching.service"
    assert first["service"] == "crossgen-matching" and first["time"]
    assert first["trace_id"] == trace.format_trace_id(context.trace_id)
    assert first["span_id"] == trace.format_span_id(context.span_id)
    assert access["message"] == '10.0.0.1 - "GET /programs"'
    assert "trace_id" not in access and "color_message" not in access
    assert (kafka["level"], kafka["topic"]) == ("DEBUG", topics.PARTICIPANTS)
