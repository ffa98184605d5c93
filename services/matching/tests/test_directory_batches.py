"""HRIS records applied as a batch (read_ahead.py): what the batch's own earlier records changed
is seen by its later ones, as if each had been applied alone, and the batch is not failed and
redone one record at a time for it."""

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import event

from crossgen_local.tokens import TokenIssuer
from crossgen_matching import service
from crossgen_matching.directory import intake, read_ahead
from crossgen_matching.directory.employees import record
from crossgen_shared import topics
from crossgen_shared.events import (
    MatchDeclined,
    MatchProposed,
    ParticipantJoined,
    ParticipantUpdated,
)
from crossgen_shared.service import Service
from crossgen_shared.testing import kafka_record, parked

from .test_directory_enrolment import ENTERPRISE, automatic_program, scim_user
from .test_directory_intake import employees
from .test_matching_admin import events
from .test_matching_flow import enrol, program

ONE_AT_A_TIME = "one at a time"  # what the consumer logs when a batch failed and is redone


def hris(offset: int, value: bytes) -> ConsumerRecord[Any, Any]:
    headers = [("hris-format", b"scim"), ("hris-event-id", f"r{offset}".encode())]
    return kafka_record(topics.HRIS, b"hr", value, headers, offset, timestamp=1_700_000_000_000)


class Feed:
    """The HRIS topic's consumer, fed batches of SCIM users directly, offsets counted on."""

    def __init__(self, matching: Service) -> None:
        self.intake = next(c for c in matching.consumers if c.topic == topics.HRIS)
        self.offset = 0

    async def batch(self, *users: bytes) -> None:
        records = [hris(self.offset + i, user) for i, user in enumerate(users)]
        self.offset += len(users)
        await self.intake.handle(records)


def person(number: str, version: int, user_name: str | None = None, manager: str = "") -> bytes:
    enterprise = {"employeeNumber": number, "department": "Marketing"}
    enterprise |= {"manager": {"value": manager}} if manager else {}
    core = {"userName": user_name} if user_name else {}
    return scim_user(number, version, level="L8", **{ENTERPRISE: enterprise} | core)


