"""Logs and traces: JSON lines on stdout, and one W3C trace from an HTTP request to every event.

FastAPI makes each request's server span. The trace context then travels with the events:
``UnitOfWork.emit`` stores the active span's ``traceparent`` / ``tracestate`` in the outbox row's
headers, the relay publishes them as Kafka headers, and the consumer's span for the record
(``continuing``) takes them as its parent, so what a handler emits carries the same trace id.
FastStream's telemetry middleware is left out: its producer span alone cost 0.1 ms of CPU per
event published, more than twice the publishing, and its batch spans add nothing to that chain.
Spans are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``..._TRACES_ENDPOINT``) is set; the SDK reads the other ``OTEL_*`` variables itself. Without
one, a record's span is only the ids it passes on (``_unrecorded_span``).
"""

import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from crossgen_shared.db import unavailable
from crossgen_shared.settings import ServiceSettings

_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = frozenset(_PROPAGATOR.fields)  # all ``continuing`` reads of a record's headers
_TRACER = trace.get_tracer(__name__)
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_UNTRACED_PATHS = ("/health/", "/metrics")  # probes and scrapes would drown the real requests


def configure(service_name: str, settings: ServiceSettings) -> None:
    """Called once by the CLI, before the service starts."""
    configure_logging(service_name, settings)
    configure_tracing(service_name)


def configure_logging(service_name: str, settings: ServiceSettings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_add_trace_ids)
    handler.addFilter(_commit_refused_after_rebalance)
    handler.addFilter(_batch_back_for_passing_trouble)
    handler.addFilter(_routine_rebalance)
    handler.addFilter(_broker_away_for_the_moment)
    handler.addFilter(KafkaClientRepeats())
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
                static_fields={"service": f"crossgen-{service_name}"},
                # uvicorn repeats each message with terminal colour codes for its own formatter.
                reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # FastStream gives its own logger a level and a coloured stderr handler; uvicorn
    # (log_config=None) already propagates. The root's handler and level, for every line.
    faststream = logging.getLogger("faststream")
    faststream.handlers.clear()
    faststream.setLevel(logging.NOTSET)
    faststream.propagate = True


def _add_trace_ids(record: logging.LogRecord) -> bool:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        record.trace_id = trace.format_trace_id(span.trace_id)
        record.span_id = trace.format_span_id(span.span_id)
    return True


def _commit_refused_after_rebalance(record: logging.LogRecord) -> bool:
    """FastStream logs a refused offset commit as CRITICAL, with aiokafka's advice to poll more
    often. Here it follows a pause past the group's session timeout (a frozen or starved process):
    the group has given the partitions to another member, which gets those records again, and the
    inbox makes them no-ops there. Nothing to wake anyone for: one WARNING line that says so."""
    if record.exc_info and isinstance(record.exc_info[1], CommitFailedError):
        _one_warning_line(record, _COMMIT_REFUSED)
    return True


_COMMIT_REFUSED = (
    "offsets not committed: the group gave this consumer's partitions to another member while it"
    " was not heard from; that member gets the records again, and the inbox skips those handled"
)


def away(exc: BaseException) -> str | None:
    """What ``exc`` says is away when it is trouble that passes by itself and is retried: the
    database (``db.unavailable``: down, restarted, hung) or the Kafka broker (``_broker_trouble``);
    None otherwise."""
    if unavailable(exc):
        return "the database"
    if _broker_trouble(exc):
        return "the Kafka broker"
    return None


# Passing, though the Kafka client does not count them as retriable: a request that timed out
# (the broker away, or hung), and the group's word to join it again after a pause past the session
# (the client does so by itself; ``offsets`` says what it means for the records).
_PASSING = (
    KafkaTimeoutError,
    UnknownMemberIdError,
    IllegalGenerationError,
    RebalanceInProgressError,
)


def _broker_trouble(error: object) -> bool:
    """The Kafka broker's trouble that passes by itself; not its refusals (a login, a topic not
    allowed, a record too large), which wait for a person."""
    return isinstance(error, KafkaError) and (error.retriable or isinstance(error, _PASSING))


def passing_trouble(exc: BaseException) -> bool:
    """Trouble that passes by itself and is retried (see ``away``)."""
    return away(exc) is not None


