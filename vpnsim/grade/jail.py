"""Run an untrusted student program as root, but only inside its lab host's namespaces.

`jailed_argv` puts `python -m vpnsim.grade.jail OPTIONS -- ARGV` in front of a student's
command; `Lab.start` runs that in the host's network namespace, and the jail then:

1. makes a cgroup for the jail (memory and pids limits; cgroup v2 or v1, whichever this
   machine has), or, if it cannot, limits each process's address space and watches the
   number of processes itself (`limits_mechanism()` says which);
2. unshares a pid namespace and forks its init (pid 1), which joins the cgroup, makes every
   mount read-only in a private mount namespace except the workdir, /proc/sys/net and fresh
   tmpfs on /tmp, /var/tmp, /run and /dev/shm (hiding /run/netns and the host's sockets),
   mounts a /proc that shows only the jail and a /dev with only harmless devices and TUN,
   and drops every capability but a few network and file ones, so root cannot setns, mount,
   load modules or trace;
3. init forks the student's program (pid 2) and execs it; it reaps orphans, forwards
   signals and exits with the program's status. When init exits the kernel kills whatever
   is left in the pid namespace.

The supervisor (the process `Lab.start` started, outside the pid namespace) forwards
SIGTERM/SIGINT/SIGHUP/SIGQUIT, kills the jail at `wall_seconds`, removes the cgroup and exits
with the program's status (128+N if it was killed by signal N, like a shell). Killing the
supervisor kills the jail (init has PR_SET_PDEATHSIG); `jail_cleanup` then removes the cgroup.

Standard library only: it starts in front of every student program.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import functools
import math
import os
import re
import select
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal, NoReturn

Mechanism = Literal["cgroup2", "cgroup1", "rlimit"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
NETNS_DIR = "/run/netns"  # the jail runs only in a namespace named there (a lab host's)
CGROUP_BASE = "vpnsim"  # every jail's cgroup is <hierarchy>/vpnsim/<name>
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,100}")
PREFIX = "vpnsim-jail: "
EXIT_JAIL_FAILED = 125  # the jail could not be set up (a harness fault, not the student's)
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
WATCHDOG_INTERVAL = 0.02  # seconds between process counts when no pids cgroup limits them
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)

# Read-write in the jail: fresh tmpfs over these (what the host keeps there stays hidden).
TMPFS_DIRS = {"/tmp": "1777", "/var/tmp": "1777", "/run": "755", "/dev/shm": "1777"}
PROC_NET = "/proc/sys/net"  # per network namespace: ip_forward and the like
# A /dev of its own, as containers have: the host's would give root its disks, terminals
# and kernel log (a read-only mount does not stop writes to device nodes).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "net/tun")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}

# Capabilities root keeps in the jail (numbers from linux/capability.h). Not kept:
# CAP_DAC_READ_SEARCH, because it allows open_by_handle_at(2), which opens any file of a
# mounted filesystem by handle, past the tmpfs that hide the host's /tmp and other
# submissions; CAP_DAC_OVERRIDE already lets root read and search everything it can see.
CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_FOWNER = 3
CAP_NET_BIND_SERVICE = 10
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
KEPT_CAPABILITIES = frozenset(
    {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW}
)

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
# Per-mount options of /proc/self/mountinfo that a read-only remount must keep.
MOUNT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes += [ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4


class JailError(RuntimeError):
    """The jail cannot be set up here (a harness fault: exit status 125)."""


@dataclass(frozen=True)
class JailLimits:
    """What a jail may use. Processes count the student's program, everything it starts and
    their threads; memory is the whole jail's. Under the rlimit fallback, memory is per
    process (address space) and only processes are counted."""

    memory_bytes: int = 512 * 2**20
    max_processes: int = 64
    cpu_seconds: int | None = None  # per process (RLIMIT_CPU): SIGXCPU, then SIGKILL
    wall_seconds: float | None = None  # the jail kills everything after this

    def __post_init__(self) -> None:
        _check_int("memory_bytes", self.memory_bytes, 16 * 2**20)
        _check_int("max_processes", self.max_processes, 1)
        if self.cpu_seconds is not None:
            _check_int("cpu_seconds", self.cpu_seconds, 1)
        wall = self.wall_seconds
        number = isinstance(wall, int | float) and not isinstance(wall, bool)
        if wall is not None and not (number and 0 < wall < math.inf):
            raise ValueError(f"wall_seconds={wall!r}: None or a number of seconds above 0")


def _check_int(what: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{what}={value!r}: an integer of at least {minimum}")


@dataclass(frozen=True)
class JailRequest:
    """The jail's command line, parsed."""

    name: str
    workdir: Path
    limits: JailLimits
    argv: tuple[str, ...]
    cgroup_root: Path = CGROUP_ROOT


