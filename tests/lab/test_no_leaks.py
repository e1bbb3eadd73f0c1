"""The pytest plugin as a user meets it: a test session of its own, in a subprocess, that
uses the lab fixtures and fails, loses its tunnel client, is interrupted or is killed.

Whatever happens, the machine ends as it was: no namespace, no process in one, no link in the
root namespace, no state file. A killed run cannot clean up, so its lab is left behind, and
`vpnsim clean` removes it (its owner is dead).

Each inner session runs in tmp_path, so this repository's pyproject.toml is not its config;
the plugin loads through its pytest11 entry point, as in any project where vpnsim is installed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vpnsim import proc
from vpnsim.leaks import labs_logging_under, leftovers
from vpnsim.net import namespace
from vpnsim.net.rtnl import Rtnl
from vpnsim.topology import NS_PREFIX, destroy, owner_of, unowned_labs

pytestmark = pytest.mark.lab

RUN_TIMEOUT = 600.0  # an inner session takes ~1.5 s (67 s at a load of 25): only stops a hung one
HOSTS = ("U", "server", "V", "V2", "_fabric")

# Shared by every inner test file: the test records its lab and tunnel for the outer test
# (atomically: the outer test polls for the file while the inner one runs).
PRELUDE = """\
import json
import signal
import time
from pathlib import Path


def record(tunnel):
    facts = {
        "lab": tunnel.lab.name,
        "client_pid": tunnel.client.pid,
        "server_pid": tunnel.server.pid,
        "client_label": tunnel.client.label,
        "logs": [
            [program.host, str(path)]
            for program in (tunnel.client, tunnel.server)
            for path in (program.stdout_path, program.stderr_path)
        ],
    }
    Path("tunnel.json.tmp").write_text(json.dumps(facts))
    Path("tunnel.json.tmp").replace("tunnel.json")
"""

FAILS_AFTER_A_PING = """
def test_inner(vpn_tunnel, probes):
    probes.ping("U", "192.168.60.5")
    record(vpn_tunnel)
    assert False
"""

CLIENT_DIES = """
def test_inner(vpn_tunnel, probes):
    probes.ping("U", "192.168.60.5")
    record(vpn_tunnel)
    vpn_tunnel.client.signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while vpn_tunnel.client.running():
        assert time.monotonic() < deadline, "the client survived SIGKILL"
        time.sleep(0.01)
"""

BLOCKS = """
def test_inner(vpn_tunnel, probes):
    probes.ping("U", "192.168.60.5")
    record(vpn_tunnel)
    time.sleep(60)
"""


def _ctrl_c_as_at_a_terminal() -> None:
    """SIGINT as a terminal's Ctrl-C finds it. A CI job started in the background by a shell
    runs with SIGINT ignored; its children inherit that, and Python then installs no
    KeyboardInterrupt handler: the inner session would sleep through the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _root_links() -> frozenset[str]:
    with Rtnl.open(None) as root:
        return frozenset(link.name for link in root.links())


@dataclass(frozen=True)
class Tunnel:
    """What the inner test recorded about its lab and tunnel."""

    lab: str
    client_pid: int
    server_pid: int
    client_label: str
    logs: list[tuple[str, Path]]  # (host, log file), in the order the plugin reports them

    @property
    def namespaces(self) -> list[str]:
        return sorted(f"{NS_PREFIX}{self.lab}.{host}" for host in HOSTS)