def _is_away(gone: str, exc: BaseException) -> str:
    """Says what is away, then the error: a driver's own words (a socket file not found, say) do
    not say it is the database."""
    return f"{gone} is unavailable ({briefly(exc)})"


def log_failure(log: logging.Logger, what: str, exc: Exception, then: str) -> None:
    """A background step's failure: one WARNING line when it is passing trouble, which an outage
    makes by the hundred, naming what is away; an ERROR with its traceback otherwise, for somebody
    to look at."""
    if (gone := away(exc)) is not None:
        log.warning("%s: %s; %s", what, _is_away(gone, exc), then)
    else:
        log.error("%s failed; %s", what, then, exc_info=exc)


async def wait_to_retry(log: logging.Logger, what: str, exc: Exception, failures: int) -> None:
    """After a background step's ``failures``-th failure in a row, logged as ``log_failure`` does:
    wait before the next attempt, 0.4 s, then twice as long each time, up to 2 s: an outage
    costs a failed connection a try, and work resumes soon after the trouble passes."""
    delay = min(0.2 * 2**failures, 2.0)
    log_failure(log, what, exc, f"retrying in {delay:.1f} s")
    await asyncio.sleep(delay)


def briefly(exc: BaseException) -> str:
    """The error's kind and message, without SQLAlchemy's statement and parameters. The driver's
    error, not the DB-API class SQLAlchemy wraps it in (asyncpg's ``ReadOnlySQLTransactionError``,
    not ``Error``). The kind once: the Kafka client's errors start their message with it already."""
    cause = exc
    while (inner := getattr(cause, "orig", None)) is not None:
        cause = inner
    kind, said = type(cause).__name__, str(cause)
    if said.startswith(kind):
        return said
    return f"{kind}: {said}" if said else kind


def _batch_back_for_passing_trouble(record: logging.LogRecord) -> bool:
    """FastStream logs a batch its handler failed as ERROR, with the traceback. The consumer raises
    the database's trouble on purpose, so that the batch comes again, and has said so in a WARNING
    line: that line is enough. The broker's trouble becomes one WARNING line."""
    failed = record.exc_info[1] if record.exc_info else None
    if failed is None or not record.name.startswith("faststream") or not (gone := away(failed)):
        return True
    if unavailable(failed):
        return False
    _one_warning_line(record, f"{_is_away(gone, failed)}; the records come again")
    return True


_REBALANCING = "Heartbeat failed for group %s because it is rebalancing"


def _routine_rebalance(record: logging.LogRecord) -> bool:
    """aiokafka warns when a heartbeat meets a rebalance, which any member's join or leave
    makes: another replica starting or stopping, or this one's own consumers as it starts. Kafka's
    own client says it at INFO, and so does this: shown only where INFO is."""
    if record.msg != _REBALANCING or not record.name.startswith("aiokafka"):
        return True
    record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
    return logging.getLogger(record.name).isEnabledFor(logging.INFO)


# aiokafka's ERROR lines that name no error, said when it cannot reach any broker at the moment.
_BROKER_AWAY_LINES = {
    "Unable to update metadata from %s",
    "Heartbeat session expired - marking coordinator dead",
}


def _broker_away_for_the_moment(record: logging.LogRecord) -> bool:
    """aiokafka logs an ERROR for each connection, fetch and heartbeat that fails while a broker
    is away: every restart of a broker would page whoever is woken by errors, where the
    database's outage is a WARNING. The client retries these itself, so they are WARNINGs too
    (``_retried_by_the_client``). What needs a person (a refused login, a certificate, a topic
    not allowed) stays an ERROR."""
    if record.levelno != logging.ERROR or not record.name.startswith("aiokafka"):
        return True
    args = record.args if isinstance(record.args, tuple) else ()
    if record.msg in _BROKER_AWAY_LINES or any(_retried_by_the_client(arg) for arg in args):
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
    return True


def _retried_by_the_client(error: object) -> bool:
    """An error aiokafka logs and retries: the broker's passing trouble, or a socket's (which in
    its lines is always the broker's connection)."""
    if isinstance(error, OSError):
        return not isinstance(error, ssl.SSLError)
    return _broker_trouble(error)


