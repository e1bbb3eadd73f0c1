"""`proc.start` puts a program in its host's namespaces, as `ip netns exec` would, from a
harness with threads running, and leaves every harness thread where it was."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim import proc
from vpnsim.errors import HarnessError
from vpnsim.net import namespace
from vpnsim.topology import new_lab_name

pytestmark = pytest.mark.lab


@pytest.fixture
def netns() -> Iterator[str]:
    name = new_lab_name("ps")
    namespace.create(name)
    try:
        yield name
    finally:
        for pid in namespace.pids_in([name]):
            proc.kill_and_wait([pid])
        namespace.remove(name)


def _run(ns: str, argv: list[str], logs: Path) -> proc.Program:
    program = proc.start("h", ns, argv, logs)
    assert program.popen is not None
    assert program.popen.wait(10) == 0, program.stderr()
    return program


def test_the_program_runs_in_the_namespace_with_its_own_sysfs(netns: str, tmp_path: Path) -> None:
    waiting = threading.Event()  # a thread of the harness, as a capture's is
    other = threading.Thread(target=waiting.wait)
    other.start()
    try:
        program = _run(
            netns, ["sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net"], tmp_path
        )
    finally:
        waiting.set()
        other.join()
    ns_link, *interfaces = program.stdout().split()
    assert ns_link == f"net:[{os.stat(namespace.path_of(netns)).st_ino}]"
    assert interfaces == ["lo"]  # the new namespace's sysfs, not the root namespace's


def test_the_harness_threads_stay_in_their_namespaces(netns: str, tmp_path: Path) -> None:
    before = {kind: os.readlink(f"/proc/thread-self/ns/{kind}") for kind in ("net", "mnt")}
    sys_before = sorted(os.listdir("/sys/class/net"))
    _run(netns, ["true"], tmp_path)
    after = {kind: os.readlink(f"/proc/thread-self/ns/{kind}") for kind in ("net", "mnt")}
    assert after == before
    assert sorted(os.listdir("/sys/class/net")) == sys_before


def test_the_program_keeps_its_pid_and_environment(netns: str, tmp_path: Path) -> None:
    program = proc.start(
        "h", netns, ["sh", "-c", 'echo "$$ $VPNSIM_T $PYTHONUNBUFFERED"'], tmp_path,
        env={"VPNSIM_T": "x y"},
    )  # fmt: skip
    assert program.popen is not None and program.popen.wait(10) == 0
    assert program.stdout() == f"{program.pid} x y 1\n"
    assert program.label == f'h: sh -c echo "$$ $VPNSIM_T $PYTHONUNBUFFERED" (pid {program.pid})'


def test_a_program_that_cannot_run_is_a_finding_at_start(netns: str, tmp_path: Path) -> None:
    with pytest.raises(proc.ProgramFailed) as failed:
        proc.start("h", netns, ["/nonexistent/tun_server"], tmp_path)
    assert str(failed.value) == (
        "h: /nonexistent/tun_server (pid -1): cannot start: No such file or directory"
    )


def test_a_missing_namespace_is_a_harness_error(tmp_path: Path) -> None:
    name = new_lab_name("gone")
    with pytest.raises(HarnessError) as failed:
        proc.start("h", name, ["true"], tmp_path)
    assert str(failed.value) == f"cannot enter network namespace {name}: No such file or directory"