def _check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"jail name {name!r}: use 1-100 letters, digits, - and _")


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
) -> tuple[str, ...]:
    """The command that runs `argv` jailed, in `workdir`: [python, -m, vpnsim.grade.jail, ...,
    --, *argv]. `name` names the jail's cgroup: unique per running jail, see `jail_cleanup`."""
    if not argv:
        raise ValueError("jailed_argv: empty command")
    _check_workdir(workdir)
    _check_name(name)
    # --option=value: a value may start with "-" (a name may).
    options = [f"--name={name}", f"--workdir={workdir}"]
    options += [f"--memory-bytes={limits.memory_bytes}", f"--max-processes={limits.max_processes}"]
    if limits.cpu_seconds is not None:
        options.append(f"--cpu-seconds={limits.cpu_seconds}")
    if limits.wall_seconds is not None:
        options.append(f"--wall-seconds={float(limits.wall_seconds)!r}")
    if cgroup_root is not None:
        options.append(f"--cgroup-root={cgroup_root}")
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
    parser.add_argument("--cpu-seconds", type=int)
    parser.add_argument("--wall-seconds", type=float)
    parser.add_argument("--cgroup-root", type=Path, default=CGROUP_ROOT)
    try:
        opts = parser.parse_args(args[:split])
    except argparse.ArgumentError as exc:
        raise ValueError(str(exc)) from None
    command = tuple(args[split + 1 :])
    if not command:
        raise ValueError("no command after --")
    _check_name(opts.name)
    _check_workdir(opts.workdir)
    limits = JailLimits(opts.memory_bytes, opts.max_processes, opts.cpu_seconds, opts.wall_seconds)
    return JailRequest(opts.name, opts.workdir, limits, command, opts.cgroup_root)


# cgroups ---------------------------------------------------------------------------------


def detect_mechanism(root: Path = CGROUP_ROOT) -> Mechanism:
    """Which cgroup layout `root` has, by its files: v2 with the memory and pids controllers,
    v1 with memory and pids hierarchies, or neither ("rlimit", the fallback)."""
    try:
        controllers = (root / "cgroup.controllers").read_text().split()
    except OSError:
        controllers = []
    if {"memory", "pids"} <= set(controllers):
        return "cgroup2"
    if all((root / ctl / "cgroup.procs").is_file() for ctl in ("memory", "pids")):
        return "cgroup1"
    return "rlimit"


def cgroup_dirs(name: str, cgroup_root: Path = CGROUP_ROOT) -> tuple[Path, ...]:
    """The cgroup directories of jail `name` under this machine's layout (none for rlimit)."""
    return _dirs_for(detect_mechanism(cgroup_root), cgroup_root, name)


def _dirs_for(mechanism: Mechanism, root: Path, name: str) -> tuple[Path, ...]:
    if mechanism == "cgroup2":
        return (root / CGROUP_BASE / name,)
    if mechanism == "cgroup1":
        return (root / "memory" / CGROUP_BASE / name, root / "pids" / CGROUP_BASE / name)
    return ()


