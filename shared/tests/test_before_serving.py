"""What ``serve`` waits for, over a real broker and database: a broker that comes up after the
service starts, a database that cannot be used until it can, and one that lacks the service's
latest migration until ``migrate`` runs; each wait says what is missing and what to do, in the log
and from the stand-in on the service's port. A schema a newer release migrated is not waited for."""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url

from crossgen_local.kafka import LocalKafka
from crossgen_local.postgres import LocalPostgres
from crossgen_shared import before_serving, cli, migrations
from crossgen_shared.settings import ServiceSettings

from .messaging import DemoSettings, a_closed_port, offline_settings

pytestmark = pytest.mark.integration

REVISION = """
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = {down_revision!r}


def upgrade() -> None:
    op.create_table("note_{revision}", sa.Column("id", sa.Integer, primary_key=True))
"""


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def nothing_to_wait_for(*_: object) -> None:
    pass


@pytest.fixture
def serving(monkeypatch: pytest.MonkeyPatch) -> list[FastAPI]:
    """What ``serve`` handed to uvicorn; the test's own logging stays as pytest set it."""
    monkeypatch.setattr(cli.observability, "configure", lambda *_: None)
    served: list[FastAPI] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **_: served.append(app))
    return served


@pytest.fixture
def kafka_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(before_serving, "until_kafka_answers", nothing_to_wait_for)


def a_database(postgres: LocalPostgres) -> str:
    name = f"test_{uuid4().hex[:12]}"
    postgres.create_database(name)
    return postgres.url(name)


@pytest.fixture(scope="module")
def kafka() -> Iterator[LocalKafka]:
    with LocalKafka() as broker:
        if broker.mode == "external":
            pytest.skip("an external broker cannot be taken down here")
        yield broker


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """A service's migrations: two revisions."""
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text("from crossgen_shared.migrations import run_env\nrun_env()\n")
    for revision, down_revision in (("0001", None), ("0002", "0001")):
        text = REVISION.format(revision=revision, down_revision=down_revision)
        (tmp_path / "versions" / f"{revision}.py").write_text(text)
    return tmp_path


def settings_for(**extra: str) -> ServiceSettings:
    """A service's settings whose HTTP port is free: a wait serves a stand-in there."""
    return offline_settings(DemoSettings, http_host="127.0.0.1", http_port=a_closed_port(), **extra)


def serve(settings: ServiceSettings, scripts: Path = Path(".")) -> None:
    cli.main("demo", lambda: settings, lambda _: FastAPI(), scripts, argv=["serve"])


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def said(caplog: pytest.LogCaptureFixture, start: str) -> bool:
    """Whether a warning that begins with ``start`` is logged within 30 s (a service waiting in
    another thread)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(line.startswith(start) for line in warnings_in(caplog)):
            return True
        time.sleep(0.05)
    return False


def test_serve_waits_for_a_broker_that_comes_up_later_then_serves(
    kafka: LocalKafka,
    serving: list[FastAPI],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(before_serving, "until_schema_current", nothing_to_wait_for)
    settings = settings_for(kafka_bootstrap_servers=kafka.bootstrap_servers)
    port = int(kafka.bootstrap_servers.rpartition(":")[2])
    down = threading.Thread(target=kafka.restart, kwargs={"crash": True, "down_for": 4.0})
    down.start()
    try:
        while not refused(port):  # killed: the first try finds it down
            time.sleep(0.01)
        with caplog.at_level(logging.INFO, logger="crossgen_shared.before_serving"):
            serve(settings)
    finally:
        down.join()

    assert len(serving) == 1
    waits = [w for w in warnings_in(caplog) if w.startswith("Kafka")]
    assert waits, "no line said that the service waits"
    assert waits[0].startswith(f"Kafka at {kafka.bootstrap_servers} does not answer; trying again")
    assert waits[0].endswith("DEMO_KAFKA_BOOTSTRAP_SERVERS says where it is.")
    assert caplog.records[-1].getMessage() == f"Kafka at {kafka.bootstrap_servers} answers"


@pytest.mark.usefixtures("kafka_answering")
def test_serve_waits_for_the_latest_migration_then_serves(
    postgres: LocalPostgres,
    scripts: Path,
    serving: list[FastAPI],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(database_url=a_database(postgres))
    migrations.upgrade(scripts, settings.database_url, "0001")  # the last release's

    with caplog.at_level(logging.INFO, logger="crossgen_shared.before_serving"):
        service = threading.Thread(target=serve, args=(settings, scripts))
        service.start()
        try:
            assert said(caplog, "the database lacks migration(s) 0002;"), warnings_in(caplog)
            assert serving == [], "served on a schema without the latest migration"
            standin = f"http://127.0.0.1:{settings.http_port}"
            live, ready = (httpx.get(f"{standin}/health/{probe}") for probe in ("live", "ready"))
            cli.main("demo", lambda: settings, lambda _: FastAPI(), scripts, argv=["migrate"])
        finally:
            service.join(30)

    assert len(serving) == 1
    assert warnings_in(caplog)[0].startswith(
        "the database lacks migration(s) 0002; run this service's `migrate` command. "
        "Looking again in"
    )
    assert caplog.records[-1].getMessage() == "the database's schema is current"
    # Meanwhile the probes found the process alive and not ready; the port is free for uvicorn.
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    assert (ready.status_code, ready.headers["retry-after"]) == (503, "5")
    assert ready.json()["detail"].startswith("the database lacks migration(s) 0002")
    assert refused(settings.http_port)
    assert logging.getLogger("uvicorn.access").propagate, "the service's access lines are lost"


@pytest.mark.usefixtures("kafka_answering")
def test_serve_does_not_wait_for_a_schema_a_newer_release_migrated(
    postgres: LocalPostgres,
    scripts: Path,
    serving: list[FastAPI],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = a_database(postgres)
    migrations.upgrade(scripts, url)
    (scripts / "versions" / "0002.py").unlink()  # this release is the one before

    serve(settings_for(database_url=url), scripts)

    assert len(serving) == 1
    assert warnings_in(caplog) == []


@pytest.mark.usefixtures("kafka_answering")
def test_serve_waits_for_a_database_it_cannot_use_then_for_its_migrations(
    postgres: LocalPostgres,
    scripts: Path,
    serving: list[FastAPI],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"test_{uuid4().hex[:12]}"
    settings = settings_for(database_url=postgres.url(name))

    with caplog.at_level(logging.INFO, logger="crossgen_shared.before_serving"):
        service = threading.Thread(target=serve, args=(settings, scripts))
        service.start()
        try:
            assert said(caplog, "PostgreSQL at"), warnings_in(caplog)
            ready = httpx.get(f"http://127.0.0.1:{settings.http_port}/health/ready")
            postgres.create_database(name)
            assert said(caplog, "the database lacks migration(s) 0001, 0002;"), warnings_in(caplog)
            assert serving == [], "served on a database without its schema"
            cli.main("demo", lambda: settings, lambda _: FastAPI(), scripts, argv=["migrate"])
        finally:
            service.join(30)

    assert len(serving) == 1
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    first = warnings_in(caplog)[0]
    assert first.startswith(
        f'PostgreSQL at {where} cannot be used: database "{name}" does not exist. '
        "DEMO_DATABASE_URL says where it is and as whom. Looking again in"
    ), first
    assert ready.status_code == 503 and ready.json()["detail"] in warnings_in(caplog)
    assert ready.json()["detail"].startswith(f"PostgreSQL at {where} cannot be used")
    assert caplog.records[-1].getMessage() == "the database's schema is current"
