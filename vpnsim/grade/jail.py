"""Run an untrusted student program as root, but only inside its lab host's namespaces.

`jailed_argv` puts `python -m vpnsim.grade.jail OPTIONS -- ARGV` in front of a student's
command; `Lab.start` runs that in the host's network namespace, which must be *confined*
(owned by a user namespace of its own: `build_lab(confined=...)`), and the jail then:

1. makes a cgroup for the jail (memory, pids and CPU bandwidth limits; cgroup v2 or v1,
   whichever this machine has), or, if it cannot, limits each process's address space and
   watches the number of processes itself (`limits_mechanism()` says which);
2. unshares a pid namespace and forks its init (pid 1), which joins the cgroup and builds a
   root of the jail's own (`sandbox`: the system's programs, a little of /etc, the Python
   environment of the course, the workdir; a /proc, /dev and tmpfs of its own);
3. init forks the student's program (pid 2), which enters the host's user namespace, keeps
   only a few capabilities there, loads a seccomp filter (`confine`) and execs with a
   minimal environment (`student_environment`); init then drops every capability, reaps
   orphans, forwards signals and exits with the program's status. When init exits the
   kernel kills whatever is left in the pid namespace.

The supervisor (the process `Lab.start` started, outside the pid namespace) forwards
SIGTERM/SIGINT/SIGHUP/SIGQUIT, copies the program's stdout and stderr into its own up to
`log_bytes` each (then a marker, and the rest is dropped), kills the jail at `wall_seconds`,
removes the cgroup and exits with the program's status (128+N if it was killed by signal N,
like a shell). Killing the supervisor kills the jail (init has PR_SET_PDEATHSIG);
`jail_cleanup` then removes the cgroup.

A forwarded signal is never lost: it kills the supervisor before it has handlers, ends the
jail before the program starts, or reaches the program. Python runs a handler only between
bytecodes, so one caught just before a blocking call would wait with it: init keeps these
signals blocked and takes them with sigwaitinfo; the supervisor's select() also watches a
signal wakeup fd.

Standard library only: it starts in front of every student program.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import resource  # here, not where used: after the pivot the grader's Python is not visible
import select
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

from vpnsim.grade.cgroups import (
    CGROUP_ROOT,
    JailLimits,
    Mechanism,
    cgroup_dirs,
    check_name,
    create_cgroups,
    detect_mechanism,
    jail_cleanup,
    join_cgroups,
    limits_mechanism,
    mount_cgroup_filesystems,
    remove_cgroup_dirs,
)
from vpnsim.grade.confine import (
    KEPT_CAPABILITIES,
    capability_mask,
    drop_capabilities,
    enter_user_namespace,
    install_seccomp,
    not_dumpable,
    user_namespace_of_network,
)
from vpnsim.grade.sandbox import (
    CLONE_NEWPID,
    JailError,
    JailView,
    build_sandbox,
    libc,
    syscall,
)

__all__ = [
    "KEPT_CAPABILITIES",
    "JailError",
    "JailLimits",
    "JailRequest",
    "JailView",
    "Mechanism",
    "capability_mask",
    "cgroup_dirs",
    "detect_mechanism",
    "jail_cleanup",
    "jailed_argv",
    "limits_mechanism",
    "main",
    "parse_command_line",
    "student_environment",
]

NO_VIEW = JailView()  # the system's own directories and the workdir, nothing more
NETNS_DIR = "/run/netns"  # the jail runs only in a namespace named there (a lab host's)
PREFIX = "vpnsim-jail: "
EXIT_JAIL_FAILED = 125  # the jail could not be set up (a harness fault, not the student's)
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
WATCHDOG_INTERVAL = 0.02  # seconds between process counts when no pids cgroup limits them
DRAIN_SECONDS = 2.0  # after init's exit, for the killed programs' last output
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
INIT_SIGNALS = (*FORWARDED_SIGNALS, signal.SIGCHLD)  # blocked in init all its life
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PR_SET_PDEATHSIG = 1


def student_environment(workdir: Path, bins: Sequence[Path] = ()) -> dict[str, str]:
    """Every environment variable a jailed program gets, and nothing of the grader's:
    PATH (the course's Python first), HOME (its workdir), LANG, and Python's unbuffered,
    no-bytecode switches (its output reaches the log as it happens; the copy stays clean)."""
    return {
        "PATH": ":".join([*map(str, bins), SYSTEM_PATH]),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass(frozen=True)
class JailRequest:
    """The jail's command line, parsed."""

    name: str
    workdir: Path
    limits: JailLimits
    argv: tuple[str, ...]
    cgroup_root: Path = CGROUP_ROOT
    view: JailView = NO_VIEW


def _check_workdir(workdir: Path) -> None:
    if not workdir.is_absolute() or workdir == Path("/"):
        raise ValueError(f"jail workdir {workdir}: an absolute path other than /")


def jailed_argv(
    argv: Sequence[str],
    workdir: Path,
    limits: JailLimits,
    name: str,
    *,
    cgroup_root: Path | None = None,
    view: JailView = NO_VIEW,
) -> tuple[str, ...]:
    """The command that runs `argv` jailed, in `workdir`: [python, -m, vpnsim.grade.jail, ...,
    --, *argv]. `name` names the jail's cgroup: unique per running jail, see `jail_cleanup`."""
    if not argv:
        raise ValueError("jailed_argv: empty command")
    _check_workdir(workdir)
    check_name(name)
    # --option=value: a value may start with "-" (a name may).
    options = [f"--name={name}", f"--workdir={workdir}"]
    options += [f"--memory-bytes={limits.memory_bytes}", f"--max-processes={limits.max_processes}"]
    options.append(f"--log-bytes={limits.log_bytes}")
    if limits.cpu_seconds is not None:
        options.append(f"--cpu-seconds={limits.cpu_seconds}")
    if limits.wall_seconds is not None:
        options.append(f"--wall-seconds={float(limits.wall_seconds)!r}")
    if limits.cpu_share is not None:
        options.append(f"--cpu-share={float(limits.cpu_share)!r}")
    if cgroup_root is not None:
        options.append(f"--cgroup-root={cgroup_root}")
    for flag, paths in (("bin", view.bins), ("ro", view.read_only), ("hide", view.hidden)):
        for path in paths:
            if not path.is_absolute():
                raise ValueError(f"jail --{flag} {path}: an absolute path")
            options.append(f"--{flag}={path}")
    return (sys.executable, "-m", "vpnsim.grade.jail", *options, "--", *argv)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # Python 3.11 exits here even without exit_on_error
        raise ValueError(message)


def parse_command_line(args: Sequence[str]) -> JailRequest:
    """The inverse of `jailed_argv` (without its first three words). Raises ValueError."""
    if "--" not in args:
        raise ValueError("usage: python -m vpnsim.grade.jail OPTIONS -- COMMAND...")
    split = list(args).index("--")
    parser = _Parser(prog="python -m vpnsim.grade.jail", exit_on_error=False)
    parser.add_argument("--name", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--memory-bytes", type=int, default=JailLimits.memory_bytes)
    parser.add_argument("--max-processes", type=int, default=JailLimits.max_processes)
    parser.add_argument("--log-bytes", type=int, default=JailLimits.log_bytes)
    parser.add_argument("--cpu-seconds", type=int)
    parser.add_argument("--wall-seconds", type=float)
    parser.add_argument("--cpu-share", type=float)
    parser.add_argument("--cgroup-root", type=Path, default=CGROUP_ROOT)
    for flag in ("bin", "ro", "hide"):
        parser.add_argument(f"--{flag}", type=Path, action="append", default=[])
    try:
        opts = parser.parse_args(args[:split])
    except argparse.ArgumentError as exc:
        raise ValueError(str(exc)) from None
    command = tuple(args[split + 1 :])
    if not command:
        raise ValueError("no command after --")
    check_name(opts.name)
    _check_workdir(opts.workdir)
    limits = JailLimits(
        opts.memory_bytes, opts.max_processes, opts.cpu_seconds, opts.wall_seconds,
        opts.cpu_share, opts.log_bytes,
    )  # fmt: skip
    for path in (*opts.bin, *opts.ro, *opts.hide):
        if not path.is_absolute():
            raise ValueError(f"jail path {path}: an absolute path")
    view = JailView(tuple(opts.bin), tuple(opts.ro), tuple(opts.hide))
    return JailRequest(opts.name, opts.workdir, limits, command, opts.cgroup_root, view)


# processes -------------------------------------------------------------------------------


def _set_rlimits(limits: JailLimits, mechanism: Mechanism) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files from SIGXCPU or crashes
    if limits.cpu_seconds is not None:
        cpu = limits.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if mechanism == "rlimit":
        memory = limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


class _Forwarder:
    """Forwards signals to `target`; until there is one, keeps them for it."""

    def __init__(self) -> None:
        self.target: int | None = None
        self.pending: list[int] = []

    def install(self) -> None:
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self._handle)

    def forward_to(self, pid: int) -> None:
        self.target = pid
        while self.pending:
            self._send(self.pending.pop(0))

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        if self.target is None:
            self.pending.append(sig)
        else:
            self._send(sig)

    def _send(self, sig: int) -> None:
        assert self.target is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.target, sig)


