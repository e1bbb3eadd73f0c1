"""A signal that reaches the jail at the instant one of its processes is about to block (say,
preempted there) still reaches the program. Python runs a signal handler only between
bytecodes: a handler caught after the last check, just before a blocking wait() or select(),
would wait with that call, until the program ended by itself (the SIGTERM lost).

gdb holds the process at the entry of its first blocking call after the jail's start: the
instant, made as long as the test needs. The test sends SIGTERM, waits until the kernel has
it pending for the held process, and lets gdb go: the signal is then delivered right there.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.test_grade_jail import LIMITS, TIMEOUT, Jails
from tests.lab.test_grade_jail import confined_lab as confined_lab  # a fixture
from tests.lab.test_grade_jail import jails as jails  # a fixture
from vpnsim import proc

pytestmark = pytest.mark.lab

# Where a process can block until something happens; the jail's code calls one of them.
BLOCKING_CALLS = (
    "wait", "waitpid", "wait4", "waitid", "sigwaitinfo", "sigtimedwait", "sigsuspend",
    "pause", "select", "pselect", "poll", "ppoll", "epoll_wait",
)  # fmt: skip
SILENT = "import time; time.sleep(30)"  # no output, which would wake the supervisor too
# The supervisor's command waits for this FIFO before it runs, until gdb is attached.
WRAPPER = ("sh", "-c", 'read go < "$0" && exec "$@"')


def _gdb_script(held: str, attached: Path, holding: Path, release: Path) -> str:
    """Attached to the waiting wrapper: run the supervisor up to its fork of init; for init,
    follow it up to its fork of the program; then stop at the first blocking call, and
    detach when `release` is written to."""
    lines = [
        "set pagination off",
        "set confirm off",
        "set debuginfod enabled off",
        "handle SIGTERM SIGINT SIGHUP SIGQUIT SIGCHLD SIGPIPE nostop noprint pass",
        "set detach-on-fork on",
        f"set follow-fork-mode {'child' if held == 'init' else 'parent'}",
        "catch fork",
        f"shell echo attached > {attached}",
        "continue",  # the wrapper execs the supervisor, which forks init
    ]
    if held == "init":  # from init (followed), which forks the program: stay with init
        lines += ["continue", "set follow-fork-mode parent"]
    lines += [
        "delete",
        *(f"break {call}" for call in BLOCKING_CALLS),
        "continue",
        "backtrace 1",
        f"shell echo holding > {holding}",
        f"shell read go < {release}",
        "delete",
        "detach",
        "quit",
    ]
    return "\n".join(lines) + "\n"


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _read_fifo(path: Path, what: str, log: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready = select.select([fd], [], [], TIMEOUT)[0]
        assert ready, f"gdb never got to {what}:\n{log.read_text()}"
        return os.read(fd, 64).decode()
    finally:
        os.close(fd)


def _write_fifo(path: Path, text: str, stack: contextlib.ExitStack) -> None:
    """Open without blocking, write, and keep it open until the test ends: a FIFO's data is
    dropped when no one has it open, and its reader may not have come yet."""
    fd = os.open(path, os.O_RDWR)
    stack.callback(os.close, fd)
    os.write(fd, text.encode())


def _pending(pid: int, sig: int) -> bool:
    """Whether `sig`, sent to process `pid`, waits in the kernel for it (ShdPnd)."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":\t", 1) for line in f.read().splitlines())
    return bool(int(fields["ShdPnd"], 16) & 1 << (sig - 1))


def _child_of(pid: int) -> int:
    (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(child)


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {TIMEOUT:g} s"
        time.sleep(proc.POLL_INTERVAL)


@pytest.mark.parametrize("held", ["supervisor", "init"])
def test_a_sigterm_at_the_instant_before_a_blocking_wait_stops_the_program(
    jails: Jails, tmp_path: Path, held: str
) -> None:
    start, attached, holding, release = (
        _fifo(tmp_path / name) for name in ("start", "attached", "holding", "release")
    )
    log = tmp_path / "gdb.log"
    script = tmp_path / "gdb.cmd"
    script.write_text(_gdb_script(held, attached, holding, release))
    wrapper = (*WRAPPER, str(start))
    program = jails.start_argv(["python3", "-c", SILENT], "U", LIMITS, None, wrapper)
    with open(log, "w") as out:
        gdb = subprocess.Popen(
            ["gdb", "-q", "-batch", "-x", str(script), "-p", str(program.pid)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    with contextlib.ExitStack() as stack:
        stack.callback(gdb.wait)
        stack.callback(gdb.kill)  # runs first; nothing to kill once gdb has quit
        _read_fifo(attached, "the wrapper", log)
        _write_fifo(start, "go\n", stack)
        _read_fifo(holding, f"a blocking call of {held}", log)
        target = program.pid if held == "supervisor" else _child_of(program.pid)

        program.signal(signal.SIGTERM)  # the supervisor's, which forwards it to init
        _until(lambda: _pending(target, signal.SIGTERM), f"SIGTERM pending for {held}")
        _write_fifo(release, "go\n", stack)
        assert gdb.wait(TIMEOUT) == 0, log.read_text()

    assert program.popen is not None
    assert program.popen.wait(TIMEOUT) == 128 + signal.SIGTERM, log.read_text()
