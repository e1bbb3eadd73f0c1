"""Programs inside a host's namespace: start, wait until ready, read their logs, stop.

A program is started like `ip netns exec` would: in the host's network namespace and in a
private mount namespace with /sys remounted, so `ip link` and /sys/class/net inside show the
host's own interfaces; a throwaway thread enters them and starts the program (`popen_in`),
which is safe in a process with threads. stdout and stderr go to log files (Python
children unbuffered), and readiness is polled against a deadline (a TUN appears, a port is
bound), never slept for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpnsim import names
from vpnsim.errors import Finding, HarnessError
from vpnsim.net import namespace
from vpnsim.net.namespace import CLONE_NEWNS, NETNS_DIR

CLONE_FS = 0x00000200
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
MNT_DETACH = 2
POLL_INTERVAL = 0.002

_libc = ctypes.CDLL(None, use_errno=True)


class ProgramFailed(Finding, RuntimeError):
    """The program under test exited or never became ready: a finding, with its stderr."""

    def __init__(self, program: Program, why: str) -> None:
        self.program = program
        self.why = why
        tail = program.stderr_tail()
        detail = f"\n--- last lines of {program.stderr_path} ---\n{tail}" if tail else ""
        super().__init__(f"{program.label}: {why}{detail}")


@dataclass
class Program:
    """A process started in a host's namespace."""

    host: str
    ns: str
    argv: tuple[str, ...]
    pid: int
    stdout_path: Path
    stderr_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.host}: {' '.join(self.argv)} (pid {self.pid})"

    def exit_code(self) -> int | None:
        """None while running; the exit status (negative: killed by that signal) after."""
        if self.popen is not None:
            return self.popen.poll()
        return None if is_alive(self.pid) else -1

    def running(self) -> bool:
        return self.exit_code() is None

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def stderr_tail(self, lines: int = 15) -> str:
        return "\n".join(self.stderr().splitlines()[-lines:])

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `ready` until true; returns seconds waited. Raises ProgramFailed otherwise."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            if ready():
                return time.monotonic() - start
            code = self.exit_code()
            if code is not None:
                raise ProgramFailed(self, f"exited with status {code} before {what}")
            if time.monotonic() > deadline:
                raise ProgramFailed(self, f"{what} did not happen within {timeout:g} s")
            time.sleep(POLL_INTERVAL)

    def wait_settled(self, timeout: float = 1.0) -> bool:
        """Wait until the program has exited or sits waiting for input with nothing unread
        on its sockets (seen twice, POLL_INTERVAL apart): whatever it was sent has had
        its effect, a crash included. False if it is still busy after `timeout`."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < 2:
            if not self.running():
                return True
            calm = calm + 1 if settled(self.pid) else 0
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return True

    def signal(self, sig: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def stop(self, timeout: float = 1.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        self.signal(signal.SIGTERM)
        if self.popen is not None:
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                return self.popen.wait()
        kill_and_wait([self.pid], timeout)
        return self.exit_code()


def start(
    host: str,
    ns: str,
    argv: Sequence[str],
    log_dir: Path,
    *,
    log_name: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Program:
    """Start `argv` inside namespace `ns`; stdout/stderr go to `log_dir/<log_name>.out|.err`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = log_name or f"{host}-{Path(argv[0]).name}"
    stdout_path = log_dir / f"{stem}.out"
    stderr_path = log_dir / f"{stem}.err"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    try:
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            popen = popen_in(
                ns,
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=full_env,
                # Own session: the program outlives `vpnsim lab up` and ignores the
                # terminal's Ctrl-C; teardown kills it by the namespace it runs in.
                start_new_session=True,
            )
    except OSError as exc:
        raise ProgramFailed(
            Program(host, ns, tuple(argv), -1, stdout_path, stderr_path),
            f"cannot start: {exc.strerror}",
        ) from exc
    return Program(host, ns, tuple(argv), popen.pid, stdout_path, stderr_path, popen)


