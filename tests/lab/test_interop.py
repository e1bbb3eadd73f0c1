"""Plain mode is the SEED wire format: the reference interoperates with a student's programs
(tests/data/seed_submission: scapy, `ip` via os.system, own TUN names, hardcoded addresses)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.impl import TunnelImpl
from vpnsim.pytest.fixtures import LabFactory
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel, start_tunnel

pytestmark = pytest.mark.lab

SUBMISSION = Path(__file__).parents[1] / "data" / "seed_submission"
# The student's programs import scapy, a test extra: run them with this interpreter (the test
# environment's), not whichever `python3` comes first on PATH (a pyenv shim outside nox).
PYTHON = sys.executable
V = "192.168.60.5"


@pytest.fixture(
    params=["student client, reference server", "reference client, student server"],
    scope="module",
)
def mixed(request: pytest.FixtureRequest, vpnsim_labs: LabFactory) -> Iterator[RunningTunnel]:
    side = "client" if request.param.startswith("student client") else "server"
    student = (PYTHON, "-u", str(SUBMISSION / f"tun_{side}.py"))
    impl = TunnelImpl(
        label=request.param,
        client_argv=student if side == "client" else None,
        server_argv=student if side == "server" else None,
        cwd=SUBMISSION,
    )
    lab = vpnsim_labs.build("seed-tunnel")  # owned by this session, leak-checked at its end
    try:
        yield start_tunnel(lab, impl, timeout=20)
    finally:
        lab.teardown()


def test_icmp_and_tcp_cross_a_mixed_tunnel(mixed: RunningTunnel) -> None:
    probes = Probes(mixed.lab, mixed)
    with probes.evidence() as rec:
        assert probes.ping("U", V, b"interop").payload == b"interop"
        assert probes.tcp("U", V, b"telnet-like" * 100) == b"telnet-like" * 100
    assert rec.result.through_tunnel
    assert mixed.client_tun.startswith("chen") or mixed.server_tun.startswith("chen")
    probes.close()