def create_cgroups(
    root: Path, mechanism: Mechanism, name: str, limits: JailLimits
) -> tuple[Path, ...]:
    """Make jail `name`'s cgroup(s) with its limits; on failure remove them and raise OSError.

    The pids limit leaves room for the jail's init (pid 1 of its namespace)."""
    _check_name(name)
    made: list[Path] = []
    try:
        for path in _dirs_for(mechanism, root, name):
            _make_cgroup_dir(root, mechanism, path)
            made.append(path)
        _write_limits(mechanism, made, limits)
    except OSError:
        _remove_cgroup_dirs(made)
        raise
    return tuple(made)


def _make_cgroup_dir(root: Path, mechanism: Mechanism, path: Path) -> None:
    # A concurrent jail_cleanup may remove the (empty) base between its mkdir and ours.
    for attempt in range(3):
        path.parent.mkdir(exist_ok=True)
        if mechanism == "cgroup2":
            _enable_controllers(root)
            _enable_controllers(path.parent)
        try:
            path.mkdir()
            return
        except FileNotFoundError:
            if attempt == 2:
                raise


def _enable_controllers(cgroup: Path) -> None:
    """cgroup v2: let children of `cgroup` have memory and pids limits."""
    try:
        enabled = (cgroup / "cgroup.subtree_control").read_text().split()
    except FileNotFoundError:  # a fake root (tests); cgroupfs always has it
        enabled = []
    if not {"memory", "pids"} <= set(enabled):
        (cgroup / "cgroup.subtree_control").write_text("+memory +pids")


def _write_limits(mechanism: Mechanism, dirs: list[Path], limits: JailLimits) -> None:
    memory, pids = str(limits.memory_bytes), str(limits.max_processes + 1)
    if mechanism == "cgroup2":
        (dirs[0] / "memory.max").write_text(memory)
        _write_if_present(dirs[0] / "memory.swap.max", "0")  # the limit is on RAM + swap
        (dirs[0] / "pids.max").write_text(pids)
    elif mechanism == "cgroup1":
        (dirs[0] / "memory.limit_in_bytes").write_text(memory)
        _write_if_present(dirs[0] / "memory.memsw.limit_in_bytes", memory)
        (dirs[1] / "pids.max").write_text(pids)


def _write_if_present(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)


def _join_cgroups(dirs: Sequence[Path]) -> None:
    for path in dirs:
        (path / "cgroup.procs").write_text("0")  # 0: the writing process


def _remove_cgroup_dirs(dirs: Sequence[Path], timeout: float = 2.0) -> None:
    """Kill what is left in each cgroup, remove it, and remove the base if now empty."""
    deadline = time.monotonic() + timeout
    for path in dirs:
        while path.exists():
            _kill_members(path)
            try:
                path.rmdir()
            except OSError as exc:  # EBUSY until the killed members are gone
                if exc.errno == errno.ENOENT:
                    break
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
        with contextlib.suppress(OSError):  # another jail's cgroup may still be in it
            path.parent.rmdir()


def _kill_members(cgroup: Path) -> None:
    try:
        members = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


@functools.cache
def limits_mechanism(cgroup_root: Path = CGROUP_ROOT) -> Mechanism:
    """How jails on this machine are limited: "cgroup2", "cgroup1", or "rlimit" (RLIMIT_AS
    per process and a process-counting watchdog) when no cgroup can be made here."""
    mechanism = detect_mechanism(cgroup_root)
    if mechanism == "rlimit":
        return mechanism
    try:
        dirs = create_cgroups(cgroup_root, mechanism, f"probe-{os.getpid()}", JailLimits())
    except OSError:
        return "rlimit"
    _remove_cgroup_dirs(dirs)
    return mechanism


def jail_cleanup(name: str, *, cgroup_root: Path = CGROUP_ROOT) -> None:
    """Remove jail `name`'s cgroup(s), killing whatever is left in them first. Idempotent.

    A jail that ends by itself removes its cgroup; one whose supervisor was killed leaves
    it (empty: its processes died with the supervisor) for this."""
    _check_name(name)
    layouts: tuple[Mechanism, ...] = ("cgroup2", "cgroup1")
    dirs = {path for layout in layouts for path in _dirs_for(layout, cgroup_root, name)}
    _remove_cgroup_dirs(sorted(path for path in dirs if path.is_dir()))


