"""A broker that does not answer when a service starts: ``serve`` waits for it and says so, then
serves once it answers."""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from crossgen_local.kafka import LocalKafka
from crossgen_shared import cli

from .messaging import DemoSettings, offline_settings

pytestmark = pytest.mark.integration


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with LocalKafka() as broker:
        if broker.mode == "external":
            pytest.skip("an external broker cannot be taken down here")
        yield broker


def test_serve_waits_for_a_broker_that_comes_up_later_then_serves(
    kafka: LocalKafka,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(cli.observability, "configure", lambda *_: None)
    served: list[FastAPI] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **_: served.append(app))
    settings = offline_settings(DemoSettings, kafka_bootstrap_servers=kafka.bootstrap_servers)
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
