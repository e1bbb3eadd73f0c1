"""What a jailed program may do as root: its lab host's user namespace, a few capabilities,
and a seccomp filter against the escape hatches.

1. **User namespace.** A lab host where student programs run has a network namespace owned
   by a user namespace of its own (`vpnsim.net.confined_netns`). The program enters it last,
   after the jail is built: it is root over its host's network (TUN, addresses, routes,
   ip_forward) and has no capability in the initial user namespace, so rtnetlink requests
   that name another namespace by its id (IFLA_TARGET_NETNSID, IFLA_LINK_NETNSID: a
   macvlan on a fabric bridge) are refused, and it cannot ptrace the jail's init.
2. **Capabilities.** Only KEPT_CAPABILITIES, none ambient or inheritable, no new privileges.
3. **seccomp.** No ptrace, no process_vm_*, no setns, unshare or namespace flags on clone
   (clone3, whose flags a filter cannot read, answers ENOSYS: libc falls back to clone), no
   mount, bpf, perf_event_open, keyrings or module loading. The host's user namespace also
   allows no user namespace below it (max_user_namespaces = 0).

Standard library only (the jail imports it).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from pathlib import Path

from vpnsim.grade.sandbox import JailError, libc, syscall

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_FOWNER = 3
CAP_NET_BIND_SERVICE = 10
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
# Not kept: CAP_DAC_READ_SEARCH, because it allows open_by_handle_at(2), which opens any
# file of a mounted filesystem by handle, past what the jail's root shows.
KEPT_CAPABILITIES = frozenset(
    {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW}
)

CLONE_NEWUSER = 0x10000000
NS_GET_USERNS = 0xB701
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Namespace flags of clone(2): none may be asked for.
CLONE_NAMESPACES = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET

# System call numbers, by machine: (audit arch, x32 bit or 0, {name: number}).
_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "setns", "unshare", "mount",
    "umount2", "pivot_root", "open_by_handle_at", "bpf", "perf_event_open", "keyctl",
    "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "mount_setattr", "userfaultfd",
)  # fmt: skip
SYSCALLS: dict[str, tuple[int, int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        0x40000000,
        {
            "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "setns": 308,
            "unshare": 272, "mount": 165, "umount2": 166, "pivot_root": 155,
            "open_by_handle_at": 304, "bpf": 321, "perf_event_open": 298, "keyctl": 250,
            "add_key": 248, "request_key": 249, "kexec_load": 246, "kexec_file_load": 320,
            "init_module": 175, "finit_module": 313, "delete_module": 176, "open_tree": 428,
            "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
            "mount_setattr": 442, "userfaultfd": 323, "clone": 56, "clone3": 435,
        },
    ),
    "aarch64": (
        0xC00000B7,
        0,
        {
            "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "setns": 268,
            "unshare": 97, "mount": 40, "umount2": 39, "pivot_root": 41,
            "open_by_handle_at": 265, "bpf": 280, "perf_event_open": 241, "keyctl": 219,
            "add_key": 217, "request_key": 218, "kexec_load": 104, "kexec_file_load": 294,
            "init_module": 105, "finit_module": 273, "delete_module": 106, "open_tree": 428,
            "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
            "mount_setattr": 442, "userfaultfd": 282, "clone": 220, "clone3": 435,
        },
    ),
}  # fmt: skip

# Classic BPF, as seccomp runs it.
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_DATA_NR = 0
SECCOMP_DATA_ARCH = 4
SECCOMP_DATA_ARG0 = 16  # low 32 bits on little-endian machines (both above)


def user_namespace_of_network() -> int:
    """A descriptor of the user namespace owning this process's network namespace; raises
    JailError when that is this process's own (the host is not confined)."""
    net = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        owner = fcntl.ioctl(net, NS_GET_USERNS)
    finally:
        os.close(net)
    if os.fstat(owner).st_ino == os.stat("/proc/self/ns/user").st_ino:
        os.close(owner)
        raise JailError(
            "the lab host's network namespace is not confined (owned by the grader's user "
            "namespace): root in the jail would reach every namespace by its id; build the "
            "lab with confined hosts"
        )
    return owner


def enter_user_namespace(fd: int) -> None:
    """Join the user namespace `fd` (single-threaded callers only): full capabilities there,
    none anywhere else. `drop_capabilities` must follow."""
    syscall(libc.setns(fd, CLONE_NEWUSER), "setns(CLONE_NEWUSER)")
    os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]


def capability_mask(caps: frozenset[int] = KEPT_CAPABILITIES) -> int:
    """The bit mask of `caps`, as /proc/<pid>/status shows it (CapEff and the like)."""
    return sum(1 << cap for cap in caps)


def drop_capabilities(kept: frozenset[int] = KEPT_CAPABILITIES) -> None:
    """Only `kept` in the bounding, permitted and effective sets, none inheritable or
    ambient, and no new privileges: after execve root has only those (set-uid too)."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        if cap not in kept:
            syscall(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    clear = libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    syscall(clear, "clear ambient capabilities")
    mask = capability_mask(kept)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(mask, mask, 0), _CapData(0, 0, 0))  # caps 0-31, 32-63
    syscall(libc.capset(ctypes.byref(header), data), "capset")
    syscall(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def not_dumpable() -> None:
    """No core dumps and no ptrace or /proc/<pid>/mem of this process by the jailed program."""
    syscall(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "PR_SET_DUMPABLE")


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions for `machine` (see the module docstring).

    Layout: the checks, then ALLOW, then clone's flag test (LD arg0; JSET -> EPERM; ALLOW),
    then EPERM, ENOSYS and KILL; each check jumps forward to one of those."""
    if machine not in SYSCALLS:
        raise JailError(f"no seccomp filter for {machine}")
    arch, x32, numbers = SYSCALLS[machine]
    # (code, k, where the test's "true" branch goes; None: no jump; "!x": its "false" branch)
    checks: list[tuple[int, int, str | None]] = [
        (BPF_LD_W_ABS, SECCOMP_DATA_ARCH, None),
        (BPF_JEQ_K, arch, "!kill"),  # another architecture's numbering: kill
        (BPF_LD_W_ABS, SECCOMP_DATA_NR, None),
    ]
    if x32:
        checks.append((BPF_JGE_K, x32, "eperm"))  # x32 numbering: none of ours apply
    checks += [(BPF_JEQ_K, numbers[name], "eperm") for name in _DENIED]
    checks += [(BPF_JEQ_K, numbers["clone3"], "enosys"), (BPF_JEQ_K, numbers["clone"], "clone")]
    n = len(checks)
    at = {"clone": n + 1, "eperm": n + 4, "enosys": n + 5, "kill": n + 6}
    program = []
    for index, (code, k, target) in enumerate(checks):
        if target is None:
            program.append((code, 0, 0, k))
        elif target.startswith("!"):
            program.append((code, 0, at[target[1:]] - index - 1, k))
        else:
            program.append((code, at[target] - index - 1, 0, k))
    return [
        *program,
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),  # n
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG0),  # n + 1: clone's flags
        (BPF_JSET_K, 1, 0, CLONE_NAMESPACES),  # n + 2: any namespace flag -> EPERM
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),  # n + 3
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),  # n + 4
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),  # n + 5
        (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),  # n + 6
    ]


def install_seccomp(machine: str | None = None) -> None:
    """Load the filter for this process and what it starts (needs no_new_privs first)."""
    program = seccomp_program(machine or os.uname().machine)
    packed = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(packed, len(packed))

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Fprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    result = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0)
    syscall(result, "seccomp")
