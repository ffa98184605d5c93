"""Kafka + PostgreSQL + SMTP sink together, torn down on every way out."""

from __future__ import annotations

import atexit
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType

from ._common import Managed, say, stop_each
from .interrupts import Handler, interrupt, take_over
from .kafka import LocalKafka
from .postgres import LocalPostgres
from .smtp import SmtpSink


class LocalInfra(Managed):
    """`with LocalInfra(["matching", ...]) as infra:` then use .kafka, .postgres, .smtp."""

    def __init__(self, databases: Iterable[str] = ()) -> None:
        self.kafka = LocalKafka()
        self.postgres = LocalPostgres(databases)
        self.smtp = SmtpSink()
        self._previous_handlers: dict[int, Handler] = {}
        self._stopping = self._signalled = False

    def start(self) -> None:
        t0 = time.monotonic()
        self._stopping = self._signalled = False
        self._install_signal_handlers()
        atexit.register(self.stop)  # safety net if the caller never reaches stop()
        errors: list[BaseException] = []
        # Waited for, not joined: Python 3.11 takes a thread whose join a signal interrupted
        # for ended, and every later join returns at once while it still runs.
        kafka_start_ended = threading.Event()

        def start_kafka() -> None:
            try:
                self.kafka.start()
            except BaseException as exc:
                errors.append(exc)
            finally:
                kafka_start_ended.set()

        # The JVM broker is the slow part: boot it while PostgreSQL and SMTP come up.
        kafka_thread = threading.Thread(target=start_kafka, name="crossgen-kafka-start")
        say(f"infra: starting kafka ({self.kafka.mode}), postgres ({self.postgres.mode}), smtp…")
        try:
            kafka_thread.start()
            self.postgres.start()
            self.smtp.start()
            kafka_start_ended.wait()
            if errors:
                raise errors[0]
        except BaseException:
            self.stop()  # also cancels a Kafka start still running in the thread
            kafka_start_ended.wait(30)
            self.kafka.stop()  # in case the thread created something after the first stop
            raise
        say(f"infra: all up in {time.monotonic() - t0:.1f}s")

    def stop(self) -> None:
        """Stop everything; idempotent. Ctrl-C during stop still lets the other parts stop."""
        if self._stopping:
            return
        self._stopping = True
        t0 = time.monotonic()
        steps = (
            ("smtp", self.smtp.stop),
            ("kafka", self.kafka.stop),
            ("postgres", self.postgres.close),
        )
        try:
            stop_each("infra", steps)
        finally:
            self._restore_signal_handlers()
            atexit.unregister(self.stop)
            say(f"infra: stopped in {time.monotonic() - t0:.1f}s")

    def _install_signal_handlers(self) -> None:
        # Python only lets the main thread set handlers; elsewhere the caller must stop() us.
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_handlers = take_over(self._on_signal)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # KeyboardInterrupt, not SystemExit: pytest and the demo runner both treat it as
        # "abort now" and unwind through every context manager (which stops the infra). A
        # signal that comes while it stops is ignored: the stop runs to its end.
        # Said once: Ctrl-C pressed again and again while the services stop is no news.
        if not self._stopping:
            if not self._signalled:
                say(f"infra: got signal {signal.Signals(signum).name}, shutting down…")
            self._signalled = True
            interrupt(signum, frame)