@pytest.fixture
async def hires_enrolled(
    api: httpx.AsyncClient, tokens: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """A program every hire at level L2 joins, and the consumer's log kept from here on."""
    await automatic_program(api, tokens)
    caplog.set_level(logging.INFO)


async def test_a_hire_and_their_next_record_in_one_batch_join_once_and_update(
    hires_enrolled: None, matching: Service, caplog: pytest.LogCaptureFixture
) -> None:
    feed = Feed(matching)
    await feed.batch(
        scim_user("E-7", 1, level="L2"),
        scim_user("E-7", 2, level="L2", displayName="Kim Park"),
    )
    [joined] = await events(matching, ParticipantJoined)  # the second found them enrolled
    [updated] = await events(matching, ParticipantUpdated)  # and in a program
    assert (joined.display_name, updated.display_name) == ("Person E-7", "Kim Park")
    assert ONE_AT_A_TIME not in caplog.text


async def test_a_user_name_freed_earlier_in_the_batch_may_be_taken(
    matching: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    feed = Feed(matching)
    await feed.batch(person("A", 1, "kim@acme.example"), person("B", 1))
    await feed.batch(person("A", 2, "ann@acme.example"), person("B", 2, "kim@acme.example"))
    found = await employees(matching)
    assert (found["A"].user_name, found["B"].user_name) == ("ann@acme.example", "kim@acme.example")
    assert ONE_AT_A_TIME not in caplog.text and not await parked(matching.sessions)

    # Taken before it is freed: refused, as one record at a time would refuse it.
    await feed.batch(person("C", 1, "ann@acme.example"), person("A", 3))
    [letter] = await parked(matching.sessions)
    assert letter.headers["dlq_reason"] == "userName 'ann@acme.example' belongs to employee A"
    assert (await employees(matching))["A"].user_name == "a@acme.example"


async def test_a_new_report_earlier_in_the_batch_makes_their_manager_s_move_matter(
    api: httpx.AsyncClient,
    matching: Service,
    tokens: TokenIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """X learns from Y. In one batch X comes to report to M, who nobody reported to, and M comes
    to report to Y: Y is now above X, and the pairing must go."""
    feed = Feed(matching)
    await feed.batch(person("X", 1), person("M", 1), person("Y", 1))
    pid = await program(api, tokens)
    await enrol(api, tokens, pid, "Y", role="mentor")
    learner = await enrol(api, tokens, pid, "X", role="learner")
    async with matching.unit_of_work() as uow:
        assert await service.match_newcomer(uow, UUID(learner["id"])) is not None
        await uow.commit()
    [proposed] = await events(matching, MatchProposed)

    caplog.set_level(logging.INFO)
    await feed.batch(person("X", 2, manager="M"), person("M", 2, manager="Y"))
    [declined] = await events(matching, MatchDeclined)
    assert declined.pairing_id == proposed.pairing_id
    assert declined.reason == "the mentor is now in the learner's management chain"
    assert ONE_AT_A_TIME not in caplog.text


async def hires_batch_statements(matching: Service, wanted: Callable[[str], bool]) -> list[str]:
    """The statements ``wanted`` keeps, of one batch of six new hires the program enrols."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if wanted(statement):
            statements.append(statement)

    event.listen(matching.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await Feed(matching).batch(*(scim_user(f"E-{n}", 1, level="L2") for n in range(6)))
    finally:
        event.remove(matching.engine.sync_engine, "before_cursor_execute", seen)
    assert len(await events(matching, ParticipantJoined)) == 6
    return statements


async def test_a_batch_writes_its_new_rows_together(
    hires_enrolled: None, matching: Service, caplog: pytest.LogCaptureFixture
) -> None:
    inserts = [
        statement.split()[2]
        for statement in await hires_batch_statements(
            matching, lambda statement: statement.startswith("INSERT INTO")
        )
    ]
    assert (inserts.count("employees"), inserts.count("participants")) == (1, 1)
    assert ONE_AT_A_TIME not in caplog.text


async def test_the_read_ahead_asks_in_two_statements(
    hires_enrolled: None, matching: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows, locked, then who holds each userName, who is active where and who manages whom,
    in one statement: not one statement a question."""
    reading = False
    read = read_ahead.read

    async def read_counted(uow: Any, records: Any, *, together: bool) -> None:
        nonlocal reading
        reading = True
        try:
            await read(uow, records, together=together)
        finally:
            reading = False

    monkeypatch.setattr(read_ahead, "read", read_counted)
    assert len(await hires_batch_statements(matching, lambda _: reading)) == 2


async def test_a_conflict_met_at_the_batch_s_end_is_told_as_one_record_at_a_time_would(
    matching: Service, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer takes B's new userName after the batch read who holds it: the batch's
    rows, written together at its end, conflict; the batch is redone one record at a time, and
    only B's record is refused, with the reason it would have had alone."""
    caplog.set_level(logging.INFO)
    read = read_ahead.read

    async def read_then_lose_the_race(uow: Any, records: Any, *, together: bool) -> None:
        await read(uow, records, together=together)
        monkeypatch.setattr(read_ahead, "read", read)  # once
        _, [z] = intake.read(hris(99, person("Z", 1, "kim@acme.example")))
        async with matching.unit_of_work() as other:
            await record(other, z)
            await other.commit()

    monkeypatch.setattr(read_ahead, "read", read_then_lose_the_race)
    await Feed(matching).batch(person("A", 1), person("B", 1, "kim@acme.example"), person("C", 1))
    assert ONE_AT_A_TIME in caplog.text
    [letter] = await parked(matching.sessions)
    assert letter.headers["dlq_reason"] == "userName 'kim@acme.example' belongs to employee Z"
    assert {"A", "C", "Z"} <= (await employees(matching)).keys()
