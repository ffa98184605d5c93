"""Run a service (`python -m <module> ...`) as a real child process, as in production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from ._common import Managed, free_port, kill_group, say, signal_group, tail, terminate_group

__all__ = ["ServiceProcess", "ServiceStartError", "free_port"]


class ServiceStartError(RuntimeError):
    pass


class ServiceProcess(Managed):
    """`[sys.executable, -m, module, *args]` in its own session, output appended to `log_path`."""

    def __init__(
        self,
        module: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike[str],
        name: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.module = module
        self.args = list(args)
        self.env = dict(env or {})
        self.log_path = Path(log_path)
        self.name = name or module
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        # Unbuffered so the log is current when we show its tail after a failure.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # append: restarts keep the earlier output
            # Own session: Ctrl-C goes to the runner only, which then stops services in order.
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, url: str, timeout: float = 30.0) -> None:
        """Poll `url` until it answers 200; fail fast with the log tail if the process dies."""
        t0 = time.monotonic()
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    code = self._proc.returncode if self._proc else None
                    raise ServiceStartError(self._failure(f"exited with {code} before ready"))
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() - t0 > timeout:
                    raise ServiceStartError(self._failure(f"{url} not 200 within {timeout}s"))
                time.sleep(0.1)
        say(f"{self.name}: ready on {url} in {time.monotonic() - t0:.1f}s (log {self.log_path})")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful shutdown), SIGKILL after `timeout`; idempotent."""
        if self._proc is not None:
            terminate_group(self._proc, timeout)

    def kill(self) -> None:
        """SIGKILL without warning, for crash tests."""
        if self._proc is not None:
            kill_group(self._proc)

    def freeze(self) -> None:
        """SIGSTOP: the process keeps what it holds (connections, read records, memory) and does
        nothing, as in a long pause of its VM, until ``thaw``."""
        if self._proc is not None:
            signal_group(self._proc, signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc is not None:
            signal_group(self._proc, signal.SIGCONT)

    def restart(self, timeout: float = 15.0) -> None:
        self.stop(timeout)
        self.start()

    def _failure(self, what: str) -> str:
        return f"{self.name}: {what}; last lines of {self.log_path}:\n{tail(self.log_path)}"
