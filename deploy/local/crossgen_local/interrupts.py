"""Ctrl-C, SIGTERM and SIGHUP end a run alike: KeyboardInterrupt in the main thread, never lost.

A signal handler's exception is raised wherever the main thread is. If that is a finalizer (a
``__del__`` or a weakref callback that garbage collection runs at any moment), Python prints it
as "Exception ignored in" and carries on as if no signal had come: a demo or a test run that a
signal should have stopped keeps its servers up. Such a lost interrupt is raised again, once the
finalizer has returned.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

# SIGHUP too: closing the terminal of a demo must not leave a broker behind.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_AGAIN_AFTER = 0.1  # seconds

Handler = Callable[[int, FrameType | None], object] | int | None


def take_over(handler: Callable[[int, FrameType | None], object]) -> dict[int, Handler]:
    """Give ``handler`` every stop signal that the process does not ignore, and return the
    handlers it replaced. An ignored one stays ignored: nohup's SIGHUP, and the SIGINT a shell
    ignores for a job it runs in the background, are the caller's choice."""
    return {
        sig: signal.signal(sig, handler)
        for sig in STOP_SIGNALS
        if signal.getsignal(sig) is not signal.SIG_IGN
    }


def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """A handler for ``signal.signal``: KeyboardInterrupt naming the signal, raised again if a
    finalizer drops it. A plain one, so that Python ends as after Ctrl-C where none catches it."""
    hook = sys.unraisablehook
    if not isinstance(hook, _RaiseLostInterrupt):
        hook = sys.unraisablehook = _RaiseLostInterrupt(hook)
    hook.signum = signum
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_stoppable(main: Callable[[], object], said: str = "stopped") -> None:
    """Run ``main``; if a stop signal ends it, say ``said`` and end the process by that signal
    (Ctrl-C's, if none did) with its default action: the shell sees 130, 143 or 129, and a
    script that ran it stops too."""
    try:
        main()
    except KeyboardInterrupt as stop:
        # The signal ``interrupt`` named; Ctrl-C's for Python's own KeyboardInterrupt.
        signum = signal.Signals.__members__.get(str(stop), signal.SIGINT)
        with contextlib.suppress(OSError):  # its terminal may be gone (SIGHUP)
            print(f"\n{said}", flush=True)
        with contextlib.suppress(OSError):  # the default action ends the process unflushed
            sys.stderr.flush()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        raise SystemExit(128 + signum) from None  # only if the signal is blocked


class _RaiseLostInterrupt:
    """``sys.unraisablehook``: report as before; a dropped KeyboardInterrupt comes again."""

    def __init__(self, previous: Callable[[sys.UnraisableHookArgs], object]) -> None:
        self.previous = previous
        self.signum: int = signal.SIGTERM

    def __call__(self, unraisable: sys.UnraisableHookArgs) -> None:
        self.previous(unraisable)
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            # As a real signal, so that it also ends a sleep or a wait the main thread is in by
            # then; from another thread a moment later, once this hook and the finalizer are
            # done (an exception raised in the hook itself would be dropped for good).
            again = threading.Timer(_AGAIN_AFTER, self._send_again)
            again.daemon = True
            again.start()

    def _send_again(self) -> None:
        main = threading.main_thread().ident
        # Not once its owner has put the default action back: that would end the process.
        if main is not None and callable(signal.getsignal(self.signum)):
            signal.pthread_kill(main, self.signum)