def _one_warning_line(record: logging.LogRecord, message: str) -> None:
    """Rewrite ``record`` as a WARNING saying ``message``, without the traceback."""
    record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
    record.msg, record.args = message, ()
    record.exc_info = record.exc_text = None


class KafkaClientRepeats(logging.Filter):
    """aiokafka logs every failed attempt while the broker is away: each consumer's and the
    producer's reconnects, metadata requests, fetches, and coordinator lookups, a hundred lines a
    second in all (thousands over a 30 s restart). A line from the same place in its code is shown
    once, then at most once every ``every`` seconds, with the count of those left out since."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._shown: dict[tuple[str, int], tuple[float, int]] = {}  # where: when, left out

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("aiokafka"):
            return True
        where = (record.pathname, record.lineno)
        shown, left_out = self._shown.get(where, (float("-inf"), 0))
        if record.created - shown < self.every:
            self._shown[where] = (shown, left_out + 1)
            return False
        self._shown[where] = (record.created, 0)
        if left_out:
            since = f"{record.created - shown:.0f} s"
            record.msg = f"{record.getMessage()} (and {left_out} like it in the {since} before)"
            record.args = ()
        return True


def configure_tracing(service_name: str) -> None:
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # OpenTelemetry allows one global provider per process
    resource = Resource.create({"service.name": f"crossgen-{service_name}"})
    # Without an exporter HTTP spans are still made, so ids reach logs and Kafka headers.
    trace.set_tracer_provider(TracerProvider(resource=resource))
    if any(os.environ.get(name) for name in _OTLP_ENDPOINTS):
        # Imported only when used: it brings protobuf and requests along.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        keep_spans(BatchSpanProcessor(OTLPSpanExporter()))


_spans_kept = False  # until a processor keeps them, a record's span is not made (``continuing``)


def keep_spans(processor: SpanProcessor) -> None:
    """Hand every finished span to ``processor`` from now on."""
    global _spans_kept
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "configure_tracing first"
    provider.add_span_processor(processor)
    _spans_kept = True


def trace_headers() -> dict[str, str]:
    """The active span's W3C trace context, as headers for an event about to be written."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    return headers


@contextmanager
def continuing(
    headers: Mapping[str, str], name: str, kind: trace.SpanKind = trace.SpanKind.CONSUMER
) -> Iterator[None]:
    """A span, current inside, in the trace ``headers`` carry (W3C ``traceparent``): what is
    emitted inside continues the trace of the record being handled (or the message being sent)."""
    parent = _PROPAGATOR.extract(headers)
    provider = trace.get_tracer_provider()
    if _spans_kept or not isinstance(provider, TracerProvider):
        with _TRACER.start_as_current_span(name, context=parent, kind=kind):
            yield
    else:
        with trace.use_span(_unrecorded_span(provider, parent, name, kind)):
            yield


def _unrecorded_span(
    provider: TracerProvider, parent: Context, name: str, kind: trace.SpanKind
) -> trace.Span:
    """What the SDK's span for a record would pass on, as it decides it: the trace, a span id of
    its own, the sampler's decision. Making the span itself was half of what tracing a record cost,
    and nothing would have recorded it."""
    upstream = trace.get_current_span(parent).get_span_context()
    ids = provider.id_generator
    if upstream.is_valid:
        trace_id, random_id = upstream.trace_id, upstream.trace_flags.random_trace_id
    else:
        trace_id, random_id = ids.generate_trace_id(), ids.is_trace_id_random()
    decided = provider.sampler.should_sample(parent, trace_id, name, kind)
    flags = trace.TraceFlags.SAMPLED if decided.decision.is_sampled() else trace.TraceFlags.DEFAULT
    if random_id:
        flags |= trace.TraceFlags.RANDOM_TRACE_ID
    own = trace.SpanContext(
        trace_id,
        ids.generate_span_id(),
        is_remote=False,
        trace_flags=trace.TraceFlags(flags),
        trace_state=decided.trace_state,
    )
    return trace.NonRecordingSpan(own)


def http_telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry: a server span per request, continuing the caller's
    ``traceparent``. Never its exporters: ``configure_tracing`` owns them, and two would send
    every span twice."""
    return {"exclude": _untraced, "auto_configure": False}


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return str(scope["path"]).startswith(_UNTRACED_PATHS)
