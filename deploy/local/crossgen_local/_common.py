"""Small helpers shared by the component modules."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self


def say(message: str) -> None:
    """Progress line for a person watching a demo or a slow test start. Never fails: with the
    terminal closed (SIGHUP) or the reader of a pipe gone, the cleanup it reports must go on."""
    with contextlib.suppress(OSError):
        print(f"[crossgen-local] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` free ports, none handed out before by this process. The kernel readily hands a
    just-released port out again (seen ~1 in 5000 calls), and a port is released from its pick
    until its user binds it: the stack's three services once got two alike, and one's readiness
    check was answered by the other. The sockets stay open until every port is picked."""
    with _PICKING, contextlib.ExitStack() as stack:
        picked: list[int] = []
        while len(picked) < n:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            if (port := int(sock.getsockname()[1])) not in _HANDED_OUT:
                picked.append(port)
        _HANDED_OUT.update(picked)
        return picked


_HANDED_OUT: set[int] = set()
_PICKING = threading.Lock()  # the infra starts its components on threads


def tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file, for error messages; never raises."""
    try:
        with path.open("r", errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def cache_dir() -> Path:
    """Download cache kept outside the repo so every checkout and worktree shares it."""
    if explicit := os.environ.get("CROSSGEN_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "crossgen"


@functools.cache
def docker_available() -> bool:
    """True only if a Docker engine really answers: the CLI alone is not enough.

    CROSSGEN_DOCKER=0 forces local processes even when an engine is there.
    """
    if os.environ.get("CROSSGEN_DOCKER", "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def stop_each(who: str, steps: Iterable[tuple[str, Callable[[], object]]]) -> None:
    """Run every step of a stop, whatever becomes of one: a failure is reported and the next step
    runs; a KeyboardInterrupt (Ctrl-C pressed again) is raised once they all have."""
    interrupted: BaseException | None = None
    for name, step in steps:
        try:
            step()
        except Exception as exc:
            say(f"{who}: stopping {name} failed: {exc!r}")
        except BaseException as exc:
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


def terminate_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group (the child was started in its own session), then SIGKILL."""
    try:
        if proc.poll() is None:
            signal_group(proc, signal.SIGTERM)
            signal_group(proc, signal.SIGCONT)  # a frozen group acts on SIGTERM only once woken
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
    finally:
        kill_group(proc)  # also when Ctrl-C, pressed again, cut the wait short


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole group, also reaping grandchildren that outlived the leader."""
    signal_group(proc, signal.SIGKILL)
    proc.wait()


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@contextlib.contextmanager
def frozen(stop: Callable[[], object], wake: Callable[[], object]) -> Iterator[None]:
    """``stop()`` on entry and ``wake()`` on exit, also when the block or ``stop`` itself is
    interrupted: what is frozen for a fault, even in part, must never stay frozen."""
    try:
        stop()
        yield
    finally:
        wake()


class Managed:
    """``with thing:`` starts it and always tears it down, also when the start itself fails."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()
