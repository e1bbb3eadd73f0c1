"""The jail's filesystem: a root of its own with only what a student program needs.

A jailed program sees a fresh tmpfs root holding, read-only: the system's programs and
libraries (/usr and the /bin, /lib... beside it), a few files of /etc (names, resolver,
linker cache, certificates: no /etc/shadow or keys), the lab host's /sys, and the
directories of its Python environment (`JailView`); read-write: its workdir (at its own path),
/proc/sys/net, and fresh tmpfs on /tmp, /var/tmp, /run and /dev/shm; and a /dev and a /proc
of its own. Nothing else of the machine is there: not the grader's files, not its Python,
not the other submissions or their work copies.

Standard library only (the jail imports it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vpnsim.errors import HarnessError

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
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Of /etc, what programs need to run, resolve names, link and verify certificates.
ETC_ENTRIES = (
    "passwd", "group", "hosts", "host.conf", "nsswitch.conf", "resolv.conf", "gai.conf",
    "protocols", "services", "networks", "ethertypes", "ld.so.cache", "ld.so.conf",
    "ld.so.conf.d", "localtime", "alternatives", "ssl", "ca-certificates", "iproute2",
    "os-release", "debian_version", "mime.types",
)  # fmt: skip
HIDDEN_IN_ETC = ("ssl/private",)  # private keys, even read-only
# Read-write in the jail: fresh tmpfs over these.
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
NEW_ROOT = "/tmp"  # where the new root is assembled, in the jail's own mount namespace
# Per-mount options of /proc/self/mountinfo that a read-only remount must keep.
MOUNT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
libc.mount.argtypes += [ctypes.c_char_p]
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4


class JailError(HarnessError):
    """The jail cannot be set up here (a harness fault: exit status 125)."""


@dataclass(frozen=True)
class JailView:
    """What a jailed program sees beyond the system's own directories and its workdir."""

    bins: tuple[Path, ...] = ()  # first on its PATH, in this order
    read_only: tuple[Path, ...] = ()  # shown at their own paths, read-only
    hidden: tuple[Path, ...] = ()  # inside read_only, covered by an empty read-only tmpfs


