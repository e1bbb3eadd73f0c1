"""`vpnsim run`, `vpnsim validate` and `vpnsim lab up FILE` as a user runs them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from cli_runner import vpnsim, world_readable_dir

from vpnsim.leaks import leftovers
from vpnsim.topology import new_lab_name

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
SEED = str(ROOT / "vpnsim" / "scenarios" / "seed-tunnel.toml")
BROKEN_CLIENT = ROOT / "tests" / "data" / "broken" / "client_reads_1000.py"


def test_validate_needs_no_root_and_says_ok_per_file() -> None:
    files = sorted(str(p) for p in (ROOT / "vpnsim" / "scenarios").glob("*.toml"))
    result = vpnsim("validate", *files, user=65534)
    assert (result.returncode, result.stderr) == (0, "")
    assert [line.split(": ok (")[0] for line in result.stdout.splitlines()] == files
    assert f"{SEED}: ok (4 hosts, 11 checks)" in result.stdout.splitlines()


def test_validate_reports_each_problem_on_its_own_line_and_exits_2() -> None:
    bad = world_readable_dir("vpnsim-validate-") / "bad.toml"  # readable by the user below
    bad.write_text(
        Path(SEED).read_text().replace('from = "U"', 'from = "W"', 1).replace("router", "routr")
    )
    result = vpnsim("validate", str(bad), SEED, user=65534)
    assert result.returncode == 2
    assert result.stderr == (
        f"{bad}:24: hosts.server.routr: unknown key (check its spelling; see `vpnsim schema`)\n"
    )
    assert result.stdout == f"{SEED}: ok (4 hosts, 11 checks)\n"


def test_run_prints_a_verdict_per_check_and_a_summary(tmp_path: Path) -> None:
    result = vpnsim("run", SEED, "--artifacts", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = [line.split()[:2] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert [v[0] for v in verdicts] == ["PASS"] * 11
    assert verdicts[0][1] == "task1-u-cannot-reach-v-without-the-tunnel"
    assert result.stdout.splitlines()[-1] == (
        f"11 passed, 0 failed; logs and evidence in {tmp_path}"
    )
    assert leftovers([p.name for p in tmp_path.iterdir()]) == {}


def test_run_against_a_broken_client_fails_the_right_checks_with_evidence(tmp_path: Path) -> None:
    result = vpnsim(
        "run", SEED, "--artifacts", str(tmp_path),
        "--vpn-impl", f"client={sys.executable} -u {BROKEN_CLIENT}",
    )  # fmt: skip
    assert result.returncode == 1
    failed = re.findall(r"^  FAIL (\S+)", result.stdout, re.M)
    assert failed == ["task5-icmp-both-ways-with-large-packets", "task5-tcp-u-to-v"]
    assert (
        "    seen:     ICMP echo of 1400 bytes from U to 192.168.60.5: no reply within 2 s"
        in result.stdout.splitlines()
    )
    (evidence,) = tmp_path.glob("seed-tunnel-*/evidence/task5-icmp-both-ways-with-large-packets")
    assert f"    evidence: {evidence}" in result.stdout.splitlines()
    names = {p.name for p in evidence.iterdir()}
    assert {"hosts.txt", "outer.pcap"} <= names
    assert any(n.startswith("client-") and n.endswith(".err") for n in names)
    hosts = (evidence / "hosts.txt").read_text()
    assert "  route 192.168.60.0/24 dev bug0" in hosts  # the student's TUN, by its own name


def test_run_refuses_an_invalid_file_before_building_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario]\nname = 'x'\n")
    # This run's labs would be recorded here (a lab's state is written before any of its
    # namespaces is made), not among the labs of other runs on this machine.
    state = tmp_path / "state"
    result = vpnsim("run", SEED, str(bad), extra=["env", f"VPNSIM_STATE_DIR={state}"])
    assert result.returncode == 2
    assert result.stderr.startswith(f"vpnsim: error: {bad}: networks: required key is missing")
    assert result.stdout == ""  # not even the valid first file was run
    assert not state.exists()


def test_lab_up_from_a_file_then_status_and_exec_find_its_hosts() -> None:
    name = new_lab_name("file")
    site = str(ROOT / "vpnsim" / "scenarios" / "seed-site-to-site.toml")
    try:
        up = vpnsim("lab", "up", site, "--name", name)
        assert (up.returncode, up.stdout) == (0, f"{name}\n"), up.stderr
        status = vpnsim("lab", "status", name)
        assert status.returncode == 0, status.stderr
        assert "link client:eth1 UP mtu 1500 192.168.50.12/24" in status.stdout
        ping = vpnsim("lab", "probe", name, "U1", "192.168.60.5")
        assert ping.stdout.splitlines()[0] == "ICMP U1 -> 192.168.60.5: 56 bytes back, identical"
    finally:
        vpnsim("lab", "down", name)
    assert leftovers([name]) == {}


def test_lab_up_starts_the_files_programs_and_status_shows_the_lab_as_built(
    tmp_path: Path,
) -> None:
    """`lab up` brings a file up as `vpnsim run` does: example-two-clients' second client (a
    `[[programs]]` entry) runs, so U2 reaches V through it. The lab records the scenario it
    was built from, so a file changed or removed afterwards does not change `lab status`."""
    name = new_lab_name("two")
    scenario = tmp_path / "two.toml"
    scenario.write_text((ROOT / "vpnsim" / "scenarios" / "example-two-clients.toml").read_text())
    try:
        up = vpnsim("lab", "up", str(scenario), "--name", name)
        assert (up.returncode, up.stdout) == (0, f"{name}\n"), up.stderr
        scenario.write_text(scenario.read_text().replace("[hosts.U2]", "[hosts.W]"))
        status = vpnsim("lab", "status", name)
        assert status.returncode == 0, status.stderr
        programs = [line for line in status.stdout.splitlines() if "program U2:" in line]
        assert len(programs) == 1 and "-m vpnsim.tunnel client" in programs[0], status.stdout
        assert ": running; stderr " in programs[0]
        assert "link U2:tun0 TUN UP mtu 1500 192.168.53.98/24" in status.stdout
        assert "  W  " not in status.stdout
        scenario.unlink()
        ping = vpnsim("lab", "probe", name, "U2", "192.168.60.5")
        assert ping.stdout.splitlines()[0] == "ICMP U2 -> 192.168.60.5: 56 bytes back, identical"
        assert ping.returncode == 0, ping.stdout + ping.stderr
    finally:
        vpnsim("lab", "down", name)
    assert leftovers([name]) == {}


def test_run_and_validate_take_shipped_names() -> None:
    result = vpnsim("validate", "seed-tap", "no-such-scenario", user=65534)
    assert result.returncode == 2
    assert result.stdout == "seed-tap: ok (4 hosts, 6 checks)\n"
    assert result.stderr.startswith("unknown scenario 'no-such-scenario'; known scenarios: ")
