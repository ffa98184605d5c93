"""The HRIS topic consumer at handler level: FastStream's test broker, a real PostgreSQL.

The test broker gives every record offset 0, so these records carry ``hris-event-id`` headers;
``test_directory_kafka`` runs the feed over a real broker, where offsets identify records.
"""

import json
from pathlib import Path
from typing import Any

from faststream.kafka import TestKafkaBroker
from sqlalchemy import select

from crossgen_local.postgres import LocalPostgres
from crossgen_local.tokens import TokenIssuer
from crossgen_matching import service
from crossgen_matching.directory.intake import HrisIntake
from crossgen_matching.directory.models import Employee
from crossgen_shared import topics
from crossgen_shared.events import ParticipantLeft
from crossgen_shared.service import Service
from crossgen_shared.testing import outbox, parked

from .conftest import matching_service

FIXTURES = Path(__file__).parent / "fixtures" / "hris"


def payload(vendor: str, name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / f"{vendor}.json").read_text())[name]).encode()


async def publish(broker: Any, value: bytes, event_id: str, fmt: str | None = None) -> None:
    headers = {"hris-event-id": event_id} | ({"hris-format": fmt} if fmt else {})
    await broker.publish(value, topics.HRIS, key=b"hr", headers=headers)


async def employees(matching: Service) -> dict[str, Employee]:
    async with matching.sessions() as session:
        return {e.employee_number: e for e in await session.scalars(select(Employee))}


async def test_scim_bamboohr_and_merge_records_land_in_one_directory(matching: Service) -> None:
    async with TestKafkaBroker(matching.broker) as broker:
        await publish(broker, payload("scim", "hired"), "r1", "scim")
        await publish(broker, payload("bamboohr", "updated"), "r2")  # format detected
        await publish(broker, payload("merge", "changed"), "r3", "merge")
    found = await employees(matching)
    assert found.keys() == {"100482", "200311", "300077"}
    assert found["100482"].department == "Brand Marketing"
    assert found["100482"].source == "hris:scim"
    assert found["200311"].display_name == "Tom Nowak" and found["200311"].external_id == "4107"
    assert found["300077"].location == "Bengaluru" and found["300077"].source == "hris:merge"


async def test_a_bad_record_is_dead_lettered_and_the_feed_goes_on(matching: Service) -> None:
    async with TestKafkaBroker(matching.broker) as broker:
        await publish(broker, b"<xml>not json</xml>", "bad-1")
        bad_email = b'{"employees": [{"id": "9", "fields": {"Work Email": "no"}}]}'
        await publish(broker, bad_email, "bad-2")
        await publish(broker, payload("bamboohr", "deleted"), "bad-3", "bamboohr")  # unknown id
        # 100 kB of brackets: json raises RecursionError, not ValueError, for it.
        await publish(broker, b"[" * 50_000 + b"]" * 50_000, "bad-4")
        await publish(broker, payload("merge", "changed"), "good", "merge")
    letters = [row.headers for row in await parked(matching.sessions)]
    reasons = [h["dlq_reason"] for h in letters]
    assert reasons[0].startswith("the value is not JSON")
    assert reasons[1].startswith("bamboohr: email: value is not a valid email address")
    assert "by id '4107' only, and the directory does not know them" in reasons[2]
    assert reasons[3] == "the value is not JSON: arrays and objects nested too deeply"
    assert all(h["dlq_origin_topic"] == topics.HRIS for h in letters)
    assert letters[2]["hris-format"] == "bamboohr"  # kept, so a replay reads it the same way
    assert (await employees(matching)).keys() == {"300077"}


async def test_a_vendor_event_twice_has_one_effect_and_an_older_one_undoes_nothing(
    matching: Service,
) -> None:
    async with matching.unit_of_work() as uow:
        program = await service.create_program(uow, "Digital")
        await service.enrol(
            uow,
            program_id=program.id,
            person_id="200311",
            role="mentor",
            display_name="Tom",
            email="tom@example.com",
            skills={"kotlin": 3},
            capacity=1,
        )
        await uow.commit()

    async with TestKafkaBroker(matching.broker) as broker:
        await publish(broker, payload("bamboohr", "updated"), "b1")
        await publish(broker, payload("bamboohr", "terminated"), "b2")
        await publish(broker, payload("bamboohr", "terminated"), "b3")  # the vendor resent it
        await publish(broker, payload("bamboohr", "rehired"), "b4")
        await publish(broker, payload("bamboohr", "updated"), "b5")  # an old one, replayed
    events = [e.event for e in await outbox(matching.sessions)]
    assert sum(isinstance(e, ParticipantLeft) for e in events) == 1
    tom = (await employees(matching))["200311"]
    assert tom.active and tom.hire_date is not None and tom.hire_date.year == 2025
    assert tom.last_vendor_event_id == "4107:updated:2025-08-18T09:00:00+0000"


def test_the_intake_gathers_batches_and_commits_offsets_as_its_settings_say(
    postgres: LocalPostgres, tokens: TokenIssuer
) -> None:
    """Only the pipeline's entry waits for a batch (settings.py says why); its offsets are
    committed in the background like every consumer's."""
    matching = matching_service(postgres, tokens, hris_batch_wait=0.3, offset_commit_interval=0.7)
    by_topic = {consumer.topic: consumer for consumer in matching.consumers}
    assert isinstance(by_topic[topics.HRIS], HrisIntake)
    assert (by_topic[topics.HRIS].batch_wait, by_topic[topics.HRIS].commit_every) == (0.3, 0.7)
    assert (
        by_topic[topics.PARTICIPANTS].batch_wait,
        by_topic[topics.PARTICIPANTS].commit_every,
    ) == (0.0, 0.7)
