"""A stop that lands in a finaliser is not lost: the signal is sent again and the command
stops in ordinary code (CI once saw a SIGINT swallowed by ``WeakSet``'s callback)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import signal, sys, time, weakref
    from contextlib import nullcontext
    from loopml_cli.stop_signals import Stopped, stop_signals

    # As from a terminal: a job started with `&` (CI's, say) inherits SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    class Thing:
        pass

    def finaliser(_ref):  # the handler runs in here, so its exception is "ignored"
        signal.raise_signal({signum})
        sum(range(10_000))

    with stop_signals() if sys.argv[1] == "guarded" else nullcontext():
        if sys.argv[1] != "guarded":
            signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(Stopped(s)))
        try:
            thing = Thing()
            ref = weakref.ref(thing, finaliser)
            del thing
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.01)
            print("went on")
        except (KeyboardInterrupt, Stopped) as exc:
            print("stopped by", type(exc).__name__)
    """
)


def _run(signum: int, mode: str) -> subprocess.CompletedProcess[str]:
    script = _SCRIPT.format(signum=int(signum))
    return subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "Stopped")],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_stop_swallowed_by_a_finaliser_is_delivered_again(signum: int, raised: str) -> None:
    plain = _run(signum, "plain")  # the loss itself, without the guard
    assert plain.stdout.strip() == "went on", plain
    assert "Exception ignored" in plain.stderr

    guarded = _run(signum, "guarded")
    assert guarded.stdout.strip() == f"stopped by {raised}", guarded
    assert "Exception ignored" not in guarded.stderr and "Traceback" not in guarded.stderr
