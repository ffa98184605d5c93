"""A broker that does not answer when a process starts: ``serve`` waits for it and says so, then
serves once it answers; a one-shot command stops with one line that says what to check."""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from crossgen_local.kafka import LocalKafka
from crossgen_shared import cli
from crossgen_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")


def settings_for(bootstrap_servers: str) -> DemoSettings:
    return DemoSettings(
        database_url="postgresql+asyncpg://unused/db",
        jwt_issuer="idp",
        jwt_public_key="unused",
        kafka_bootstrap_servers=bootstrap_servers,
    )


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens once the probe is closed


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def quiet_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's own logging stays as pytest set it."""
    monkeypatch.setattr(cli.observability, "configure", lambda *_: None)


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with LocalKafka() as broker:
        if broker.mode == "external":
            pytest.skip("an external broker cannot be taken down here")
        yield broker


def test_serve_waits_for_a_broker_that_comes_up_later_then_serves(
    kafka: LocalKafka,
    quiet_start: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served: list[FastAPI] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **_: served.append(app))
    settings = settings_for(kafka.bootstrap_servers)
    port = int(kafka.bootstrap_servers.rpartition(":")[2])
    down = threading.Thread(target=kafka.restart, kwargs={"crash": True, "down_for": 4.0})
    down.start()
    try:
        while not refused(port):  # killed: the first try finds it down
            time.sleep(0.01)
        with caplog.at_level(logging.INFO, logger="crossgen_shared.kafka_wait"):
            cli.main("demo", lambda: settings, lambda _: FastAPI(), Path("."), argv=["serve"])
    finally:
        down.join()

    assert len(served) == 1
    waits = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert waits, "no line said that the service waits"
    assert waits[0].startswith(f"Kafka at {kafka.bootstrap_servers} does not answer; trying again")
    assert waits[0].endswith("DEMO_KAFKA_BOOTSTRAP_SERVERS says where it is.")
    assert caplog.records[-1].getMessage() == f"Kafka at {kafka.bootstrap_servers} answers"


def test_a_command_stops_with_what_to_check_when_the_broker_does_not_answer(
    quiet_start: None,
) -> None:
    settings = settings_for(f"127.0.0.1:{a_closed_port()}")

    with pytest.raises(SystemExit) as stopped:
        cli.main("demo", lambda: settings, lambda _: FastAPI(), Path("."), ["dead-letters", "list"])

    assert stopped.value.code == (
        f"Kafka at {settings.kafka_bootstrap_servers} does not answer. Is the broker up? "
        "DEMO_KAFKA_BOOTSTRAP_SERVERS says where it is."
    )
