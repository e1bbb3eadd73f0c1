"""SIGTERM handled like Ctrl-C: an exception that unwinds the with/finally teardown paths.

CI runners, `timeout`, systemd and Kubernetes stop a program with SIGTERM, whose default
action ends the process at once, teardown or not. A command that owns labs installs
`raise_on_signals()`: SIGTERM and SIGINT then raise `Interrupted` (a KeyboardInterrupt, so
every `except Exception` lets it pass) in the main thread, once. Later ones are only
recorded: a second Ctrl-C must not break off the teardown the first one started.
"""

from __future__ import annotations

import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CoroutineType, FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_received: list[int] = []  # the signals this process was told to stop by, in order
_on_interrupt: list[Callable[[], None]] = []  # run in the handler, before the raise
_armed = [True]  # whether a signal raises now (else `armed()` raises it on entry)


class Interrupted(KeyboardInterrupt):
    """The process was told to stop by `signum` (SIGTERM or SIGINT)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)  # args: pickled across processes as they are
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return exit_status(self)

    def __str__(self) -> str:
        return f"interrupted by {signal_name(self.signum)}"


def signal_of(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: an Interrupted's, else SIGINT (Python's own)."""
    return exc.signum if isinstance(exc, Interrupted) else signal.SIGINT


def exit_status(exc: BaseException) -> int:
    """128 + the signal, as a shell reports a program a signal ended: 130, 143."""
    return 128 + signal_of(exc)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def received() -> int | None:
    """The first signal this process was told to stop by, if any."""
    return _received[0] if _received else None


def _handle(signum: int, frame: FrameType | None) -> None:
    first = not _received
    _received.append(signum)
    if not first or not _armed[0]:  # already unwinding (let the teardown finish), or idle
        return
    _quiet_abandoned_coroutines()
    for callback in list(_on_interrupt):
        callback()
    raise Interrupted(signum)


def _quiet_abandoned_coroutines() -> None:
    """The exception raised in the middle of a netlink call (pyroute2 runs an asyncio event
    loop inside) abandons its coroutine, and the loop if it was being made. Collected later,
    they complain: never awaited, loop closed, loop half made. Expected once interrupted, so
    not shown; anything else still is."""
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    sys.unraisablehook = _unraisable


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    thing = unraisable.object
    module = getattr(thing, "__module__", None) or ""
    if isinstance(thing, CoroutineType) or module.startswith("asyncio"):
        return
    sys.__unraisablehook__(unraisable)


def raise_on_signals(armed: bool = True) -> None:
    """From now on, SIGTERM and SIGINT raise `Interrupted` in the main thread (once).

    Not `armed`: only recorded, until `armed()` (a pool's worker: a signal while it waits
    for work must not end it with a traceback; it is told to stop in its next job)."""
    _armed[0] = armed
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handle)


@contextmanager
def armed() -> Iterator[None]:
    """Signals raise inside; one received before raises `Interrupted` on entry."""
    before, _armed[0] = _armed[0], True  # armed first: a signal from now on raises
    try:
        if _received:
            raise Interrupted(_received[0])
        yield
    finally:
        _armed[0] = before


def ignore_signals() -> None:
    """SIGTERM and SIGINT ignored: for a helper process its parent stops (a queue's server)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


@contextmanager
def calling(callback: Callable[[], None]) -> Iterator[None]:
    """Run `callback` in the signal handler, before `Interrupted` is raised, while inside:
    to tell threads (which never see the exception) to stop."""
    _on_interrupt.append(callback)
    try:
        yield
    finally:
        _on_interrupt.remove(callback)