def _status_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N if killed by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"{PREFIX}{message}\n".encode(errors="replace"))


def _init(
    request: JailRequest, mechanism: Mechanism, dirs: Sequence[Path], parent_alive: int, userns: int
) -> NoReturn:
    """pid 1 of the jail's pid namespace: sandbox, start the program, reap, forward.

    The signals it forwards (blocked since the supervisor forked it) and SIGCHLD stay blocked
    all its life: what the supervisor forwards before the program runs waits in the kernel
    (a blocked signal is never dropped, not even by pid 1), then `_forward_and_reap` takes
    each. No Python handler runs here: one runs only between bytecodes, so a signal that came
    just before a blocking wait() would wait with it, until the program ended by itself."""
    signal.pthread_sigmask(signal.SIG_BLOCK, INIT_SIGNALS)
    try:
        syscall(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
        if select.select([parent_alive], [], [], 0)[0]:  # EOF: the supervisor died already
            os._exit(EXIT_JAIL_FAILED)
        os.close(parent_alive)
        join_cgroups(dirs)  # before the cgroup filesystem is out of sight
        build_sandbox(request.workdir.resolve(), request.limits.memory_bytes, request.view)
        _set_rlimits(request.limits, mechanism)
    except (OSError, JailError, ValueError) as exc:
        _say(f"cannot set up the jail: {exc}")
        os._exit(EXIT_JAIL_FAILED)
    program = os.fork()
    if program == 0:
        _exec(request, userns)
    os.close(userns)
    try:  # init needs no privilege from here on, and the program may not trace it
        drop_capabilities(frozenset())
        not_dumpable()
    except OSError as exc:
        _say(f"cannot set up the jail: {exc}")
        os._exit(EXIT_JAIL_FAILED)
    _forward_and_reap(program)


def _forward_and_reap(program: int) -> NoReturn:
    """init's loop: pass each forwarded signal on to the program, reap every child (orphans
    of the program are reparented here), and exit with the program's status. sigwaitinfo
    takes the blocked signals as they come: none can slip in between a check and the wait."""
    while True:
        sig = signal.sigwaitinfo(INIT_SIGNALS).si_signo
        if sig != signal.SIGCHLD:
            with contextlib.suppress(ProcessLookupError):
                os.kill(program, sig)
            continue
        while (reaped := os.waitpid(-1, os.WNOHANG))[0]:  # one SIGCHLD for many children
            if reaped[0] == program:
                os._exit(_status_code(reaped[1]))  # the kernel kills the rest of the namespace


def _exec(request: JailRequest, userns: int) -> NoReturn:
    try:
        enter_user_namespace(userns)
        drop_capabilities()
        install_seccomp()
    except (OSError, JailError) as exc:
        _say(f"cannot set up the jail: {exc}")
        os._exit(EXIT_JAIL_FAILED)
    for sig in (*FORWARDED_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)  # Python ignores SIGPIPE, SIGXFSZ; execve keeps that
    signal.pthread_sigmask(signal.SIG_SETMASK, [])  # a signal kept for it acts now; SIGCHLD too
    argv = request.argv
    env = student_environment(request.workdir, request.view.bins)
    try:
        os.execvpe(argv[0], list(argv), env)
    except OSError as exc:
        _say(f"cannot run {argv[0]}: {exc.strerror}")
        os._exit(EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE)


class _LogPump:
    """Copies the program's output pipes into the supervisor's stdout and stderr (the log
    files), `limit` bytes each; then a marker line, and the rest is read and dropped."""

    def __init__(self, pipes: dict[int, int], limit: int) -> None:
        self.targets = dict(pipes)  # read end -> fd to copy to
        self.limit = limit
        self.copied = dict.fromkeys(pipes, 0)

    @property
    def fds(self) -> list[int]:
        return list(self.targets)

    def read(self, ready: Sequence[int]) -> None:
        for fd in ready:
            if fd not in self.targets:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                del self.targets[fd]
                os.close(fd)
                continue
            self._copy(fd, chunk)

    def _copy(self, fd: int, chunk: bytes) -> None:
        room = self.limit - self.copied[fd]
        if room > 0:
            kept = chunk[:room]
            if len(chunk) > room:
                kept += f"\n[vpnsim: output cut here, after {self.limit} bytes]\n".encode()
            with contextlib.suppress(OSError):
                os.write(self.targets[fd], kept)
        self.copied[fd] += len(chunk)

    def drain(self, seconds: float) -> None:
        """Read what is left until every writer is gone (or `seconds` passed)."""
        deadline = time.monotonic() + seconds
        while self.targets and time.monotonic() < deadline:
            ready = select.select(self.fds, [], [], max(0.0, deadline - time.monotonic()))[0]
            self.read(ready)
        for fd in self.targets:
            os.close(fd)
        self.targets.clear()


def _supervise(
    init: int, request: JailRequest, mechanism: Mechanism, pump: _LogPump, wakeup: int
) -> int:
    """Wait for init while copying the output; kill the jail at the wall time limit or
    (without a pids cgroup) when it has too many processes. Returns init's status as a
    shell reports it.

    `wakeup` is the read end of the signal wakeup fd: a signal that comes just before
    select() makes it return at once, so its handler runs now, not after the next output."""
    limit = request.limits.wall_seconds
    deadline = None if limit is None else time.monotonic() + limit
    watch = mechanism == "rlimit"
    pidns = os.stat(f"/proc/{init}/ns/pid").st_ino if watch else 0
    pidfd = os.pidfd_open(init)
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if watch:
            timeout = WATCHDOG_INTERVAL if timeout is None else min(timeout, WATCHDOG_INTERVAL)
        ready = select.select([pidfd, wakeup, *pump.fds], [], [], timeout)[0]
        if wakeup in ready:
            _drain(wakeup)
        pump.read(ready)
        if pidfd in ready:
            break
        if deadline is not None and time.monotonic() >= deadline:
            _kill_jail(init, f"wall time limit of {limit:g} s reached")
            break
        if watch and _count_processes(pidns) - 1 > request.limits.max_processes:
            _kill_jail(init, f"more than {request.limits.max_processes} processes")
            break
    os.close(pidfd)
    status = _status_code(os.waitpid(init, 0)[1])
    pump.drain(DRAIN_SECONDS)
    return status


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


def _kill_jail(init: int, why: str) -> None:
    _say(f"{why}: killed the jail")
    with contextlib.suppress(ProcessLookupError):
        os.kill(init, signal.SIGKILL)  # the kernel then kills every process of the namespace


def _count_processes(pidns: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += os.stat(f"/proc/{entry.name}/ns/pid").st_ino == pidns
    return count


def _in_named_netns() -> bool:
    """True if this process's network namespace is one under /run/netns (a lab host's)."""
    here = os.stat("/proc/self/ns/net")
    try:
        entries = list(os.scandir(NETNS_DIR))
    except OSError:
        return False
    for entry in entries:
        with contextlib.suppress(OSError):
            there = entry.stat()
            if (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino):
                return True
    return False


def _prepare_cgroups(request: JailRequest) -> tuple[Mechanism, tuple[Path, ...]]:
    mechanism = detect_mechanism(request.cgroup_root)
    if mechanism == "rlimit" and request.cgroup_root == CGROUP_ROOT:
        try:
            mount_cgroup_filesystems(request.cgroup_root)
        except OSError as exc:
            _say(f"cannot mount the cgroup filesystems ({exc}): limits by rlimit and watchdog")
            return mechanism, ()
        mechanism = detect_mechanism(request.cgroup_root)
    if mechanism == "rlimit":
        return mechanism, ()
    try:
        return mechanism, create_cgroups(
            request.cgroup_root, mechanism, request.name, request.limits
        )
    except FileExistsError:  # names are unique per running jail: a harness fault
        raise JailError(f"a cgroup of jail {request.name!r} exists already") from None
    except OSError as exc:
        _say(f"no {mechanism} cgroup ({exc}): limits by rlimit and watchdog")
        return "rlimit", ()


def main(args: Sequence[str] | None = None) -> int:
    forwarder = _Forwarder()  # a SIGTERM from now on stops the program, or its start
    forwarder.install()
    try:
        request = parse_command_line(sys.argv[1:] if args is None else args)
        if not _in_named_netns():
            raise JailError(
                f"refusing to run outside a lab host's network namespace (one under {NETNS_DIR})"
            )
        userns = user_namespace_of_network()
        mechanism, dirs = _prepare_cgroups(request)
    except (ValueError, JailError, OSError) as exc:
        _say(str(exc))
        return EXIT_JAIL_FAILED
    # Blocked across the fork, so each signal is forwarded exactly once: by the supervisor
    # to init, which passes it on to the program.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    if forwarder.pending:  # told to stop before the program started
        remove_cgroup_dirs(dirs)
        return 128 + forwarder.pending[0]
    try:
        syscall(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        parent_alive, alive = os.pipe()  # init sees EOF on it if the supervisor is gone
        (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
        wakeup, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # see below
        init = os.fork()
    except OSError as exc:
        _say(f"cannot set up the jail: {exc}")
        remove_cgroup_dirs(dirs)
        return EXIT_JAIL_FAILED
    if init == 0:
        for fd in (alive, out_r, err_r, wakeup, wakeup_w):
            os.close(fd)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.close(out_w)
        os.close(err_w)
        _init(request, mechanism, dirs, parent_alive, userns)
    for fd in (parent_alive, out_w, err_w, userns):
        os.close(fd)
    # Python runs a handler only between bytecodes: a signal caught just before select()
    # would wait, unseen, with it. The C handler also writes to this pipe: select() wakes.
    signal.set_wakeup_fd(wakeup_w, warn_on_full_buffer=False)  # a full pipe wakes it too
    forwarder.forward_to(init)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    pump = _LogPump({out_r: 1, err_r: 2}, request.limits.log_bytes)
    try:
        return _supervise(init, request, mechanism, pump, wakeup)
    finally:
        forwarder.target = None  # init is reaped: its pid may be reused
        remove_cgroup_dirs(dirs)


if __name__ == "__main__":
    sys.exit(main())