def popen_in(ns: str, argv: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(argv, **options)` with the child inside namespace `ns`, as
    `ip netns exec` runs it: in the network namespace, and in a private mount namespace with
    that namespace's sysfs on /sys (so `ip link` and /sys/class/net show its interfaces).

    A throwaway thread enters the namespaces and starts the child: setns and
    unshare(CLONE_NEWNS) change the calling thread alone, and a child inherits its thread's.
    No Python code runs between fork and exec (a `preexec_fn`, unsafe in a process with
    threads, as the capture threads are), and no helper program starts in front of `argv`
    (a Python one would cost ~10 ms a program). Raises HarnessError if `ns` cannot be
    entered, and what Popen raises if `argv` cannot be run."""
    outcome: list[subprocess.Popen[bytes] | BaseException] = []

    def launch() -> None:
        try:
            _enter_for_children(ns)
            outcome.append(subprocess.Popen(list(argv), **options))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    launcher = threading.Thread(target=launch, name=f"start in {ns}", daemon=True)
    launcher.start()
    launcher.join()  # the thread ends with it its namespaces: nothing to restore
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _enter_for_children(ns: str) -> None:
    """The calling thread (a throwaway one) joins `ns` and a private mount namespace."""
    try:
        nsfd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            namespace.setns(nsfd, namespace.CLONE_NEWNET)
        finally:
            os.close(nsfd)
    except OSError as exc:
        raise HarnessError(f"cannot enter network namespace {ns}: {exc.strerror}") from None
    # Best effort, as `ip netns exec`: without it the program still runs in the namespace.
    # CLONE_FS too: the thread stops sharing its root and cwd with the others (the kernel
    # implies it; named so the reader knows the other threads are untouched).
    hosts = names.hosts_mount(ns)
    if _libc.unshare(CLONE_NEWNS | CLONE_FS) == 0:
        _libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None)
        if _libc.umount2(b"/sys", MNT_DETACH) == 0:
            _libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None)
    elif hosts is not None:
        raise HarnessError(f"cannot give {ns} its hosts file: no private mount namespace")
    # The lab's names (names.py): without them a TLS client would fail on a name, not on us.
    if hosts is not None and _libc.mount(hosts, b"/etc/hosts", None, MS_BIND, None) != 0:
        raise HarnessError(f"cannot mount {ns}'s hosts file over /etc/hosts")


def is_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # A zombie is dead for our purposes: it only waits for its parent to reap it.
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def settled(pid: int) -> bool:
    """Whether `pid` and its descendants all sleep (in a wait for input, a timer or a lock),
    none running, with no unread data on their IP sockets. A dead `pid` counts as settled."""
    inodes: set[str] = set()
    for member in process_tree(pid):
        try:
            for task in os.listdir(f"/proc/{member}/task"):
                stat = _read(Path(f"/proc/{member}/task/{task}/stat"))
                if stat and stat.rsplit(")", 1)[1].split()[0] not in ("S", "Z"):
                    return False
            for fd in os.listdir(f"/proc/{member}/fd"):
                target = os.readlink(f"/proc/{member}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # it exited meanwhile
    return not inodes or not any(_unread(pid, table, inodes) for table in SOCKET_TABLES)


SOCKET_TABLES = ("udp", "udp6", "tcp", "tcp6", "raw", "raw6")


def _unread(pid: int, table: str, inodes: set[str]) -> bool:
    """Whether one of the sockets `inodes` in /proc/<pid>/net/<table> has data queued to read
    (the table shows the network namespace of `pid`)."""
    try:
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()  # ... tx_queue:rx_queue ... inode
                if fields[9] in inodes and int(fields[4].split(":")[1], 16):
                    return True
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        pass
    return False


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (threads' children included); one that exits meanwhile, or
    whose /proc entries cannot be read, is listed without its children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                children = _read(Path(f"/proc/{current}/task/{task}/children"))
                todo += [int(child) for child in children.split()]
        except OSError:
            continue
    return found


def kill_and_wait(pids: Sequence[int], timeout: float = 2.0) -> list[int]:
    """SIGKILL each pid and wait until gone; returns the pids still alive after `timeout`."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining:
        for pid in list(remaining):
            with contextlib.suppress(ChildProcessError):  # reap our children: no zombies
                os.waitpid(pid, os.WNOHANG)
            if not is_alive(pid):
                remaining.remove(pid)
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.001)
    return remaining


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def port_bound(pid: int, port: int, proto: str = "udp") -> bool:
    """True once a socket on `port` exists in the network namespace of `pid`.

    /proc/<pid>/net shows the namespace of that process, so no setns is needed.
    For TCP only listening sockets count (state 0A).
    """
    return _bound(f"/proc/{pid}/net", port, proto)


def port_bound_in(ns: str, port: int, proto: str = "udp") -> bool:
    """Like `port_bound`, for namespace `ns` whatever runs there (read from inside it)."""
    with namespace.entered(ns):
        # thread-self: /proc/self/net would show the namespace of the main thread.
        return _bound("/proc/thread-self/net", port, proto)


def _bound(net_dir: str, port: int, proto: str) -> bool:
    for table in (proto, f"{proto}6"):
        try:
            with open(f"{net_dir}/{table}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    if local_port == port and (proto == "udp" or fields[3] == "0A"):
                        return True
        except (FileNotFoundError, ProcessLookupError):
            return False
    return False
