"""The jail's cgroups: memory, pids and CPU limits per jail (cgroup v2 or v1), the rlimit
fallback's detection, and cleanup. Standard library only (the jail imports it)."""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import re
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vpnsim.grade.sandbox import (
    CLONE_NEWNS,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    libc,
    mount,
    syscall,
)

Mechanism = Literal["cgroup2", "cgroup1", "rlimit"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_BASE = "vpnsim"  # every jail's cgroup is <hierarchy>/vpnsim/<name>
# Never a leading "-": argparse reads "--name=--" as the end of options (found by Hypothesis).
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class JailLimits:
    """What a jail may use. Processes count the student's program, everything it starts and
    their threads; memory is the whole jail's. Under the rlimit fallback, memory is per
    process (address space) and only processes are counted."""

    memory_bytes: int = 512 * 2**20
    max_processes: int = 64
    cpu_seconds: int | None = None  # per process (RLIMIT_CPU): SIGXCPU, then SIGKILL
    wall_seconds: float | None = None  # the jail kills everything after this
    # Of one core, for the whole jail (CFS bandwidth): a busy loop or a flood cannot take
    # the CPU the grader's probes and the other programs need, whatever the machine's load.
    cpu_share: float | None = 0.5
    log_bytes: int = 2**20  # of stdout and of stderr each; the rest is cut, with a marker
    disk_bytes: int = 64 * 2**20  # the work copy's filesystem (the grader's tmpfs)

    def __post_init__(self) -> None:
        _check_int("memory_bytes", self.memory_bytes, 16 * 2**20)
        _check_int("max_processes", self.max_processes, 1)
        _check_int("log_bytes", self.log_bytes, 1024)
        _check_int("disk_bytes", self.disk_bytes, 2**20)
        if self.cpu_seconds is not None:
            _check_int("cpu_seconds", self.cpu_seconds, 1)
        wall = self.wall_seconds
        if wall is not None and not (_is_number(wall) and 0 < wall < math.inf):
            raise ValueError(f"wall_seconds={wall!r}: None or a number of seconds above 0")
        share = self.cpu_share
        if share is not None and not (_is_number(share) and 0.01 <= share <= 64):
            raise ValueError(f"cpu_share={share!r}: None or a share of one core, 0.01 to 64")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int(what: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{what}={value!r}: an integer of at least {minimum}")


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"jail name {name!r}: 1-100 letters, digits, - and _, not starting with -")


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
        # memory and pids always; cpu where the machine mounts that hierarchy.
        controllers = ("memory", "pids", "cpu") if _has_v1_cpu(root) else ("memory", "pids")
        return tuple(root / controller / CGROUP_BASE / name for controller in controllers)
    return ()


def _has_v1_cpu(root: Path) -> bool:
    return (root / "cpu" / "cpu.cfs_quota_us").is_file()


def _cpu_quota(limits: JailLimits) -> int | None:
    """CFS microseconds per CFS_PERIOD_US for the jail, or None for no CPU limit."""
    return None if limits.cpu_share is None else round(limits.cpu_share * CFS_PERIOD_US)


def create_cgroups(
    root: Path, mechanism: Mechanism, name: str, limits: JailLimits
) -> tuple[Path, ...]:
    """Make jail `name`'s cgroup(s) with its limits; on failure remove them and raise OSError.

    The pids limit leaves room for the jail's init (pid 1 of its namespace)."""
    check_name(name)
    made: list[Path] = []
    try:
        for path in _dirs_for(mechanism, root, name):
            _make_cgroup_dir(root, mechanism, path)
            made.append(path)
        _write_limits(mechanism, made, limits)
    except OSError:
        remove_cgroup_dirs(made)
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
    """cgroup v2: let children of `cgroup` have memory and pids limits (and cpu, if any)."""
    try:
        enabled = (cgroup / "cgroup.subtree_control").read_text().split()
    except FileNotFoundError:  # a fake root (tests); cgroupfs always has it
        enabled = []
    try:
        available = (cgroup / "cgroup.controllers").read_text().split()
    except FileNotFoundError:
        available = []
    wanted = {"memory", "pids"} | ({"cpu"} & set(available))
    if not wanted <= set(enabled):
        (cgroup / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))


