"""An SMTP server that keeps every mail in memory, so tests can assert on real deliveries."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cached_property

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from uvicorn.loops.auto import auto_loop_factory

from ._common import Managed, free_port, say


@dataclass(frozen=True)
class ReceivedMail:
    envelope_from: str
    rcpt_tos: list[str]
    raw: bytes
    # time.time() when the sink accepted it: the end of a latency measured from outside.
    received_at: float

    @cached_property
    def message(self) -> EmailMessage:
        """Parsed when first asked for: a sink taking thousands of mails (the pipeline benchmark)
        would otherwise parse each in the middle of the run it measures."""
        message = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # policy.default always builds EmailMessage
        return message


class SmtpSink(Managed):
    """aiosmtpd on 127.0.0.1 (own thread and event loop); `fail_next()` simulates outages."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self._host = host
        self._port = port or free_port()
        self._received: list[ReceivedMail] = []
        self._changed = threading.Condition()
        self._failures: list[int] = []  # reply codes for the next DATA commands
        self._controller: Controller | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._changed:
            return list(self._received)

    def start(self) -> None:
        t0 = time.monotonic()
        self._controller = Controller(
            _Handler(self),
            # The services' loop, as uvicorn picks it (uvloop where installed): on uvloop the
            # sink spends about a sixth less CPU a mail.
            loop=auto_loop_factory()(),
            hostname=self._host,
            port=self._port,
            server_hostname="crossgen-smtp-sink",  # skips a possibly slow getfqdn()
            enable_SMTPUTF8=True,
        )
        self._controller.start()
        say(f"smtp: sink listening on {self._host}:{self._port} in {time.monotonic() - t0:.1f}s")

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def clear(self) -> None:
        with self._changed:
            self._received.clear()

    def fail_next(self, n: int = 1, code: int = 451) -> None:
        """Reject the next `n` messages at DATA with `code` (4xx transient, 5xx permanent)."""
        with self._changed:
            self._failures.extend([code] * n)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least `count` mails arrived; TimeoutError lists what did arrive."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= count, timeout):
                got = [(m.rcpt_tos, m.message["Subject"]) for m in self._received]
                raise TimeoutError(f"expected {count} mail(s) in {timeout}s, got {len(got)}: {got}")
            return list(self._received)

    def _next_failure(self) -> int | None:
        with self._changed:
            return self._failures.pop(0) if self._failures else None

    def _add(self, mail: ReceivedMail) -> None:
        with self._changed:
            self._received.append(mail)
            self._changed.notify_all()


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received_at = time.time()  # before parsing: the sink's own work is not the sender's
        if code := self._sink._next_failure():
            return f"{code} Rejected on request (SmtpSink.fail_next)"
        raw = envelope.original_content or b""
        sender = envelope.mail_from or ""
        self._sink._add(ReceivedMail(sender, list(envelope.rcpt_tos), raw, received_at))
        return "250 OK"
