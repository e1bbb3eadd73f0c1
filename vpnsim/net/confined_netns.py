"""Run as a program: make a network namespace owned by a user namespace of its own.

    python -I -S confined_netns.py PATH

A jailed student program is root in its lab host only if that host's network namespace is
owned by a user namespace it can enter: with CAP_NET_ADMIN in the initial user namespace,
rtnetlink requests that name another namespace by its id (IFLA_TARGET_NETNSID, a macvlan on
a fabric bridge) would reach the whole lab. The new user namespace maps every uid and gid to
itself (files keep their owners) and allows no user namespaces below it.

A separate program because unshare(CLONE_NEWUSER) refuses a process with threads, and the
harness has some (captures, wires). Standard library only, run without site (-S): it starts
for every confined host.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
IDENTITY_MAP = "0 0 4294967295\n"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _child(to_parent: int, from_parent: int) -> None:
    _check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    os.write(to_parent, b"u")
    if os.read(from_parent, 1) != b"m":  # the parent wrote our uid and gid maps
        raise OSError("the parent did not map the user namespace")
    # Root of the new user namespace now: no user namespaces below this one.
    with open("/proc/sys/user/max_user_namespaces", "w") as limit:
        limit.write("0")
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    os.write(to_parent, b"n")
    os.read(from_parent, 1)  # held until the namespace is bind-mounted


def make(path: str) -> None:
    """Bind-mount a new network namespace owned by a new user namespace on `path` (a file)."""
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(up_r)
        os.close(down_w)
        try:
            _child(up_w, down_r)
        except OSError as exc:
            os.write(2, f"confined_netns: {exc}\n".encode())
            os._exit(1)
        os._exit(0)
    os.close(up_w)
    os.close(down_r)
    try:
        if os.read(up_r, 1) != b"u":
            raise OSError("the child could not make a user namespace")
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as mapping:
                mapping.write(IDENTITY_MAP)
        os.write(down_w, b"m")
        if os.read(up_r, 1) != b"n":
            raise OSError("the child could not make a network namespace")
        source = f"/proc/{pid}/ns/net".encode()
        _check(_libc.mount(source, path.encode(), None, MS_BIND, None), f"mount {path}")
    finally:
        os.close(down_w)
        os.close(up_r)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("the child failed")


if __name__ == "__main__":
    try:
        make(sys.argv[1])
    except (OSError, IndexError) as exc:
        print(f"confined_netns: {exc}", file=sys.stderr)
        sys.exit(1)
