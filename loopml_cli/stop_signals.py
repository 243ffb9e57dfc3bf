"""SIGINT and SIGTERM stop a command, even when they arrive inside a finaliser.

Python runs a signal's handler in the main thread at the next bytecode; when that bytecode
belongs to a weakref callback or a ``__del__`` (the garbage collector runs them anywhere), the
KeyboardInterrupt it raises is "ignored" and the command goes on as if no signal had come (seen
in CI: a SIGINT during Lightning training, lost in ``WeakSet``'s callback, left the run
training until it was killed). Here such a lost stop is sent again, from another thread, so
that it lands in ordinary code.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("loopml_cli")

RESEND_AFTER_S = 0.2  # the finaliser that swallowed the stop has returned by then


class Stopped(BaseException):
    """SIGTERM outside a flow run (inside one, Prefect raises its TerminationSignal)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise Stopped(signum)


def signal_of(exc: BaseException | None) -> int | None:
    """The signal a stop exception stands for (None for anything else)."""
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(exc, Stopped):
        return exc.signum
    from prefect.exceptions import TerminationSignal

    if isinstance(exc, TerminationSignal):
        return exc.signal
    return None


def _resend(signum: int) -> None:
    threading.Timer(RESEND_AFTER_S, signal.raise_signal, (signum,)).start()


def _unraisable_hook(previous: Callable[[Any], object]) -> Callable[[Any], None]:
    def hook(unraisable: Any) -> None:
        signum = signal_of(unraisable.exc_value)
        if signum is None:
            previous(unraisable)
            return
        where = getattr(unraisable.object, "__qualname__", repr(unraisable.object))
        log.debug("signal %d was lost in %s; sending it again", signum, where)
        _resend(signum)

    return hook


@contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM raises :class:`Stopped` (SIGINT keeps Python's KeyboardInterrupt), and a stop a
    finaliser swallowed is delivered again; both restored on the way out."""
    on_sigterm = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable_hook(previous_hook)
    try:
        yield
    finally:
        # What runs after the session (`loopml serve`'s uvicorn re-raises the SIGTERM it
        # caught once it has shut down) ends by the signal, not by a traceback.
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, on_sigterm)
