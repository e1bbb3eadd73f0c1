"""Named network namespaces: create, enter (per thread), find their processes, remove.

Namespaces are bind-mounted under /run/netns like `ip netns add` does, so users can inspect
a lab with `ip netns exec` and `ip netns list` shows what a run left behind.

Entering is per thread: setns(2) with CLONE_NEWNET changes only the calling thread, so a
socket or netlink handle opened inside `entered(name)` lives in that namespace for good while
the rest of the process stays where it was. This costs microseconds, unlike pyroute2's
fork-per-socket helper, and probes open many sockets.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path

from vpnsim.errors import HarnessError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2

# The C library already in this process (CDLL(None)): find_library("c") would run
# `ldconfig -p`, ~10 ms at every start of every vpnsim command.
_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(HarnessError):
    """A namespace could not be created, entered or removed (a harness fault)."""


def path_of(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path_of(name).exists()


def list_names(prefix: str = "") -> list[str]:
    """Names of the namespaces under /run/netns starting with `prefix`, sorted."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def create(name: str, *, confined: bool = False) -> None:
    """Create the named namespace; fails if it exists (names are per run, never reused).

    As `ip netns add` does it, on the calling thread only (no fork): /run/netns made a shared
    mount, an empty file, unshare(CLONE_NEWNET), the new namespace bind-mounted on the file,
    and the thread set back to where it was.

    `confined`: owned by a user namespace of its own (see `confined_netns`), so a program
    that enters that user namespace is root in this namespace and nowhere else.
    """
    if exists(name):
        raise NamespaceError(f"network namespace {name!r} already exists")
    path = path_of(name)
    try:
        _share_netns_dir()
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except OSError as exc:
        raise NamespaceError(f"cannot create network namespace {name!r}: {exc}") from exc
    if confined:
        _create_confined(name, path)
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        unshare(CLONE_NEWNET)
        try:
            _mount(b"/proc/thread-self/ns/net", bytes(path), None, MS_BIND)
        finally:
            setns(home)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise NamespaceError(f"cannot create network namespace {name!r}: {exc}") from exc
    finally:
        os.close(home)


def _create_confined(name: str, path: Path) -> None:
    helper = Path(__file__).with_name("confined_netns.py")
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(helper), str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        with contextlib.suppress(OSError):
            os.unlink(path)
        why = done.stderr.strip().removeprefix("confined_netns: ") or f"status {done.returncode}"
        raise NamespaceError(f"cannot create confined network namespace {name!r}: {why}")


def remove(name: str) -> None:
    """Unmount and delete the named namespace; missing is not an error (idempotent teardown).

    The kernel frees the namespace (and its links) once no process or mount holds it."""
    path = path_of(name)
    if _libc.umount2(bytes(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # not mounted (a half-made one), or gone
            raise NamespaceError(f"cannot remove network namespace {name!r}: {os.strerror(err)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _share_netns_dir() -> None:
    # Mounts under /run/netns must propagate to every mount namespace (programs run in private
    # ones): make the directory a shared mount point, bind-mounting it onto itself first if
    # it is not a mount point yet (the same dance as iproute2).
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    target = bytes(NETNS_DIR)
    if _libc.mount(b"", target, b"none", MS_SHARED | MS_REC, None) == 0:
        return
    _mount(target, target, b"none", MS_BIND | MS_REC)
    _mount(b"", target, b"none", MS_SHARED | MS_REC)


def _mount(source: bytes, target: bytes, fstype: bytes | None, flags: int) -> None:
    if _libc.mount(source, target, fstype, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target.decode()}: {os.strerror(err)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2) for the calling thread (os.setns exists only from Python 3.12)."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside namespace `name`, then come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(path_of(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NamespaceError(f"network namespace {name!r} does not exist") from None
        try:
            setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)


def socket_in(
    name: str,
    family: int = socket.AF_INET,
    type: int = socket.SOCK_DGRAM,
    proto: int = 0,
) -> socket.socket:
    """A socket that lives in namespace `name` (whatever thread uses it later)."""
    with entered(name):
        return socket.socket(family, type, proto)


class Kept:
    """A lab's namespaces kept open by descriptor, and sockets kept in them, for code that
    enters the same few thousands of times (a Hypothesis property probes once per example):
    entering then costs two setns(2) calls, not two path lookups in /proc and /run/netns
    besides (~60 us against ~15 us a socket). Names are never reused within a run, so a kept
    descriptor cannot point at another lab's namespace. An open descriptor or socket keeps
    its namespace alive: the lab calls `close()` before it removes them."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._sockets: dict[Hashable, socket.socket] = {}
        self._home = threading.local()  # each thread comes back to where it was

    @contextlib.contextmanager
    def entered(self, name: str) -> Iterator[None]:
        target = self._fds.get(name)
        if target is None:
            try:
                target = os.open(path_of(name), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise NamespaceError(f"network namespace {name!r} does not exist") from None
            self._fds[name] = target
        home: io.FileIO | None = getattr(self._home, "file", None)
        if home is None:  # a file object: closed when its thread's locals go
            home = self._home.file = io.FileIO("/proc/thread-self/ns/net", "r")
        setns(target)
        try:
            yield
        finally:
            setns(home.fileno())

    def socket_in(
        self, name: str, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM, proto: int = 0
    ) -> socket.socket:
        """As the module's `socket_in`, through the kept descriptor."""
        with self.entered(name):
            return socket.socket(family, type, proto)

    def socket(self, key: Hashable, make: Callable[[], socket.socket]) -> socket.socket:
        """The socket kept under `key`, made by `make()` the first time."""
        sock = self._sockets.get(key)
        if sock is None:
            sock = self._sockets[key] = make()
        return sock

    def close(self) -> None:
        """Close the kept sockets and namespaces (another thread's home descriptor closes
        with that thread)."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        home: io.FileIO | None = getattr(self._home, "file", None)
        if home is not None:
            home.close()
            del self._home.file


def pids_in(names: list[str]) -> list[int]:
    """PIDs of every process whose network namespace is one of `names` (like `ip netns pids`)."""
    wanted: set[tuple[int, int]] = set()
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(path_of(name))
            wanted.add((st.st_dev, st.st_ino))
    if not wanted:
        return []
    found = []
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError as exc:  # the process exited meanwhile, or is a kernel thread
            if exc.errno in (errno.ENOENT, errno.ESRCH, errno.EACCES):
                continue
            raise
        pid = int(entry.name)
        if (st.st_dev, st.st_ino) in wanted and pid != me:
            found.append(pid)
    return sorted(found)
