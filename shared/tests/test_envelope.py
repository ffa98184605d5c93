import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from crossgen_shared import topics
from crossgen_shared.envelope import InvalidEvent, decode, encode
from crossgen_shared.events import BY_TYPE, EVENT_CLASSES, MatchAccepted, ParticipantJoined


def joined() -> ParticipantJoined:
    return ParticipantJoined(
        participant_id=uuid4(),
        program_id=uuid4(),
        person_id="E-1",
        role="learner",
        display_name="Lea",
        email="lea@example.com",
        skills=("tiktok",),
        joined_at=datetime.now(UTC),
    )


def test_round_trip_in_binary_mode_keyed_by_the_subject() -> None:
    event = joined()
    record = encode(event, source="/crossgen/matching")
    assert record.key == str(event.participant_id).encode()
    assert record.headers["ce_type"] == b"com.crossgen.participant-joined.v1"
    assert record.headers["ce_specversion"] == b"1.0"
    assert record.headers["content-type"] == b"application/json"
    assert record.headers["ce_dataschema"].endswith(b"participant-joined.v1.json")
    envelope = decode(record.headers, record.key, record.value)
    assert envelope.event == event
    assert envelope.subject == str(event.participant_id)
    assert envelope.source == "/crossgen/matching"


def test_data_is_compact_utf8_json_readable_with_any_kafka_tool() -> None:
    event = joined().model_copy(update={"display_name": "Zoë Łukasik"})
    value = encode(event, source="/crossgen/matching").value
    assert "Zoë Łukasik".encode() in value  # not escaped as \u00eb
    assert b'"role":"learner"' in value


def test_every_event_has_its_own_type_and_a_topic() -> None:
    assert len(BY_TYPE) == len(EVENT_CLASSES)
    assert {cls.topic for cls in EVENT_CLASSES} <= set(topics.ALL)


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ({}, b"{}", "missing CloudEvents headers"),
        (
            {
                "ce_id": b"1",
                "ce_type": b"com.crossgen.nope.v1",
                "ce_source": b"/x",
                "ce_specversion": b"1.0",
            },
            b"{}",
            "unknown event type",
        ),
        (
            {
                "ce_id": b"1",
                "ce_type": MatchAccepted.event_type().encode(),
                "ce_source": b"/x",
                "ce_specversion": b"1.0",
                "content-type": b"application/json",
            },
            b"\xff\xfe not json",
            "data is not a JSON object",
        ),
        (
            {
                "ce_id": b"1",
                "ce_type": MatchAccepted.event_type().encode(),
                "ce_source": b"/x",
                "ce_specversion": b"1.0",
                "content-type": b"application/json",
            },
            b'{"pairing_id": "not-a-uuid"}',
            "pairing_id",
        ),
    ],
)
def test_invalid_records_say_what_is_wrong(
    headers: dict[str, bytes], value: bytes, reason: str
) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode(headers, b"k", value)


def test_events_are_immutable() -> None:
    event = joined()
    with pytest.raises(ValueError):
        event.display_name = "changed"  # type: ignore[misc]


def test_an_event_id_longer_than_the_inbox_keeps_is_invalid() -> None:
    record = encode(joined(), source="/x", event_id="x" * 65)
    with pytest.raises(InvalidEvent, match="event id longer than 64"):
        decode(record.headers, record.key, record.value)


@pytest.mark.parametrize(
    ("joined_at", "reason"),
    [
        ("2030-01-01T12:00:00", "UTC offset"),
        ("9999-12-31T23:59:59+00:00", "after the year"),
        ("0001-01-01T00:00:00+00:00", "before the year"),  # a reminder's lead taken off: no year 0
    ],
)
def test_a_time_handlers_cannot_compute_with_is_invalid(joined_at: str, reason: str) -> None:
    record = encode(joined(), source="/x")
    value = json.loads(record.value) | {"joined_at": joined_at}
    with pytest.raises(InvalidEvent, match=f"joined_at: .*{reason}"):
        decode(record.headers, record.key, json.dumps(value).encode())
