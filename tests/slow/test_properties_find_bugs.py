"""The property tests find real bugs and shrink them to their boundary.

The client in tests/data/broken reads 1000 bytes from its TUN, so any IP packet longer than
1000 bytes is cut and never answered. The smallest UDP payload that makes one is 973 bytes
(973 + 8 UDP + 20 IP = 1001), and that is the example Hypothesis must report. The same
property against the reference tunnel passes: the failure comes from the bug, not the harness.

The server there writes whatever arrives into its TUN, as the lab's textbook server does: a
datagram whose inner packet has no IP version kills it (EINVAL). The corruption property on
the impaired outer link must find that, shrink it to one datagram damaged in that one byte,
and print `vpnsim lab impair` flags that kill the same server on a lab set up by hand.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vpnsim.leaks import leftovers
from vpnsim.net import namespace
from vpnsim.topology import NS_PREFIX, destroy, lab_of, new_lab_name, owner_of

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).parents[2]
BROKEN_CLIENT = "tests/data/broken/client_reads_1000.py"
BROKEN_SERVER = "tests/data/broken/server_writes_anything.py"
RUN_TIMEOUT = 300.0  # the broken run takes ~30 s (each shrink step waits out the probe timeout)


def _udp_property(*extra: str) -> tuple[int, str]:
    """Run the UDP U->V property in a pytest session of its own; its exit code and output."""
    return _property("tests/properties/test_tunnel_properties.py", "udp and U-", *extra)


def _property(test_file: str, keyword: str, *extra: str) -> tuple[int, str]:
    """Run the properties of `test_file` matching `keyword` in a pytest session of its own;
    its exit code and output.

    Afterwards no namespace of a lab that session could have built may remain. Labs of
    other tests (not named pt-...) or owned by a live process (another test session at work
    on this machine) are not its own and are ignored."""
    before = set(namespace.list_names(NS_PREFIX))
    env = dict(os.environ)
    for var in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "VPNSIM_VPN_IMPL"):
        env.pop(var, None)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    argv += ["--hypothesis-profile=ci", test_file, "-k", keyword, *extra]
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        new = sorted(set(namespace.list_names(NS_PREFIX)) - before)
        left = [
            ns for ns in new if lab_of(ns).startswith("pt-") and not _alive(owner_of(lab_of(ns)))
        ]
        for lab in sorted({lab_of(ns) for ns in new if owner_of(lab_of(ns)) == process.pid}):
            destroy(lab)  # only labs this session built, whatever is asserted next
    assert left == [], f"namespaces left behind: {left}\n{out}"
    return process.returncode, out


def vpnsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpnsim", *args], cwd=REPO, capture_output=True, text=True
    )


def _alive(pid: int | None) -> bool:
    return pid is not None and os.path.exists(f"/proc/{pid}")


def test_the_udp_property_finds_the_1000_byte_read_and_shrinks_it_to_973_bytes() -> None:
    code, out = _udp_property(
        "--vpn-impl", f"client={sys.executable} -u {BROKEN_CLIENT}", "--vpn-probe-timeout", "0.2"
    )

    assert code == 1, out
    assert "FAILED tests/properties/test_tunnel_properties.py::" in out
    assert "test_udp_payloads_arrive_byte_for_byte[U->V]" in out
    assert "ProbeFailed: UDP 973 bytes from U to 192.168.60.5:7: no reply within 0.2 s" in out
    # Hypothesis words it "Falsifying example" up to 6.15x, "Failing test case" since.
    assert re.search(
        r"(Falsifying example|Failing test case): test_udp_payloads_arrive_byte_for_byte\(", out
    ), out
    assert re.search(r"payload=Payload\(\nE +size=973,\n", out), out
    assert re.search(r"@reproduce_failure\('[\d.]+', b'[^']+'\)", out), out
    assert re.search(r"^1 failed, 3 deselected", out, re.M), out


def test_the_same_property_passes_against_the_reference_tunnel() -> None:
    code, out = _udp_property("--vpn-probe-timeout", "0.2")

    assert code == 0, out
    assert re.search(r"^1 passed, 3 deselected in [\d.]+s", out, re.M), out


def test_the_corruption_property_finds_a_server_killed_by_a_non_ip_packet() -> None:
    server = f"server={sys.executable} -u {BROKEN_SERVER}"
    code, out = _property(
        "tests/properties/test_impaired_tunnel.py", "corruption", "--vpn-impl", server
    )

    assert code == 1, out
    assert "tests/properties/test_impaired_tunnel.py::test_corruption_is_dropped" in out
    assert "os.write(tun, data)\nOSError: [Errno 22] Invalid argument" in out
    assert "server_writes_anything.py (pid " in out and "exited with status 1" in out
    shrunk = re.search(
        r"impairment=Impairment\(corrupt=(0\.\d+), corrupt_bytes=\(28, 29\), "
        r"fix_checksums=True\),\nE +sizes=\[1\],",
        out,
    )
    assert shrunk, out
    assert re.search(r"@reproduce_failure\('[\d.]+', b'[^']+'\)", out), out
    replay = re.search(r"replay on a lab: vpnsim lab impair LAB U:eth0 (.+)$", out, re.M)
    assert replay, out
    flags = replay.group(1).split()
    assert flags == ["--seed", "0", "--corrupt", shrunk.group(1), "--corrupt-bytes", "28-28",
                     "--fix-checksums"]  # fmt: skip

    # The printed flags, on a lab of one's own, kill the same server with one datagram.
    name = new_lab_name("replay")
    assert vpnsim("lab", "up", "--name", name, "--vpn-impl", server).returncode == 0
    try:
        assert vpnsim("lab", "impair", name, "U:eth0", *flags).returncode == 0
        probe = vpnsim("lab", "probe", name, "U", "192.168.60.5", "--udp", "--size", "1",
                       "--timeout", "0.5")  # fmt: skip
        assert probe.returncode == 1
        assert "  server:eth0: 1 UDP datagram to 10.9.0.11:9090, 0 from it\n" in probe.stdout
        assert "carrying 29 bytes that are not an IPv4 or IPv6 packet\n" in probe.stdout
        assert "  server:bug0: deleted during the probe (did its program exit?)\n" in probe.stdout
        assert re.search(
            r"server_writes_anything\.py \(pid \d+\) exited during the probe; its stderr ends:\n"
            r"(    .*\n)*    OSError: \[Errno 22\] Invalid argument\n",
            probe.stdout,
        ), probe.stdout
        stats = vpnsim("lab", "impair", name, "U:eth0").stdout
        assert "  out: seen 1, delivered 1, corrupted 1" in stats, stats
    finally:
        vpnsim("lab", "down", name)
    assert leftovers([name]) == {}