def _write_limits(mechanism: Mechanism, dirs: list[Path], limits: JailLimits) -> None:
    memory, pids = str(limits.memory_bytes), str(limits.max_processes + 1)
    quota = _cpu_quota(limits)
    if mechanism == "cgroup2":
        (dirs[0] / "memory.max").write_text(memory)
        _write_if_present(dirs[0] / "memory.swap.max", "0")  # the limit is on RAM + swap
        (dirs[0] / "pids.max").write_text(pids)
        if quota is not None:
            _write_if_present(dirs[0] / "cpu.max", f"{quota} {CFS_PERIOD_US}")
    elif mechanism == "cgroup1":
        (dirs[0] / "memory.limit_in_bytes").write_text(memory)
        _write_if_present(dirs[0] / "memory.memsw.limit_in_bytes", memory)
        (dirs[1] / "pids.max").write_text(pids)
        if quota is not None and len(dirs) > 2:
            (dirs[2] / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (dirs[2] / "cpu.cfs_quota_us").write_text(str(quota))


def cpu_limited(mechanism: Mechanism, root: Path = CGROUP_ROOT) -> bool:
    """Whether jails here get a CPU bandwidth limit (a cpu controller exists)."""
    if mechanism == "cgroup1":
        return _has_v1_cpu(root)
    if mechanism == "cgroup2":
        with contextlib.suppress(OSError):
            return "cpu" in (root / "cgroup.controllers").read_text().split()
    return False


def _write_if_present(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)


def join_cgroups(dirs: Sequence[Path]) -> None:
    for path in dirs:
        (path / "cgroup.procs").write_text("0")  # 0: the writing process


def remove_cgroup_dirs(dirs: Sequence[Path], timeout: float = 60.0) -> None:
    """Kill what is left in each cgroup, remove it, and remove the base if now empty.

    The CPU limit goes first: killed processes must run to exit, and a throttled cgroup on
    a busy machine lets a hundred of them die only a few per period. `timeout` only guards
    against a process that never dies (the removal waits on the kernel, not on a clock)."""
    for path in dirs:
        _unthrottle(path)
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


def _unthrottle(cgroup: Path) -> None:
    for name, unlimited in (("cpu.cfs_quota_us", "-1"), ("cpu.max", "max")):
        with contextlib.suppress(OSError):  # not a cpu cgroup, or gone already
            if (cgroup / name).exists():
                (cgroup / name).write_text(unlimited)


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
    remove_cgroup_dirs(dirs)
    return mechanism


def jail_cleanup(name: str, *, cgroup_root: Path = CGROUP_ROOT) -> None:
    """Remove jail `name`'s cgroup(s), killing whatever is left in them first. Idempotent.

    A jail that ends by itself removes its cgroup; one whose supervisor was killed leaves
    it (empty: its processes died with the supervisor) for this."""
    check_name(name)
    layouts: tuple[Mechanism, ...] = ("cgroup2", "cgroup1")
    dirs = {path for layout in layouts for path in _dirs_for(layout, cgroup_root, name)}
    remove_cgroup_dirs(sorted(path for path in dirs if path.is_dir()))


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


def mount_cgroup_filesystems(root: Path) -> None:
    """Mount this machine's cgroup hierarchies on `root`, in a mount namespace of the
    supervisor's own: `proc.start` gives a lab host a fresh /sys, without them."""
    hierarchies = cgroup_hierarchies(Path("/proc/self/cgroup").read_text())
    syscall(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if "memory" in hierarchies and "pids" in hierarchies:  # v1 (hybrid too: v2 has none)
        mount("tmpfs", str(root), "tmpfs", flags, "size=64k,mode=755")
        for controller in ("memory", "pids", "cpu"):
            if controller not in hierarchies:
                continue
            (root / controller).mkdir()
            mount("cgroup", str(root / controller), "cgroup", flags, hierarchies[controller])
    elif "" in hierarchies:
        mount("cgroup2", str(root), "cgroup2", flags)
