"""SIGTERM and SIGHUP end a run as Ctrl-C does: KeyboardInterrupt in the main thread, never lost.

A signal handler's exception is raised wherever the main thread is. If that is a finalizer (a
``__del__`` or a weakref callback that garbage collection runs at any moment), Python prints it
as "Exception ignored in" and carries on as if no signal had come: a demo or a test run that a
SIGTERM should have stopped keeps its servers up. Such a lost interrupt is raised again, once the
finalizer has returned.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

# SIGHUP too: closing the terminal of a demo must not leave a broker behind.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_AGAIN_AFTER = 0.1  # seconds


def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """A handler for ``signal.signal``: KeyboardInterrupt, raised again if a finalizer drops it."""
    hook = sys.unraisablehook
    if not isinstance(hook, _RaiseLostInterrupt):
        hook = sys.unraisablehook = _RaiseLostInterrupt(hook)
    hook.signum = signum
    raise KeyboardInterrupt


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
