"""CloudEvents 1.0 envelope in Kafka binary mode: attributes in ``ce_*`` headers, data as value."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from crossgen_shared.events import BY_TYPE, Event, schema_uri

_FORMAT = JSONFormat()
CONTENT_TYPE = "application/json"
MAX_ID_LENGTH = 64  # what the inbox (and a notification's source event) keeps of an event id


@dataclass(frozen=True)
class KafkaRecord:
    """What goes on the wire: key, headers and value, independent of the Kafka client."""

    key: bytes
    headers: dict[str, bytes]
    value: bytes


@dataclass(frozen=True)
class Envelope:
    """A decoded event with its CloudEvents attributes."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    event: Event


class InvalidEvent(ValueError):
    """A record that is not a valid Crossgen event; the reason goes to the dead-letter topic."""


def encode(event: Event, *, source: str, event_id: str | None = None) -> KafkaRecord:
    cloud_event = CloudEvent(
        attributes={
            "id": event_id or str(uuid4()),
            "source": source,
            "type": event.event_type(),
            "time": datetime.now(UTC),
            "subject": event.key(),
            "datacontenttype": CONTENT_TYPE,
            "dataschema": schema_uri(type(event)),
        },
        data=event.model_dump_json(),  # JSON text, which the SDK writes out as it is
    )
    message = ce_kafka.to_binary(cloud_event, _FORMAT, key_mapper=lambda _: event.key())
    key = message.key.encode() if isinstance(message.key, str) else message.key or b""
    return KafkaRecord(key=key, headers=message.headers, value=message.value)


def decode(headers: dict[str, bytes], key: bytes | None, value: bytes | None) -> Envelope:
    """Parse and validate a record; raise InvalidEvent saying what is wrong with it."""
    missing = [h for h in ("ce_id", "ce_type", "ce_source", "ce_specversion") if h not in headers]
    if missing:
        raise InvalidEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    try:
        cloud_event = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=headers, key=key, value=value or b""), _FORMAT
        )
    except Exception as exc:  # the SDK raises several unrelated types for undecodable input
        raise InvalidEvent(f"not a CloudEvent in Kafka binary mode: {exc}") from exc
    if len(cloud_event.get_id()) > MAX_ID_LENGTH:
        raise InvalidEvent(f"event id longer than {MAX_ID_LENGTH} characters")
    event_type = cloud_event.get_type()
    model = BY_TYPE.get(event_type)
    if model is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    data = cloud_event.get_data()
    if not isinstance(data, dict):
        raise InvalidEvent(f"{event_type}: data is not a JSON object")
    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(f"{event_type}: {_describe(exc)}") from exc
    return Envelope(
        id=cloud_event.get_id(),
        source=cloud_event.get_source(),
        type=event_type,
        time=cloud_event.get_time() or datetime.now(UTC),
        subject=cloud_event.get_subject() or event.key(),
        event=event,
    )


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    )
