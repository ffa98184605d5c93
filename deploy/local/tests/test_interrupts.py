"""A stop signal's KeyboardInterrupt that a finalizer swallowed is raised again."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

LOST_IN_A_FINALIZER = textwrap.dedent(
    """
    import signal, time
    from crossgen_local.interrupts import interrupt

    signal.signal(signal.SIGTERM, interrupt)

    class Finalised:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # its handler raises here, inside __del__

    Finalised()
    print("ran on", flush=True)
    time.sleep(30)
    print("never stopped", flush=True)
    """
)


def test_an_interrupt_lost_in_a_finalizer_comes_again() -> None:
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", LOST_IN_A_FINALIZER], capture_output=True, text=True, timeout=60
    )
    output = child.stdout + child.stderr
    assert "Exception ignored in" in output  # Python dropped the first one
    assert "ran on" in output and "never stopped" not in output
    assert child.returncode == -signal.SIGINT, output  # how Python ends on a KeyboardInterrupt
    assert time.monotonic() - started < 20  # the sleep ended, not waited out