# mounts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo: where, and its per-mount options."""

    mount_point: str
    options: frozenset[str]

    @property
    def flags(self) -> int:
        """The MS_* flags a remount must repeat to keep this mount's options (in a user
        namespace they are locked: a remount that changes them fails)."""
        flags = 0
        for option in self.options:
            flags |= MOUNT_FLAGS.get(option, 0)
        if not self.options & {"relatime", "noatime"}:
            flags |= MS_STRICTATIME  # shown as neither; a remount would default to relatime
        return flags


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 5:
            mounts.append(Mount(_unescape(fields[4]), frozenset(fields[5].split(","))))
    return mounts


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as \ooo octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _under(path: str, dirs: Sequence[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    encoded = [None if s is None else os.fsencode(s) for s in (source, target, fstype, data)]
    if _libc.mount(encoded[0], encoded[1], encoded[2], flags, encoded[3] or None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _syscall(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _build_sandbox(workdir: Path, tmpfs_bytes: int) -> None:
    """In a new mount namespace: everything read-only, except the workdir, /proc/sys/net and
    fresh tmpfs; a /dev and a /proc of the jail's own; then a check that it is so."""
    _syscall(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing propagates in or out
    # Held before anything is hidden: the workdir may be under /tmp or /run.
    work_fd = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
    # So may the Python environment the grader runs in (a CI venv under /tmp): students'
    # `python3` is that one, with scapy; it stays visible, read-only.
    kept = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in _python_dirs()}
    _remount_all_read_only(hidden=[*TMPFS_DIRS, "/proc", "/dev"])
    _mount_dev()
    for path, mode in TMPFS_DIRS.items():
        if os.path.isdir(path) and not os.path.islink(path):
            flags = MS_NOSUID | MS_NODEV
            _mount("tmpfs", path, "tmpfs", flags, f"size={tmpfs_bytes},mode={mode}")
    _mount_proc()
    for path, fd in kept.items():
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        _remount(path, MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    os.makedirs(workdir, exist_ok=True)  # its place in a fresh tmpfs, if under one
    _mount(f"/proc/self/fd/{work_fd}", str(workdir), None, MS_BIND)
    _remount(str(workdir), MS_NOSUID | MS_NODEV)  # a bind mount copies the ro of its source
    os.close(work_fd)
    os.chdir(workdir)
    _check_read_only([str(workdir), PROC_NET, "/dev/pts", *TMPFS_DIRS])


def _python_dirs() -> list[str]:
    """This interpreter's environment (a venv, and the Python it was made from), where it
    lies under a folder the jail hides behind a tmpfs."""
    found = []
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        real = os.path.realpath(prefix)
        if _under(real, list(TMPFS_DIRS)) and os.path.isdir(real):
            found.append(real)
    return found


def _remount_all_read_only(hidden: Sequence[str]) -> None:
    """Remount every mount read-only, but those under `hidden` (the jail covers them)."""
    for mount in parse_mountinfo(Path("/proc/self/mountinfo").read_text()):
        if not _under(mount.mount_point, hidden):
            # Errors are left to _check_read_only: a mount hidden under another cannot be
            # remounted by its path, and need not be.
            with contextlib.suppress(OSError):
                _remount(mount.mount_point, mount.flags | MS_RDONLY)


def _mount_dev() -> None:
    """A tmpfs /dev with the host's harmless devices bound in, a devpts instance of its own
    and the usual links; read-only."""
    nodes = {}
    for name in DEVICES:
        with contextlib.suppress(FileNotFoundError):  # /dev/net/tun without the tun module
            nodes[name] = os.open(f"/dev/{name}", os.O_PATH)
    flags = MS_NOSUID | MS_NOEXEC
    _mount("tmpfs", "/dev", "tmpfs", flags, "size=64k,mode=755")
    for name, fd in nodes.items():
        os.makedirs(os.path.dirname(f"/dev/{name}"), exist_ok=True)
        os.close(os.open(f"/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o600))
        _mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)  # /proc is still the host's
        _remount(f"/dev/{name}", flags | MS_RDONLY)  # a device node is still writable
        os.close(fd)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm")  # a tmpfs goes on it with the others
    os.mkdir("/dev/pts")
    _mount("devpts", "/dev/pts", "devpts", flags, "newinstance,ptmxmode=0666,mode=0620")
    _remount("/dev", flags | MS_RDONLY)


def _remount(path: str, flags: int) -> None:
    _mount(None, path, None, MS_REMOUNT | MS_BIND | flags)


def _mount_proc() -> None:
    """A /proc of the new pid namespace, read-only but for /proc/sys/net."""
    _syscall(_libc.umount2(b"/proc", MNT_DETACH), "umount /proc")  # and what is mounted in it
    proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _mount("proc", "/proc", "proc", proc_flags)
    _mount(PROC_NET, PROC_NET, None, MS_BIND)
    _remount(PROC_NET, proc_flags)
    _remount("/proc", proc_flags | MS_RDONLY)


def _check_read_only(writable: Sequence[str]) -> None:
    """Every mount reachable by its path is read-only, but those meant to be writable."""
    for mount in parse_mountinfo(Path("/proc/self/mountinfo").read_text()):
        if _under(mount.mount_point, writable):
            continue
        try:
            read_only = os.statvfs(mount.mount_point).f_flag & os.ST_RDONLY
        except OSError:  # hidden under a tmpfs: unreachable
            continue
        if not read_only:
            raise JailError(f"{mount.mount_point} is still writable")


# capabilities and limits -----------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]


def capability_mask(caps: frozenset[int] = KEPT_CAPABILITIES) -> int:
    """The bit mask of `caps`, as /proc/<pid>/status shows it (CapEff and the like)."""
    return sum(1 << cap for cap in caps)


def _drop_capabilities() -> None:
    """Only KEPT_CAPABILITIES in the bounding, permitted and effective sets, none inheritable
    or ambient, and no new privileges: after execve root has only those (set-uid too)."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        if cap not in KEPT_CAPABILITIES:
            _syscall(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    clear = _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _syscall(clear, "clear ambient capabilities")
    mask = capability_mask()
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(mask, mask, 0), _CapData(0, 0, 0))  # caps 0-31, 32-63
    _syscall(_libc.capset(ctypes.byref(header), data), "capset")
    _syscall(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def _set_rlimits(limits: JailLimits, mechanism: Mechanism) -> None:
    import resource  # only here: the supervisor never needs it

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files from SIGXCPU or crashes
    if limits.cpu_seconds is not None:
        cpu = limits.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if mechanism == "rlimit":
        memory = limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


# processes -------------------------------------------------------------------------------


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
    request: JailRequest,
    mechanism: Mechanism,
    dirs: Sequence[Path],
    parent_alive: int,
    forwarder: _Forwarder,
) -> NoReturn:
    """pid 1 of the jail's pid namespace: sandbox, start the program, reap, forward.

    It keeps the supervisor's signal handlers (pid 1 ignores signals it has no handler for)
    and forwarder, which keeps what the supervisor forwards until the program runs."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    try:
        _syscall(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
        if select.select([parent_alive], [], [], 0)[0]:  # EOF: the supervisor died already
            os._exit(EXIT_JAIL_FAILED)
        os.close(parent_alive)
        _join_cgroups(dirs)  # before the cgroup filesystem turns read-only
        _build_sandbox(request.workdir.resolve(), request.limits.memory_bytes)
        _set_rlimits(request.limits, mechanism)
        _drop_capabilities()
    except (OSError, JailError, ValueError) as exc:
        _say(f"cannot set up the jail: {exc}")
        os._exit(EXIT_JAIL_FAILED)
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)  # until each has its own
    program = os.fork()
    if program == 0:
        _exec(request.argv)
    forwarder.forward_to(program)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    while True:
        pid, status = os.wait()  # orphans of the program are reparented here
        if pid == program:
            os._exit(_status_code(status))  # the kernel kills the rest of the namespace


def _exec(argv: Sequence[str]) -> NoReturn:
    for sig in (*FORWARDED_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)  # Python ignores SIGPIPE, SIGXFSZ; execve keeps that
    signal.pthread_sigmask(signal.SIG_SETMASK, [])  # a signal kept for it acts now
    try:
        os.execvp(argv[0], list(argv))
    except OSError as exc:
        _say(f"cannot run {argv[0]}: {exc.strerror}")
        os._exit(EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE)


def _supervise(init: int, request: JailRequest, mechanism: Mechanism) -> int:
    """Wait for init; kill the jail at the wall time limit or (without a pids cgroup) when
    it has too many processes. Returns init's status as a shell reports it."""
    limit = request.limits.wall_seconds
    deadline = None if limit is None else time.monotonic() + limit
    watch = mechanism == "rlimit"
    pidns = os.stat(f"/proc/{init}/ns/pid").st_ino if watch else 0
    pidfd = os.pidfd_open(init)
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if watch:
            timeout = WATCHDOG_INTERVAL if timeout is None else min(timeout, WATCHDOG_INTERVAL)
        if select.select([pidfd], [], [], timeout)[0]:
            break
        if deadline is not None and time.monotonic() >= deadline:
            _kill_jail(init, f"wall time limit of {limit:g} s reached")
            break
        if watch and _count_processes(pidns) - 1 > request.limits.max_processes:
            _kill_jail(init, f"more than {request.limits.max_processes} processes")
            break
    os.close(pidfd)
    return _status_code(os.waitpid(init, 0)[1])


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


def cgroup_hierarchies(proc_self_cgroup: str) -> dict[str, str]:
    """The hierarchies of /proc/self/cgroup: {"memory": "memory", "cpu": "cpu,cpuacct", ...}
    maps each v1 controller to the mount options of its hierarchy; "" is cgroup v2's."""
    found = {}
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[1]
    return found


def _mount_cgroup_filesystems(root: Path) -> None:
    """Mount this machine's cgroup hierarchies on `root`, in a mount namespace of the
    supervisor's own: `proc.start` gives a lab host a fresh /sys, without them."""
    hierarchies = cgroup_hierarchies(Path("/proc/self/cgroup").read_text())
    _syscall(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if "memory" in hierarchies and "pids" in hierarchies:  # v1 (hybrid too: v2 has none)
        _mount("tmpfs", str(root), "tmpfs", flags, "size=64k,mode=755")
        for controller in ("memory", "pids"):
            (root / controller).mkdir()
            _mount("cgroup", str(root / controller), "cgroup", flags, hierarchies[controller])
    elif "" in hierarchies:
        _mount("cgroup2", str(root), "cgroup2", flags)


def _prepare_cgroups(request: JailRequest) -> tuple[Mechanism, tuple[Path, ...]]:
    mechanism = detect_mechanism(request.cgroup_root)
    if mechanism == "rlimit" and request.cgroup_root == CGROUP_ROOT:
        try:
            _mount_cgroup_filesystems(request.cgroup_root)
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
        mechanism, dirs = _prepare_cgroups(request)
    except (ValueError, JailError) as exc:
        _say(str(exc))
        return EXIT_JAIL_FAILED
    # Blocked across the fork, so each signal is forwarded exactly once: by the supervisor
    # to init, which passes it on to the program.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    if forwarder.pending:  # told to stop before the program started
        _remove_cgroup_dirs(dirs)
        return 128 + forwarder.pending[0]
    try:
        _syscall(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        parent_alive, alive = os.pipe()  # init sees EOF on it if the supervisor is gone
        init = os.fork()
    except OSError as exc:
        _say(f"cannot set up the jail: {exc}")
        _remove_cgroup_dirs(dirs)
        return EXIT_JAIL_FAILED
    if init == 0:
        os.close(alive)
        _init(request, mechanism, dirs, parent_alive, forwarder)
    os.close(parent_alive)
    forwarder.forward_to(init)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    try:
        return _supervise(init, request, mechanism)
    finally:
        forwarder.target = None  # init is reaped: its pid may be reused
        _remove_cgroup_dirs(dirs)


if __name__ == "__main__":
    sys.exit(main())
