"""`vpnsim run` and `vpnsim demo` stopped midway (SIGTERM, as CI runners and `timeout` stop
them; Ctrl-C) remove their labs, say so and exit 128+N.

Each waits until the command's lab runs a process (it is mid-run), never for a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vpnsim.leaks import labs_owned_by, leftovers
from vpnsim.net import namespace
from vpnsim.topology import NS_PREFIX

pytestmark = pytest.mark.lab

WAIT = 120.0  # a backstop on a loaded machine only
# A probe across a link that drops everything: the check waits out its 60 s unless stopped.
CUT_LINK = """
[scenario]
name = "cut-link"

[networks]
"net-a" = { subnet = "10.9.0.0/24" }

[hosts.U]
interfaces = [{ name = "eth0", network = "net-a", address = "10.9.0.5/24" }]

[hosts.server]
interfaces = [{ name = "eth0", network = "net-a", address = "10.9.0.11/24" }]

[[impairments]]
link = "U:eth0"
seed = 1
loss = 1.0

[[checks]]
name = "waits-out-its-timeout"
type = "reach"
from = "U"
to = "10.9.0.11"
timeout = 60
"""


def _start(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "vpnsim", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _wait_for_running_lab(process: subprocess.Popen[str]) -> str:
    """The lab `process` owns, once a process runs in it."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for lab in labs_owned_by([process.pid]):
            if namespace.pids_in(namespace.list_names(f"{NS_PREFIX}{lab}.")):
                return lab
        time.sleep(0.01)
    raise AssertionError(f"no running lab within {WAIT:g} s")


def test_run_stopped_by_sigterm_removes_its_lab_and_exits_143(tmp_path: Path) -> None:
    scenario = tmp_path / "cut-link.toml"
    scenario.write_text(CUT_LINK)
    run = _start("run", str(scenario), "--artifacts", str(tmp_path / "artifacts"))
    lab = _wait_for_running_lab(run)
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=WAIT)
    assert run.returncode == 143, stderr
    assert leftovers([lab]) == {}
    assert labs_owned_by([run.pid]) == []
    assert stderr == "vpnsim: interrupted by SIGTERM: nothing left behind\n"
    assert stdout == f"{scenario}: cut-link\n"  # no verdict: the check was cut short


@pytest.mark.parametrize(
    ("stop", "status"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
    ids=["sigterm", "ctrl-c"],
)
def test_demo_stopped_midway_removes_its_lab(stop: signal.Signals, status: int) -> None:
    demo = _start("demo")
    lab = _wait_for_running_lab(demo)  # the tunnel's ends are up
    os.killpg(demo.pid, stop)  # the group: as a terminal's Ctrl-C, or `timeout`
    _, stderr = demo.communicate(timeout=WAIT)
    assert demo.returncode == status, stderr
    assert leftovers([lab]) == {}
    assert stderr.endswith(f"vpnsim: interrupted by {stop.name}: nothing left behind\n")