def build_sandbox(workdir: Path, tmpfs_bytes: int, view: JailView) -> None:
    """In a new mount namespace, a root of the jail's own (see the module's docstring),
    pivoted into; then a check that only what is meant to be writable is."""
    syscall(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing propagates in or out
    # Held before anything is hidden: they may lie under /tmp (where the root is made).
    work = _open_path(str(workdir))
    if work is None:
        raise JailError(f"the workdir {workdir} does not exist")
    shown = {
        **{f"/{name}": f"/{name}" for name in SYSTEM_DIRS},
        **{f"/etc/{name}": f"/etc/{name}" for name in ETC_ENTRIES},
        "/sys": "/sys",
        **{str(path): str(path) for path in view.read_only},
    }
    opened = {target: _open_path(source) for target, source in shown.items()}
    sources = {target: fd for target, fd in opened.items() if fd is not None}
    found = {name: _open_path(f"/dev/{name}") for name in DEVICES}
    devices = {name: fd for name, fd in found.items() if fd is not None}
    mount("tmpfs", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    # Bind sources must be in this mount namespace: all is mounted before the old root goes,
    # the fresh tmpfs first, so that what is shown below one of them stays visible.
    _mount_proc(NEW_ROOT)
    _mount_dev(NEW_ROOT, devices)
    for path, mode in TMPFS_DIRS.items():
        os.makedirs(NEW_ROOT + path, exist_ok=True)
        flags = MS_NOSUID | MS_NODEV
        mount("tmpfs", NEW_ROOT + path, "tmpfs", flags, f"size={tmpfs_bytes},mode={mode}")
    for target, fd in sources.items():
        _show(fd, NEW_ROOT + target)
    for hidden in (*(f"/etc/{name}" for name in HIDDEN_IN_ETC), *map(str, view.hidden)):
        if os.path.isdir(NEW_ROOT + hidden):
            mount("tmpfs", NEW_ROOT + hidden, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=755")
    os.makedirs(NEW_ROOT + str(workdir), exist_ok=True)
    mount(f"/proc/self/fd/{work}", NEW_ROOT + str(workdir), None, MS_BIND)
    for fd in (work, *sources.values()):
        os.close(fd)
    _pivot_root(NEW_ROOT)
    writable = [str(workdir), PROC_NET, "/dev/pts", *TMPFS_DIRS]
    _remount_all_read_only(keep=writable)
    remount(str(workdir), MS_NOSUID | MS_NODEV)  # a bind mount copies the ro of its source
    os.chdir(workdir)
    _check_read_only(writable)


def _open_path(path: str) -> int | None:
    """An O_PATH descriptor of `path` (file or directory, symlinks not followed), or None."""
    try:
        return os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _show(fd: int, target: str) -> None:
    """Put what `fd` (O_PATH, not following symlinks) names at `target` in the new root: a
    symlink as the same symlink, a directory or a file bind-mounted with its submounts."""
    mode = os.fstat(fd).st_mode
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink("", dir_fd=fd), target)
        return
    if stat.S_ISDIR(mode):
        os.makedirs(target, exist_ok=True)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)


def _pivot_root(new_root: str) -> None:
    """Make `new_root` the root of this mount namespace and drop the old one entirely."""
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise JailError(f"pivot_root: unknown system call number on {os.uname().machine}")
    old = os.path.join(new_root, ".old-root")
    os.mkdir(old)
    syscall(libc.syscall(number, new_root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    syscall(libc.umount2(b"/.old-root", MNT_DETACH), "umount the old root")
    os.rmdir("/.old-root")


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


def under(path: str, dirs: Sequence[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    encoded = [None if s is None else os.fsencode(s) for s in (source, target, fstype, data)]
    if libc.mount(encoded[0], encoded[1], encoded[2], flags, encoded[3] or None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def syscall(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _remount_all_read_only(keep: Sequence[str]) -> None:
    """Remount every mount read-only, but those under `keep`."""
    for found in parse_mountinfo(Path("/proc/self/mountinfo").read_text()):
        if not under(found.mount_point, keep):
            # Errors are left to _check_read_only: a mount hidden under another cannot be
            # remounted by its path, and need not be.
            with contextlib.suppress(OSError):
                remount(found.mount_point, found.flags | MS_RDONLY)


def _mount_dev(root: str, devices: dict[str, int]) -> None:
    """A tmpfs `root`/dev with the host's harmless devices bound in, a devpts instance of its
    own and the usual links; read-only."""
    flags = MS_NOSUID | MS_NOEXEC
    dev = f"{root}/dev"
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", flags, "size=64k,mode=755")
    for name, fd in devices.items():
        os.makedirs(os.path.dirname(f"{dev}/{name}"), exist_ok=True)
        os.close(os.open(f"{dev}/{name}", os.O_CREAT | os.O_WRONLY, 0o600))
        mount(f"/proc/self/fd/{fd}", f"{dev}/{name}", None, MS_BIND)
        remount(f"{dev}/{name}", flags | MS_RDONLY)  # a device node is still writable
        os.close(fd)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/shm")  # a tmpfs goes on it with the others
    os.mkdir(f"{dev}/pts")
    mount("devpts", f"{dev}/pts", "devpts", flags, "newinstance,ptmxmode=0666,mode=0620")
    remount(dev, flags | MS_RDONLY)


def remount(path: str, flags: int) -> None:
    mount(None, path, None, MS_REMOUNT | MS_BIND | flags)


def _mount_proc(root: str) -> None:
    """A `root`/proc of the jail's pid namespace, read-only but for /proc/sys/net."""
    proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    proc, net = f"{root}/proc", f"{root}{PROC_NET}"
    os.makedirs(proc, exist_ok=True)
    mount("proc", proc, "proc", proc_flags)
    mount(net, net, None, MS_BIND)
    remount(net, proc_flags)
    remount(proc, proc_flags | MS_RDONLY)


def _check_read_only(writable: Sequence[str]) -> None:
    """Every mount reachable by its path is read-only, but those meant to be writable."""
    for found in parse_mountinfo(Path("/proc/self/mountinfo").read_text()):
        if under(found.mount_point, writable):
            continue
        try:
            read_only = os.statvfs(found.mount_point).f_flag & os.ST_RDONLY
        except OSError:  # hidden under a tmpfs: unreachable
            continue
        if not read_only:
            raise JailError(f"{found.mount_point} is still writable")