class InnerRun:
    """One inner pytest session in tmp_path, and what it may have left on the machine."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.basetemp = tmp_path / "basetemp"
        self.root_links_before = _root_links()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, body: str) -> subprocess.Popen[str]:
        (self.dir / "test_inner.py").write_text(PRELUDE + body)
        env = dict(os.environ)
        for var in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "VPNSIM_VPN_IMPL"):
            env.pop(var, None)  # the reference tunnel, the plugin auto-loaded, no extra options
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        argv += [f"--basetemp={self.basetemp}", "test_inner.py"]
        self.proc = subprocess.Popen(
            argv, cwd=self.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, preexec_fn=_ctrl_c_as_at_a_terminal,
        )  # fmt: skip
        return self.proc

    def run(self, body: str) -> tuple[int, str]:
        """Run the inner session to its end; its exit code and output."""
        process = self.start(body)
        out, _ = process.communicate(timeout=RUN_TIMEOUT)
        return process.returncode, out

    def tunnel(self) -> Tunnel | None:
        try:
            facts: dict[str, Any] = json.loads((self.dir / "tunnel.json").read_text())
        except FileNotFoundError:
            return None
        logs = [(host, Path(path)) for host, path in facts.pop("logs")]
        return Tunnel(logs=logs, **facts)

    def wait_for_tunnel(self) -> Tunnel:
        """Wait until the inner test has its tunnel up and has pinged through it."""
        assert self.proc is not None
        deadline = time.monotonic() + RUN_TIMEOUT
        while (found := self.tunnel()) is None:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                pytest.fail(f"the inner session ended before its test ran:\n{out}")
            assert time.monotonic() < deadline, "the inner test never got its tunnel"
            time.sleep(0.02)
        return found

    def labs(self) -> list[str]:
        """Labs of the inner session still on the machine: the plugin keeps their logs under
        the session's basetemp. Labs of other tests, other xdist workers or other users'
        sessions, however they are named or owned, are never among them."""
        return labs_logging_under(self.basetemp)

    def new_namespaces(self) -> list[str]:
        """The namespaces of the inner session's labs still on the machine."""
        return sorted(
            ns for lab in self.labs() for ns in namespace.list_names(f"{NS_PREFIX}{lab}.")
        )

    def left_behind(self) -> dict[str, list[str]]:
        """Everything the inner session left on the machine; empty if nothing."""
        assert self.proc is not None and self.proc.poll() is not None, "still running"
        new = self.new_namespaces()
        found = {
            "namespaces": new,
            "processes in them": [str(pid) for pid in namespace.pids_in(new)],
            "root links added": sorted(_root_links() - self.root_links_before),
            "root links removed": sorted(self.root_links_before - _root_links()),
        }
        recorded = self.tunnel()
        labs = set(self.labs()) | ({recorded.lab} if recorded is not None else set())
        found.update(leftovers(sorted(labs)))
        return {what: items for what, items in found.items() if items}

    def cleanup(self) -> None:
        """Stop the inner session if still running and remove the labs it left, only those."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        ours = set(self.labs())
        recorded = self.tunnel()
        if recorded is not None:
            ours.add(recorded.lab)
        for lab in sorted(ours):
            destroy(lab)


@pytest.fixture
def inner(tmp_path: Path) -> Iterator[InnerRun]:
    run = InnerRun(tmp_path)
    try:
        yield run
    finally:  # whatever a test asserted, nothing of the inner session stays on the machine
        run.cleanup()


def _tcpdump(pcap: Path) -> str:
    read = subprocess.run(["tcpdump", "-nr", str(pcap)], capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    return read.stdout


def _sections(out: str) -> list[tuple[str, str]]:
    """(title, body) of each `- title -` section the plugin added to a failure report."""
    found: list[tuple[str, str]] = []
    lines = out.splitlines()
    for index, line in enumerate(lines):
        match = re.fullmatch(r"-+ (vpnsim .+) -+", line)
        if match:
            body: list[str] = []
            for following in lines[index + 1 :]:
                if re.fullmatch(r"(-+ vpnsim .+ -+)|(=+ .* =+)", following):
                    break
                body.append(following)
            found.append((match.group(1), "\n".join(body).strip()))
    return found


def test_a_failing_test_shows_the_tunnel_logs_and_leaves_nothing(inner: InnerRun) -> None:
    code, out = inner.run(FAILS_AFTER_A_PING)

    assert code == 1, out
    assert "FAILED test_inner.py::test_inner - assert False" in out
    assert re.search(r"^1 failed in [\d.]+s$", out, re.M), out
    tunnel = inner.tunnel()
    assert tunnel is not None
    # The tail of each program's stdout and stderr, titled with its host and log file, which
    # is kept under the session's basetemp.
    pcaps = inner.basetemp / "vpnsim0" / "pcaps" / "test_inner"
    assert _sections(out) == [
        *((f"vpnsim {host}: {path}", path.read_text().strip()) for host, path in tunnel.logs),
        ("vpnsim pcaps", f"7 links captured: {pcaps}"),
    ]
    # Every link of the lab, kept as pcap: the ping is on U's TUN and, in UDP, on the wire.
    links = ["U-eth0", "U-tun0", "server-eth0", "server-eth1", "server-tun0", "V-eth0", "V2-eth0"]
    assert sorted(p.name for p in pcaps.iterdir()) == sorted(
        f"{tunnel.lab}-{link}.pcap" for link in links
    )
    on_tun = _tcpdump(pcaps / f"{tunnel.lab}-U-tun0.pcap")
    assert "192.168.53.99 > 192.168.60.5: ICMP echo request" in on_tun
    assert "192.168.60.5 > 192.168.53.99: ICMP echo reply" in on_tun
    assert "10.9.0.11.9090 > 10.9.0.5." in _tcpdump(pcaps / f"{tunnel.lab}-U-eth0.pcap")
    assert [host for host, _ in tunnel.logs] == ["U", "U", "server", "server"]
    assert {path.parent for _, path in tunnel.logs} == {inner.basetemp / "vpnsim0" / tunnel.lab}
    assert "client: tun0 192.168.53.99/24 up, udp port 9090" in tunnel.logs[0][1].read_text()
    assert "LEAKED" not in out
    assert inner.left_behind() == {}


def test_a_client_that_dies_during_a_test_fails_it_and_leaves_nothing(inner: InnerRun) -> None:
    code, out = inner.run(CLIENT_DIES)

    assert code == 1, out
    tunnel = inner.tunnel()
    assert tunnel is not None
    # The test body passed: the failure is the plugin's, naming the program and its status.
    failure = f"{tunnel.client_label}: exited with status -9 during this test"
    assert failure.startswith(f"U: {sys.executable} -m vpnsim.tunnel client ")
    assert f"\n{failure}\n" in out
    assert "FAILED test_inner.py::test_inner - Failed: U: " in out
    sections = _sections(out)
    # First the dead program, named in a section of its own, then every log's tail.
    assert sections[0] == ("vpnsim U", f"{tunnel.client_label}: exited with status -9")
    assert [title for title, _ in sections[1:]] == [
        *(f"vpnsim {host}: {path}" for host, path in tunnel.logs),
        "vpnsim pcaps",
    ]
    assert re.search(r"^1 failed in [\d.]+s$", out, re.M), out
    assert not proc.is_alive(tunnel.client_pid)
    assert "LEAKED" not in out
    assert inner.left_behind() == {}


def _interrupt(inner: InnerRun) -> tuple[Tunnel, int, str]:
    process = inner.start(BLOCKS)
    tunnel = inner.wait_for_tunnel()
    assert owner_of(tunnel.lab) == process.pid
    assert namespace.list_names(f"{NS_PREFIX}{tunnel.lab}.") == tunnel.namespaces
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends, to the inner pytest only
    out, _ = process.communicate(timeout=RUN_TIMEOUT)
    return tunnel, process.returncode, out


def test_an_interrupted_run_tears_its_lab_down(inner: InnerRun) -> None:
    tunnel, code, out = _interrupt(inner)

    assert code == pytest.ExitCode.INTERRUPTED, out
    assert "!!! KeyboardInterrupt !!!" in out
    assert re.search(r"test_inner\.py:\d+: KeyboardInterrupt", out), out
    assert not proc.is_alive(tunnel.client_pid) and not proc.is_alive(tunnel.server_pid)
    assert inner.left_behind() == {}


def test_an_interrupted_run_exits_2_without_a_leak_report(inner: InnerRun) -> None:
    _, code, out = _interrupt(inner)

    assert inner.left_behind() == {}
    assert "LEAKED" not in out
    assert code == pytest.ExitCode.INTERRUPTED


def test_a_killed_run_leaves_its_lab_and_vpnsim_clean_removes_it(inner: InnerRun) -> None:
    process = inner.start(BLOCKS)
    tunnel = inner.wait_for_tunnel()
    process.send_signal(signal.SIGKILL)  # no teardown at all
    assert process.wait(timeout=RUN_TIMEOUT) == -signal.SIGKILL

    # Left behind: the lab's namespaces, with the tunnel programs still running in them (they
    # run in sessions of their own), and its state file naming the dead owner.
    assert inner.new_namespaces() == tunnel.namespaces
    assert namespace.pids_in(tunnel.namespaces) == sorted([tunnel.client_pid, tunnel.server_pid])
    assert owner_of(tunnel.lab) == process.pid
    assert sorted(inner.left_behind()) == ["namespaces", "processes in them", tunnel.lab]
    unowned = unowned_labs()
    assert tunnel.lab in unowned
    clean = subprocess.run(
        [sys.executable, "-m", "vpnsim", "clean", tunnel.lab],  # only ours: others may exist
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )

    assert (clean.returncode, clean.stdout, clean.stderr) == (
        0,
        f"removed 1 lab(s): {tunnel.lab}\n",
        "",
    )
    assert not proc.is_alive(tunnel.client_pid) and not proc.is_alive(tunnel.server_pid)
    assert inner.left_behind() == {}


def test_clean_of_named_labs_touches_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vpnsim clean LAB` removes that lab only: not a killed grader's work copy (a run beside
    it may be inspecting it), which plain `vpnsim clean` removes."""
    import argparse

    from vpnsim.cli.maintenance import _clean
    from vpnsim.grade import workcopy

    monkeypatch.setattr(workcopy, "WORK_ROOT", tmp_path)
    stale = tmp_path / f"sub-abc123.{2**22 + 1}"  # above the kernel's PID limit: never alive
    stale.mkdir()

    assert _clean(argparse.Namespace(labs=["no-such-lab"], all=False)) == 0

    assert capsys.readouterr().out == "removed 0 lab(s)\n"
    assert stale.is_dir()
    assert workcopy.remove_stale(tmp_path) == [stale]  # what plain `vpnsim clean` does
