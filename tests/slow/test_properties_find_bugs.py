"""The property tests find a real bug and shrink it to its boundary.

The client in tests/data/broken reads 1000 bytes from its TUN, so any IP packet longer than
1000 bytes is cut and never answered. The smallest UDP payload that makes one is 973 bytes
(973 + 8 UDP + 20 IP = 1001), and that is the example Hypothesis must report. The same
property against the reference tunnel passes: the failure comes from the bug, not the harness.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vpnsim.net import namespace
from vpnsim.topology import NS_PREFIX, destroy, lab_of, owner_of

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).parents[2]
BROKEN_CLIENT = "tests/data/broken/client_reads_1000.py"
RUN_TIMEOUT = 300.0  # the broken run takes ~30 s (each shrink step waits out the probe timeout)


def _udp_property(*extra: str) -> tuple[int, str]:
    """Run the UDP U->V property in a pytest session of its own; its exit code and output.

    Afterwards no namespace of a lab that session could have built may remain. Labs of
    other tests (not named pt-...) or owned by a live process (another test session at work
    on this machine) are not its own and are ignored."""
    before = set(namespace.list_names(NS_PREFIX))
    env = dict(os.environ)
    for var in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "VPNSIM_VPN_IMPL"):
        env.pop(var, None)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    argv += ["--hypothesis-profile=ci", "tests/properties/test_tunnel_properties.py"]
    argv += ["-k", "udp and U-", *extra]
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
