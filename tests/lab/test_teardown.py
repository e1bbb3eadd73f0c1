"""Teardown leaves nothing: no namespace, no process (even ones the lab did not start itself),
no state file, no link in the root namespace; a failed build cleans up after itself."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

from vpnsim import proc
from vpnsim.errors import HarnessError
from vpnsim.leaks import labs_logging_under, leftovers
from vpnsim.model import RouteSpec, ScenarioError
from vpnsim.net import namespace
from vpnsim.net.rtnl import Rtnl
from vpnsim.seed import seed_tunnel
from vpnsim.topology import build_lab, new_lab_name

pytestmark = pytest.mark.lab


def _root_links() -> list[tuple[int, str]]:
    with Rtnl.open(None) as root:
        return sorted((link.index, link.name) for link in root.links())


def test_teardown_kills_every_process_in_the_lab_and_removes_everything(tmp_path: Path) -> None:
    root_before = _root_links()
    lab = build_lab(seed_tunnel(), name=new_lab_name("td"), log_dir=tmp_path)
    started = lab.start("V", ["sleep", "600"])
    # A grandchild the lab never saw: it must be found by its namespace, not by bookkeeping.
    lab.start("U", ["sh", "-c", "sleep 600 & echo $! > grandchild; wait"], cwd=tmp_path)
    started.wait_ready(lambda: (tmp_path / "grandchild").exists(), 5, "grandchild pid written")
    grandchild = int((tmp_path / "grandchild").read_text())
    running = set(lab.pids())
    assert {started.pid, grandchild} <= running and len(running) == 3

    report = lab.teardown()

    assert set(report.killed) == running and report.survivors == ()
    assert sorted(report.namespaces_removed) == sorted(lab.namespaces())
    assert not proc.is_alive(grandchild)  # at most a zombie waiting for init to reap it
    assert leftovers([lab.name]) == {}
    assert _root_links() == root_before
    assert lab.teardown().namespaces_removed == ()  # idempotent


def test_a_runs_labs_are_found_by_where_they_log_never_another_runs(tmp_path: Path) -> None:
    # Two runs at once, one keeping its logs under run/, the other under run-2/ (a sibling
    # whose name starts the same): each finds its own lab and never the other's.
    mine = build_lab(
        seed_tunnel(), name=new_lab_name("mine"), log_dir=tmp_path / "run" / "lab",
        owner_pid=os.getpid(),
    )  # fmt: skip
    other = build_lab(
        seed_tunnel(), name=new_lab_name("other"), log_dir=tmp_path / "run-2",
        owner_pid=os.getpid(),
    )  # fmt: skip
    try:
        assert labs_logging_under(tmp_path / "run") == [mine.name]
        assert labs_logging_under(tmp_path / "run-2") == [other.name]
        mine.teardown()
        assert labs_logging_under(tmp_path / "run") == []
        assert labs_logging_under(tmp_path / "run-2") == [other.name]
    finally:
        mine.teardown()
        other.teardown()
    assert leftovers([mine.name, other.name]) == {}


def test_a_build_that_fails_half_way_removes_what_it_created(tmp_path: Path) -> None:
    scenario = seed_tunnel()
    v = scenario.host("V")
    broken_v = dataclasses.replace(v, routes=(RouteSpec("10.77.0.0/16", via="172.16.0.1"),))
    broken = dataclasses.replace(
        scenario, hosts=tuple(broken_v if h.name == "V" else h for h in scenario.hosts)
    )
    name = new_lab_name("bf")
    with pytest.raises(ScenarioError, match=r"hosts\.V: route 10\.77\.0\.0/16"):
        build_lab(broken, name=name, log_dir=tmp_path)
    assert leftovers([name]) == {}


def test_a_lab_name_in_use_is_refused_without_touching_the_running_lab(tmp_path: Path) -> None:
    lab = build_lab(seed_tunnel(), name=new_lab_name("dup"), log_dir=tmp_path)
    try:
        with pytest.raises(HarnessError, match=f"a lab named '{lab.name}' exists already"):
            build_lab(seed_tunnel(), name=lab.name, log_dir=tmp_path)
        assert len(namespace.list_names(f"vpnsim.{lab.name}.")) == 5
    finally:
        lab.teardown()


def test_a_program_that_dies_is_a_finding_with_its_stderr(tmp_path: Path) -> None:
    lab = build_lab(seed_tunnel(), name=new_lab_name("pf"), log_dir=tmp_path)
    try:
        program = lab.start("server", ["sh", "-c", "echo 'Traceback: boom' >&2; exit 3"])
        with pytest.raises(proc.ProgramFailed) as failed:
            program.wait_ready(lambda: False, 5, "UDP port 9090 bound")
        message = str(failed.value)
        assert "exited with status 3 before UDP port 9090 bound" in message
        assert "Traceback: boom" in message
    finally:
        lab.teardown()


def test_readiness_sees_a_udp_port_bound_inside_the_namespace(tmp_path: Path) -> None:
    lab = build_lab(seed_tunnel(), name=new_lab_name("rd"), log_dir=tmp_path)
    try:
        code = "import socket,time; s=socket.socket(2,2); s.bind(('0.0.0.0',9090)); time.sleep(60)"
        program = lab.start("server", [sys.executable, "-c", code])
        waited = program.wait_ready(lambda: proc.port_bound(program.pid, 9090), 5, "port bound")
        assert waited < 5
        assert not proc.port_bound(program.pid, 9091)
        assert not proc.port_bound(program.pid, 9090, "tcp")
    finally:
        lab.teardown()
