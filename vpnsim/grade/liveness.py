"""Whether a lab's end (a student's program or the reference) is alive, done, or stuck.

Waits end on what the programs did, not on how long the machine took: the CPU seconds they
used, the seconds they slept, the system call they block in. An end that will not come up
is given up on when it exits, waits for input that will never come (blocked in recvfrom(),
say), uses UP_CPU s of CPU, or sleeps UP_TIMEOUT s; wall clocks are only backstops.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from vpnsim import proc
from vpnsim.grade.sides import Side
from vpnsim.proc import process_tree

UP_TIMEOUT = 10.0  # the "no TUN within 10 s": seconds an end may sleep before it
UP_CPU = 3.0  # CPU seconds an end may use before its TUN is up (a SEED client: 0.6-0.9)
UP_WALL = 60.0  # backstop
BUSY = "it kept computing"  # ... whether UP_CPU or UP_WALL stopped the wait
EXIT_GRACE = 15.0  # for a jail to report the exit of a program whose processes are gone
POLL = 0.02


# -- the lab's ends, as processes --------------------------------------------------------


def own_pids(side: Side) -> list[int]:
    """The processes of `side`'s program, without the jail's own (its supervisor and init
    run the grader's code, not the student's)."""
    members = process_tree(side.program.pid)
    if not side.jail:
        return members
    jail = [arg.encode() for arg in side.program.argv]
    own = []
    for pid in members:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        jailer = argv == jail or any(arg.startswith(b"vpnsim.grade.") for arg in argv[:3])
        if not jailer and not _exiting(pid):
            own.append(pid)
    return own


PF_EXITING = 0x4  # linux/sched.h: the process is in do_exit()


def _exiting(pid: int) -> bool:
    """Dead, or on its way out (a zombie, or exiting: it closes its files, its TUN goes)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)


def ended(side: Side) -> bool:
    """Whether `side`'s program is over: exited, or (jailed) its own processes are all gone
    while the jail winds down. Only for a program known to have started (it is up)."""
    return not side.program.running() or (bool(side.jail) and not own_pids(side))


def exit_reason(side: Side, grace: float = EXIT_GRACE) -> str | None:
    """`side.exit_reason()`, read now; when the program is over but its jail has not
    reported the exit yet, once it has (within `grace` seconds)."""
    deadline = time.monotonic() + grace
    while side.program.running() and ended(side) and time.monotonic() < deadline:
        time.sleep(POLL)
    return side.exit_reason()


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used by `pids` and their reaped children."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / _TICK


# x86_64 system calls that wait for input with no timeout: (name, index of the timeout
# argument that must be NULL, or -1 for "never times out"). Others: not known to wait forever.
_UNTIMED: dict[int, tuple[str, int]] = {
    0: ("read", -1),
    17: ("pread64", -1),
    19: ("readv", -1),
    43: ("accept", -1),
    45: ("recvfrom", -1),
    47: ("recvmsg", -1),
    61: ("wait4", -1),
    247: ("waitid", -1),
    288: ("accept4", -1),
    34: ("pause", -1),
    130: ("rt_sigsuspend", -1),
    23: ("select", 4),
    270: ("select", 4),  # pselect6
    271: ("poll", 2),  # ppoll
    441: ("epoll_pwait2", 3),
    202: ("futex", 3),
}
_NO_TIMEOUT_MS = {7: ("poll", 2), 232: ("epoll_wait", 3), 281: ("epoll_wait", 3)}  # -1: none
_MACHINE = platform.machine()


def waits_forever(pid: int) -> str | None:
    """The system call every thread of `pid` is blocked in without a timeout (its name),
    or None (running, sleeping on a timer, or not known to wait forever)."""
    if _MACHINE != "x86_64":
        return None
    names = []
    try:
        for task in sorted(os.listdir(f"/proc/{pid}/task"), key=int):  # the main thread first
            fields = Path(f"/proc/{pid}/task/{task}/syscall").read_text().split()
            if len(fields) < 7 or not fields[0].isdigit():
                return None  # "running", or blocked outside a system call
            number, args = int(fields[0]), [int(a, 16) for a in fields[1:7]]
            if number in _UNTIMED:
                name, timeout = _UNTIMED[number]
                if timeout >= 0 and args[timeout] != 0:
                    return None
            elif number in _NO_TIMEOUT_MS:
                name, timeout = _NO_TIMEOUT_MS[number]
                if args[timeout] & 0xFFFFFFFF != 0xFFFFFFFF:
                    return None
            else:
                return None
            names.append(name)
    except (OSError, ValueError):
        return None
    return names[0] if names else None


def stuck(side: Side) -> str | None:
    """Why `side` will not get any further on its own: it waits for input that nothing will
    send (blocked in recvfrom(), say, with nothing unread), or it keeps computing; None
    while it may still get somewhere (and once it exited: see exit_reason)."""
    program = side.program
    if not program.running():
        return None
    own = own_pids(side)
    if cpu_seconds(own) >= UP_CPU:
        return BUSY
    if not own or not proc.settled(program.pid):
        return None
    calls = [waits_forever(pid) for pid in own]
    if not calls or not all(calls) or not proc.settled(program.pid):
        return None
    return f"it waits in {calls[0]}() for input that nothing sends it"


def quiet(side: Side) -> bool:
    """Exited, or asleep with nothing unread on its sockets."""
    return not side.program.running() or proc.settled(side.program.pid)
