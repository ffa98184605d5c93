"""The whole Crossgen system on local infrastructure: the three services as separate processes."""

import os
import subprocess
import sys
import time
from pathlib import Path

from crossgen_local._common import Managed, free_port, say, stop_each
from crossgen_local.infra import LocalInfra
from crossgen_local.processes import ServiceProcess
from crossgen_local.tokens import TokenIssuer

SERVICES = ("matching", "sessions", "notifications")


class CrossgenStack(Managed):
    """``with CrossgenStack(infra, tokens, log_dir) as stack:`` then ``stack.url("matching")``."""

    def __init__(self, infra: LocalInfra, tokens: TokenIssuer, log_dir: Path) -> None:
        self.infra = infra
        self.tokens = tokens
        self.log_dir = log_dir
        self.ports = {name: free_port() for name in SERVICES}
        self.processes = {name: self._process(name, name) for name in SERVICES}
        # Further processes of a service, by process name ("matching-2"); ports has theirs too.
        self.replicas: dict[str, ServiceProcess] = {}

    def _process(self, service: str, name: str) -> ServiceProcess:
        return ServiceProcess(
            f"crossgen_{service}",
            ["serve"],
            env=self.env(service, self.ports[name]),
            log_path=self.log_dir / f"{name}.log",
            name=name,
        )

    def env(self, service: str, port: int | None = None) -> dict[str, str]:
        """Everything a service reads from its environment, under its own prefix."""
        prefix = service.upper()
        env = {
            f"{prefix}_DATABASE_URL": self.infra.postgres.url(service),
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka.bootstrap_servers,
            f"{prefix}_HTTP_HOST": "127.0.0.1",
            f"{prefix}_HTTP_PORT": str(port or self.ports[service]),
            f"{prefix}_OUTBOX_POLL_INTERVAL": "0.2",
            **self.tokens.service_env(prefix),
        }
        if service == "notifications":
            env |= {
                "NOTIFICATIONS_SMTP_HOST": self.infra.smtp.host,
                "NOTIFICATIONS_SMTP_PORT": str(self.infra.smtp.port),
            }
        return env

    def url(self, name: str) -> str:
        """A service's (or a replica's, by process name) base URL."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def running_urls(self, service: str) -> list[str]:
        """Base URLs of the processes of ``service`` (replicas too) that are running now."""
        processes = {**self.processes, **self.replicas}
        return [
            self.url(name)
            for name, process in processes.items()
            if process.module == f"crossgen_{service}" and process.running
        ]

    def add_replica(self, service: str) -> ServiceProcess:
        """Start one more process of ``service``: same database and consumer group (so the
        group rebalances), its own HTTP port; stopped with the stack."""
        name = f"{service}-{len(self.replicas) + 2}"
        self.ports[name] = free_port()
        replica = self.replicas[name] = self._process(service, name)
        replica.start()
        self.wait_ready(name)
        return replica

    def kill_and_restart(self, service: str) -> float:
        """kill -9 a service's process, start it again and wait until it is ready; returns when
        it was dead (epoch s)."""
        process = self.processes[service]
        process.kill()
        dead = time.time()
        process.start()
        self.wait_ready(service)
        return dead

    def wait_ready(self, name: str) -> None:
        """Until the process ``name`` (a service or a replica) answers its readiness probe."""
        process = self.processes.get(name) or self.replicas[name]
        process.wait_ready(f"{self.url(name)}/health/ready", timeout=60)

    def migrate(self, service: str) -> None:
        log = self.log_dir / f"{service}-migrate.log"
        with log.open("w") as out:
            done = subprocess.run(
                [sys.executable, "-m", f"crossgen_{service}", "migrate"],
                env={**os.environ, **self.env(service)},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if done.returncode:
            raise RuntimeError(
                f"{service}: migrations failed; see {log}:\n{log.read_text()[-3000:]}"
            )

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            self.migrate(service)
        say("stack: migrations applied")
        try:
            for process in self.processes.values():
                process.start()
            for service in self.processes:
                self.wait_ready(service)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        processes = [*self.replicas.values(), *self.processes.values()]
        stop_each("stack", ((process.name, process.stop) for process in processes))
