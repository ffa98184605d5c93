"""A real Kafka broker: external, in Docker, or a local JVM process (KRaft, single node)."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.resources
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from signal import SIGCONT, SIGSTOP
from typing import Any, Literal

from ._common import (
    Managed,
    cache_dir,
    docker_available,
    free_port,
    free_ports,
    frozen,
    kill_group,
    say,
    signal_group,
    tail,
    terminate_group,
)

KAFKA_VERSION = "4.1.1"
Mode = Literal["external", "docker", "local"]

# Kafka's own scripts would configure log4j; we start the JVM directly, so say where logs go.
_LOG4J2 = """\
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class KafkaStartError(RuntimeError):
    pass


class LocalKafka(Managed):
    """One broker for tests and demos; `restart()` keeps data and port (broker-restart faults).

    Resolution: CROSSGEN_KAFKA_BOOTSTRAP (external) > Docker engine > local JVM process.
    """

    def __init__(
        self,
        mode: Mode | None = None,
        *,
        image: str = "confluentinc/cp-kafka:7.6.0",
        startup_timeout: float = 60.0,
        archive_classes_to: Path | None = None,
    ) -> None:
        self.mode: Mode = mode or _pick_mode()
        self.image = image
        self.startup_timeout = startup_timeout
        self.port = 0
        self.controller_port = 0
        self.data_dir: Path | None = None
        self._bootstrap: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._container: Any = None
        # Guards child creation so stop() from another thread never misses a child being spawned.
        self._lock = threading.Lock()
        self._helpers: set[subprocess.Popen[bytes]] = set()
        self._closing = False
        self._lib: Path | None = None
        # Java's class data sharing: the broker that archives its classes at exit, once per JDK
        # (``_ensure_class_archive``), and the archive every later JVM maps.
        self._archive_classes_to = archive_classes_to
        self._archiving: LocalKafka | None = None
        self._class_archive: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self._bootstrap is None:
            raise RuntimeError("Kafka is not started")
        return self._bootstrap

    @property
    def pid(self) -> int | None:
        """Broker JVM pid in local mode (for leak checks in tests)."""
        return self._proc.pid if self._proc else None

    @property
    def log_path(self) -> Path | None:
        return self.data_dir / "broker.log" if self.data_dir else None

    def start(self) -> None:
        self._closing = False
        t0 = time.monotonic()
        if self.mode == "external":
            self._bootstrap = os.environ["CROSSGEN_KAFKA_BOOTSTRAP"]
            say(f"kafka: using external broker {self._bootstrap}")
            return
        if self.mode == "docker":
            self._start_container()
            self._wait_ready()
        else:
            self._start_local()
        say(f"kafka: ready on {self._bootstrap} ({self.mode}) in {time.monotonic() - t0:.1f}s")

    def stop(self) -> None:
        """Idempotent and safe to call from another thread while start() is still running."""
        with self._lock:
            self._closing = True
            children = [*self._helpers, *([self._proc] if self._proc else [])]
            container, self._container = self._container, None
            archiving = self._archiving
        if archiving is not None:
            archiving.stop()
        for child in children:
            terminate_group(child)
        if container is not None:
            container.stop()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
        self._proc = None
        self._bootstrap = None

    def restart(self, *, crash: bool = False, down_for: float = 0.0) -> None:
        """Stop the broker cleanly (or kill -9 it: ``crash``), leave it down ``down_for`` seconds,
        and start it again with the same data dir and port."""
        t0 = time.monotonic()
        if self.mode == "external":
            raise RuntimeError("cannot restart an external Kafka broker")
        if self.mode == "docker":
            container = self._container.get_wrapped_container()
            if crash:
                container.kill()
            else:
                container.stop(timeout=15)
            time.sleep(down_for)
            container.start()
        else:
            assert self._proc is not None and self.data_dir is not None
            if crash:
                kill_group(self._proc)
            else:
                terminate_group(self._proc)
            time.sleep(down_for)
            self._launch()
        self._wait_ready()
        how = "killed" if crash else "stopped"
        say(f"kafka: {how} and started again in {time.monotonic() - t0:.1f}s")

    def freeze(self, seconds: float) -> None:
        """Freeze the broker for ``seconds`` (SIGSTOP; Docker's pause), then wake it: its clients'
        connections stay open and unanswered, as in a long pause of its VM."""
        if self.mode == "external":
            raise RuntimeError("cannot freeze an external Kafka broker")
        if self.mode == "docker":
            container = self._container.get_wrapped_container()
            pause = frozen(container.pause, container.unpause)
        else:
            assert self._proc is not None
            stop, wake = (partial(signal_group, self._proc, s) for s in (SIGSTOP, SIGCONT))
            pause = frozen(stop, wake)
        with pause:
            time.sleep(seconds)
        say(f"kafka: frozen for {seconds:g}s and woken")

    # --- local JVM mode ---------------------------------------------------------------------

    def _start_local(self) -> None:
        self._lib = self._ensure_jars()
        if self._archive_classes_to is None:
            self._class_archive = self._ensure_class_archive(self._lib)
        for attempt in range(3):
            self._prepare()
            self._launch()
            try:
                self._wait_ready()
                return
            except KafkaStartError:
                # Another process can take a port between our pick and the JVM's bind.
                log = self.log_path.read_text(errors="replace") if self.log_path else ""
                if attempt == 2 or "Address already in use" not in log:
                    raise
            say("kafka: a port was taken meanwhile; retrying on new ports")
            if self._proc is not None:
                terminate_group(self._proc)
            shutil.rmtree(self.data_dir or "", ignore_errors=True)

    def _ensure_jars(self) -> Path:
        """Fetch the broker jars once into the shared cache; atomic, and locked across processes."""
        root = cache_dir()
        root.mkdir(parents=True, exist_ok=True)
        target = root / f"kafka-{KAFKA_VERSION}"
        pom = importlib.resources.files(__package__).joinpath("kafka-pom.xml").read_bytes()
        digest = hashlib.sha256(pom).hexdigest()

        def complete() -> bool:
            # The digest marker is written last, so its presence means the download finished;
            # a changed pom invalidates the cache.
            marker = target / "pom.sha256"
            return marker.is_file() and marker.read_text().strip() == digest

        if complete():
            return target / "lib"
        with open(root / f"kafka-{KAFKA_VERSION}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if complete():  # another process finished it while we waited
                return target / "lib"
            for stale in root.glob(f".kafka-{KAFKA_VERSION}-*"):  # left by a killed download
                shutil.rmtree(stale, ignore_errors=True)
            say("kafka: downloading jars with Maven (first run only)…")
            t0 = time.monotonic()
            tmp = Path(tempfile.mkdtemp(prefix=f".kafka-{KAFKA_VERSION}-", dir=root))
            try:
                (tmp / "pom.xml").write_bytes(pom)
                mvn = shutil.which("mvn") or "mvn"
                self._run(
                    [mvn, "-q", "-B", "-f", str(tmp / "pom.xml"), "dependency:copy-dependencies",
                     f"-DoutputDirectory={tmp / 'lib'}"],
                )  # fmt: skip
                (tmp / "pom.xml").unlink()
                (tmp / "pom.sha256").write_text(digest)
                if target.exists():
                    shutil.rmtree(target)
                os.rename(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            say(f"kafka: jars cached in {target} ({time.monotonic() - t0:.1f}s)")
        return target / "lib"

    def _ensure_class_archive(self, lib: Path) -> Path | None:
        """Archive the classes a broker loads, once per JDK (Java's class data sharing): a JVM
        that maps them reads no jar for those. Here a broker was ready in 1.7-2.0 s, not 3.1-3.4,
        formatting its storage included. Without an archive a broker starts as before."""
        archive = lib.parent / f"classes-{_jvm_key(self._java_binary())}.jsa"
        unusable = archive.with_suffix(".unusable")  # this JDK would make none: do not try again
        if archive.is_file() or unusable.exists():
            return archive if archive.is_file() else None
        with open(lib.parent / "classes.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if archive.is_file() or unusable.exists():  # another process made it meanwhile
                return archive if archive.is_file() else None
            say("kafka: archiving the broker's classes for faster starts (first run only)…")
            t0 = time.monotonic()
            dumped = archive.with_name(f".{archive.name}.{os.getpid()}")
            archiving = LocalKafka("local", archive_classes_to=dumped)
            with self._lock:
                if self._closing:
                    raise KafkaStartError("Kafka start cancelled")
                self._archiving = archiving
            try:
                with archiving:  # the JVM writes the archive as it exits
                    pass
                # A cut-short archive crashes every JVM that maps it: only one that maps is kept.
                self._run([*self._jvm(f"-XX:SharedArchiveFile={dumped}", "-Xshare:on"), "-version"])
                os.rename(dumped, archive)
            except KafkaStartError as exc:
                if self._closing:
                    raise
                unusable.write_text(f"{exc}\n")
                say(
                    f"kafka: classes not archived, brokers start without; why, in {unusable},"
                    " which to delete to try again"
                )
                return None
            finally:
                self._archiving = None
                dumped.unlink(missing_ok=True)
            say(f"kafka: classes archived in {archive} ({time.monotonic() - t0:.1f}s)")
        return archive

    def _prepare(self) -> None:
        """Fresh data dir, ports and server.properties, then format the KRaft storage."""
        with self._lock:  # so a concurrent stop() either sees the dir or cancels us
            if self._closing:
                raise KafkaStartError("Kafka start cancelled")
            self.data_dir = Path(tempfile.mkdtemp(prefix="crossgen-kafka-"))
        self.port, self.controller_port = free_ports(2)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir / "kraft"),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # One partition instead of 50 per internal topic: the first consumer group and
            # every restart get their coordinator much sooner.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # After a kill -9 the restarted broker may register only once the controller has
            # given up on the old one: 9 s at the defaults (a heartbeat every 2 s).
            "broker.session.timeout.ms": "2000",
            "broker.heartbeat.interval.ms": "500",
            "num.partitions": "3",
            "auto.create.topics.enable": "true",
        }
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        (self.data_dir / "server.properties").write_text(text)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        # 16 random bytes, base64url without padding: the 22-char form Kafka expects.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self._run(
            [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
             "-c", str(self.data_dir / "server.properties")],
        )  # fmt: skip

    def _java_binary(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java:
            raise KafkaStartError("no `java` found (Java 17+ needed to run Kafka locally)")
        return java

    def _jvm(self, *options: str) -> list[str]:
        """``java``, the options every JVM of ours takes, ``options``, and the class path."""
        assert self._lib is not None
        # Tests want a fast start, not peak throughput: C1-only JIT and the serial GC start
        # sooner and use less CPU (measured ~0.5-1 s faster per JVM on a busy 2-CPU box).
        return [
            self._java_binary(), "-Xms256m", "-Xmx512m", "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC", "-Djava.awt.headless=true", *options,
            # The jars' own path, the same in every run: an archive is bound to its class path.
            "-cp", f"{self._lib}/*",
        ]  # fmt: skip

    def _java(self, *options: str) -> list[str]:
        """The JVM for the broker and its storage tool, mapping the class archive if there is
        one."""
        assert self.data_dir is not None
        sharing = [f"-XX:SharedArchiveFile={self._class_archive}"] if self._class_archive else []
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        return self._jvm(*sharing, log4j, *options)

    def _launch(self) -> None:
        assert self.data_dir is not None
        archiving = []
        if self._archive_classes_to is not None:
            # Its warnings name each class it leaves out (those of old class file versions).
            archiving = [f"-XX:ArchiveClassesAtExit={self._archive_classes_to}", "-Xlog:cds=off"]
        cmd = [*self._java(*archiving), "kafka.Kafka", str(self.data_dir / "server.properties")]
        with self._lock:
            if self._closing:
                raise KafkaStartError("Kafka start cancelled")
            with open(self.data_dir / "broker.log", "ab") as log:
                # Own session: a Ctrl-C in the terminal reaches us, and we stop the broker in order.
                self._proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        self._bootstrap = f"127.0.0.1:{self.port}"

    def _run(self, cmd: list[str]) -> None:
        """Run a short helper (mvn, StorageTool) that stop() can kill from another thread."""
        with self._lock:
            if self._closing:
                raise KafkaStartError("Kafka start cancelled")
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
            self._helpers.add(proc)
        try:
            out, _ = proc.communicate()
        except BaseException:  # e.g. Ctrl-C: its own session means nobody else will stop it
            kill_group(proc)
            raise
        finally:
            with self._lock:
                self._helpers.discard(proc)
        if proc.returncode != 0:
            lines = out.decode(errors="replace").splitlines()
            # Kafka's tools dump their whole config first; the cause is on the error lines.
            errors = [line for line in lines if "ERROR" in line or "Exception" in line]
            text = "\n".join([*errors[:5], "…", *lines[-20:]])
            raise KafkaStartError(f"{' '.join(cmd[-6:])} failed ({proc.returncode}):\n{text}")

    # --- Docker mode ----------------------------------------------------------------------

    def _start_container(self) -> None:
        from testcontainers.community.kafka import KafkaContainer

        # A fixed host port keeps bootstrap_servers valid across restart().
        self.port = free_port()
        container = KafkaContainer(self.image).with_kraft().with_bind_ports(9093, self.port)
        container.start(timeout=int(self.startup_timeout))
        with self._lock:
            if self._closing:
                container.stop()
                raise KafkaStartError("Kafka start cancelled")
            self._container = container
        self._bootstrap = container.get_bootstrap_server()

    # --- readiness ------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        host, _, port = self.bootstrap_servers.split(",")[0].rpartition(":")
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._closing:
                raise KafkaStartError("Kafka start cancelled")
            if self._proc is not None and self._proc.poll() is not None:
                raise KafkaStartError(self._failure(f"broker exited with {self._proc.returncode}"))
            if metadata_ok(host, int(port)):
                return
            if time.monotonic() > deadline:
                raise KafkaStartError(self._failure(f"broker not ready in {self.startup_timeout}s"))
            time.sleep(0.2)

    def _failure(self, what: str) -> str:
        log = self.log_path
        return f"Kafka: {what}; last lines of {log}:\n{tail(log)}" if log else f"Kafka: {what}"


def _jvm_key(java: str) -> str:
    """Names a JDK's class archive: an archive made by another JVM build is not used."""
    real = Path(java).resolve()
    stat = real.stat()
    return hashlib.sha256(f"{real} {stat.st_size} {stat.st_mtime_ns}".encode()).hexdigest()[:12]


def metadata_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """Send a Kafka Metadata v4 request; true once the broker answers listing itself.

    The broker only opens its client listener after it is unfenced, so an answer with a
    broker in it means producers and consumers can work. Raw protocol: no client library needed.
    """
    client_id = b"crossgen-local"
    header = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id  # api 3 = Metadata, v4
    body = struct.pack(">i?", 0, False)  # no topics, no auto-creation
    request = header + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv(sock, 4))
            response = _recv(sock, size)
        correlation, _throttle, brokers = struct.unpack_from(">iii", response)
        return correlation == 7 and brokers > 0
    except (OSError, struct.error):
        return False


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _pick_mode() -> Mode:
    if os.environ.get("CROSSGEN_KAFKA_BOOTSTRAP"):
        return "external"
    return "docker" if docker_available() else "local"
