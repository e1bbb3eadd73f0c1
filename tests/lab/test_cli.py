"""The `vpnsim` command as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_runner import vpnsim

from vpnsim.leaks import leftovers
from vpnsim.net import namespace
from vpnsim.topology import new_lab_name

pytestmark = pytest.mark.lab


@pytest.fixture
def lab_name() -> str:
    name = new_lab_name("cli")
    yield name
    vpnsim("lab", "down", name)
    assert leftovers([name]) == {}


def test_lab_up_without_tunnel_then_exec_status_and_down(lab_name: str) -> None:
    up = vpnsim("lab", "up", "--name", lab_name, "--vpn-impl", "none")
    assert (up.returncode, up.stdout) == (0, f"{lab_name}\n")

    status = vpnsim("lab", "status", lab_name)
    assert status.returncode == 0
    assert "link U:eth0 UP mtu 1500 10.9.0.5/24" in status.stdout
    assert "link server:eth1 UP mtu 1500 192.168.60.11/24" in status.stdout
    assert "route default via 192.168.60.11 dev eth0" in status.stdout

    ran = vpnsim("lab", "exec", lab_name, "V", "--", "cat", "/sys/class/net/eth0/operstate")
    assert (ran.returncode, ran.stdout) == (0, "up\n")
    failed = vpnsim("lab", "exec", lab_name, "V", "--", "sh", "-c", "exit 7")
    assert failed.returncode == 7

    down = vpnsim("lab", "down", lab_name)
    assert down.returncode == 0
    assert "5 namespaces removed" in down.stdout
    assert leftovers([lab_name]) == {}


def test_lab_up_with_the_reference_tunnel_and_down_kills_it(lab_name: str) -> None:
    up = vpnsim("lab", "up", "--name", lab_name)
    assert up.returncode == 0, up.stderr
    status = vpnsim("lab", "status", lab_name)
    assert " TUN UP " in status.stdout and "192.168.53.99/24" in status.stdout
    assert "192.168.53.1/24" in status.stdout
    assert status.stdout.count(": running;") == 2
    assert "route 192.168.60.0/24 dev tun" in status.stdout
    down = vpnsim("lab", "down", lab_name)
    assert "2 processes killed, 5 namespaces removed" in down.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("lab", "up", "nope"),
            "unknown scenario 'nope'; known scenarios: example-ipv6-inside, example-lossy-link, "
            "example-router-chain, example-two-clients, seed-site-to-site, seed-tap, seed-tls, "
            "seed-tunnel (or give a path to a .toml file)",
        ),
        (("lab", "status", "no-such-lab"), "no lab named 'no-such-lab'"),
        (("lab", "down", "no-such-lab"), "no lab named 'no-such-lab'"),
        (("lab", "exec", "no-such-lab", "U", "--", "true"), "no lab named 'no-such-lab'"),
        (("lab", "up", "--name", "bad.name", "--vpn-impl", "none"), "lab name 'bad.name'"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = vpnsim(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_host_in_a_running_lab(lab_name: str) -> None:
    vpnsim("lab", "up", "--name", lab_name, "--vpn-impl", "none")
    result = vpnsim("lab", "exec", lab_name, "W", "--", "true")
    assert result.returncode == 2
    assert result.stderr == (
        "vpnsim: error: unknown host 'W' in scenario seed-tunnel (hosts: U, server, V, V2)\n"
    )


def test_not_root_says_to_use_sudo_and_creates_nothing() -> None:
    name = new_lab_name("nr")
    result = vpnsim("lab", "up", "--name", name, user=65534)
    assert result.returncode == 2
    assert result.stderr == (
        "vpnsim: error: vpnsim needs root to create network namespaces: run it with sudo "
        "(e.g. `sudo vpnsim lab up` or `sudo nox`)\n"
    )
    assert leftovers([name]) == {}


def test_missing_dev_net_tun_says_how_to_get_it_and_creates_nothing(tmp_path: Path) -> None:
    name = new_lab_name("nt")
    # A private mount namespace where /dev/net is an empty tmpfs: no TUN device there.
    hide_tun = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs none /dev/net && exec "$@"',
        "sh",
    ]
    result = vpnsim("lab", "up", "--name", name, extra=hide_tun)
    assert result.returncode == 2
    assert "/dev/net/tun is missing: load the tun module (`modprobe tun`)" in result.stderr
    assert leftovers([name]) == {}


def test_clean_removes_unowned_labs_but_not_one_a_live_process_owns(tmp_path: Path) -> None:
    from vpnsim.seed import seed_tunnel
    from vpnsim.topology import build_lab

    orphan = new_lab_name("orph")
    # --tunnel: the old spelling of --vpn-impl, kept as a hidden alias.
    assert vpnsim("lab", "up", "--name", orphan, "--tunnel", "none").returncode == 0
    owned = build_lab(
        seed_tunnel(), name=new_lab_name("own"), log_dir=tmp_path, owner_pid=os.getpid()
    )
    try:
        # Named: a bare `vpnsim clean` would also remove other runs' unowned labs (a
        # concurrent `lab up`, an xdist worker's CLI test) from under them.
        result = vpnsim("clean", orphan)
        assert (result.returncode, result.stdout) == (0, f"removed 1 lab(s): {orphan}\n")
        assert leftovers([orphan]) == {}
        refused = vpnsim("clean", owned.name)
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2,
            "",
            f"vpnsim: error: lab(s) owned by a running process: {owned.name} "
            "(use --all to force)\n",
        )
        assert namespace.list_names(f"vpnsim.{owned.name}.") == sorted(owned.namespaces())
    finally:
        owned.teardown()
    assert leftovers([owned.name]) == {}


def test_lab_probe_compares_the_answer_and_shows_the_tunnel_evidence(
    lab_name: str, tmp_path: Path
) -> None:
    assert vpnsim("lab", "up", "--name", lab_name).returncode == 0
    pcap = tmp_path / "outer.pcap"
    icmp = vpnsim(
        "lab", "probe", lab_name, "U", "192.168.60.5", "--size", "3000", "--pcap", str(pcap)
    )
    assert icmp.returncode == 0, icmp.stderr
    assert icmp.stdout.splitlines()[:4] == [
        "ICMP U -> 192.168.60.5: 3000 bytes back, identical",
        "  U:tun0: 3 packets into the tunnel (3068 bytes), 3 out of it (3068 bytes)",
        "  server:tun0: 3 packets out of the tunnel (3068 bytes), 3 into it (3068 bytes)",
        "  server:eth0: 3 UDP datagrams to 10.9.0.11:9090, 3 from it",
    ]
    assert pcap.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")  # pcap magic, little-endian
    tcp = vpnsim("lab", "probe", lab_name, "U", "192.168.60.5", "--tcp", "--size", "20000")
    assert tcp.stdout.splitlines()[0] == "TCP U -> 192.168.60.5: 20000 bytes back, identical"
    # A second probe reuses the echo service the first one started on V.
    udp = vpnsim("lab", "probe", lab_name, "U", "192.168.60.5", "--udp")
    assert udp.stdout.splitlines()[0] == "UDP U -> 192.168.60.5: 56 bytes back, identical"


def test_lab_probe_without_a_tunnel_is_a_finding_and_bad_names_are_usage_errors(
    lab_name: str,
) -> None:
    assert vpnsim("lab", "up", "--name", lab_name, "--vpn-impl", "none").returncode == 0
    blocked = vpnsim("lab", "probe", lab_name, "U", "192.168.60.5", "--timeout", "0.5")
    assert (blocked.returncode, blocked.stdout) == (
        1,
        "ICMP U -> 192.168.60.5: FAIL: ICMP echo of 56 bytes from U to 192.168.60.5: "
        "no route (Network is unreachable)\n",
    )
    unknown = vpnsim("lab", "probe", lab_name, "W", "192.168.60.5")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "vpnsim: error: unknown host 'W' in scenario seed-tunnel (hosts: U, server, V, V2)\n",
    )
    nobody = vpnsim("lab", "probe", lab_name, "U", "1.2.3.4", "--udp")
    assert (nobody.returncode, nobody.stderr) == (
        2,
        f"vpnsim: error: no host of lab {lab_name} owns 1.2.3.4\n",
    )
