"""The jail's seccomp filter, run by a classic-BPF interpreter of the test's own: each
system call the filter names gets its answer, every other one is allowed, clone is refused
only with namespace flags, and another architecture's calls kill the process."""

from __future__ import annotations

import errno
import struct

import pytest

from vpnsim.grade.confine import (
    BPF_JEQ_K,
    BPF_JGE_K,
    BPF_JSET_K,
    BPF_LD_W_ABS,
    BPF_RET_K,
    CLONE_NAMESPACES,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
    SYSCALLS,
    seccomp_program,
)

EPERM = SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = SECCOMP_RET_ERRNO | errno.ENOSYS
CLONE_THREAD_FLAGS = 0x3D0F00  # what pthread_create passes: VM|FS|FILES|SIGHAND|THREAD|...
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


def run_filter(program: list[tuple[int, int, int, int]], arch: int, nr: int, arg0: int) -> int:
    """What the kernel would answer for a call (nr, arg0) made under `arch`."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == BPF_LD_W_ABS:
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == BPF_RET_K:
            return k
        else:
            taken = {
                BPF_JEQ_K: accumulator == k,
                BPF_JGE_K: accumulator >= k,
                BPF_JSET_K: bool(accumulator & k),
            }[code]
            pc += jt if taken else jf
        pc += 1


@pytest.mark.parametrize("machine", sorted(SYSCALLS))
def test_each_named_call_gets_its_answer_and_all_others_are_allowed(machine: str) -> None:
    arch, _, numbers = SYSCALLS[machine]
    program = seccomp_program(machine)
    answers = {
        name: run_filter(program, arch, number, 0)
        for name, number in numbers.items()
        if name not in ("clone", "clone3")
    }
    assert answers == dict.fromkeys(answers, EPERM)
    assert run_filter(program, arch, numbers["clone3"], 0) == ENOSYS
    denied = set(numbers.values())
    allowed = [nr for nr in range(0, 460) if nr not in denied]
    assert {run_filter(program, arch, nr, 0) for nr in allowed} == {SECCOMP_RET_ALLOW}


@pytest.mark.parametrize("machine", sorted(SYSCALLS))
def test_clone_is_refused_only_with_a_namespace_flag(machine: str) -> None:
    arch, _, numbers = SYSCALLS[machine]
    program = seccomp_program(machine)
    clone = numbers["clone"]

    assert run_filter(program, arch, clone, CLONE_THREAD_FLAGS) == SECCOMP_RET_ALLOW
    assert run_filter(program, arch, clone, 17) == SECCOMP_RET_ALLOW  # fork(): SIGCHLD
    assert run_filter(program, arch, clone, 17 | CLONE_NEWUSER) == EPERM
    assert run_filter(program, arch, clone, CLONE_THREAD_FLAGS | CLONE_NEWNET) == EPERM
    assert {run_filter(program, arch, clone, 1 << bit) for bit in range(32)} == {
        SECCOMP_RET_ALLOW,
        EPERM,
    }
    refused = {bit for bit in range(32) if run_filter(program, arch, clone, 1 << bit) == EPERM}
    assert refused == {bit for bit in range(32) if CLONE_NAMESPACES & (1 << bit)}


def test_another_architectures_calls_kill_the_process() -> None:
    program = seccomp_program("x86_64")
    i386 = 0x40000003
    assert run_filter(program, i386, 0, 0) == SECCOMP_RET_KILL_PROCESS
    assert run_filter(program, SYSCALLS["x86_64"][0], 0x40000000 + 1, 0) == EPERM  # x32


def test_an_unknown_machine_is_a_jail_error() -> None:
    from vpnsim.grade.sandbox import JailError

    with pytest.raises(JailError, match="no seccomp filter for riscv64"):
        seccomp_program("riscv64")
