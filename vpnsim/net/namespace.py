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
import ctypes.util
import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from vpnsim.errors import HarnessError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


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


def create(name: str) -> None:
    """Create the named namespace; fails if it exists (names are per run, never reused)."""
    if exists(name):
        raise NamespaceError(f"network namespace {name!r} already exists")
    from pyroute2 import netns as pr_netns  # lazy: keeps `vpnsim --help` and errors fast

    try:
        pr_netns.create(name)
    except OSError as exc:
        raise NamespaceError(f"cannot create network namespace {name!r}: {exc}") from exc


def remove(name: str) -> None:
    """Unmount and delete the named namespace; missing is not an error (idempotent teardown)."""
    if not exists(name):
        return
    from pyroute2 import netns as pr_netns

    try:
        pr_netns.remove(name)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise NamespaceError(f"cannot remove network namespace {name!r}: {exc}") from exc


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


def inode_of(name: str) -> int:
    return os.stat(path_of(name)).st_ino


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
