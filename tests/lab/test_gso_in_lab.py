"""`--gso` (reference-gso, reference-aead-gso) in the SEED lab: TCP crosses intact in runs of
datagrams, each way in fewer system calls than datagrams, and the wire stays SEED's: an end
without --gso, on either side, receives every datagram as one whole IP packet."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from vpnsim.impl import TunnelImpl, reference_argv
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes
from vpnsim.tunnel.fuzz import MODES, start_reference_lab
from vpnsim.vpn import RunningTunnel, start_tunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
SPEC = seed_tunnel().tunnel
assert SPEC is not None


def traffic_then_reports(lab: Lab, tunnel: RunningTunnel) -> tuple[dict[str, Any], ...]:
    """1 MB of TCP U -> V and back and a 5000-byte ping (fragments, one run), then each end's
    exit report (client, server)."""
    probes = Probes(lab, tunnel)
    data = os.urandom(1_000_000)
    assert probes.tcp("U", V, data, timeout=60) == data
    assert probes.ping("U", V, b"and a ping" * 500).payload == b"and a ping" * 500
    probes.close()
    assert (tunnel.stop_client(), tunnel.server.stop()) == (0, 0)
    return tuple(
        json.loads(end.stdout().splitlines()[-1]) for end in (tunnel.client, tunnel.server)
    )


def run_tcp(tmp_path: Path, client_gso: bool, server_gso: bool) -> tuple[dict[str, Any], ...]:
    """`traffic_then_reports` through plain ends, each with or without --gso."""

    def argv(side: str, gso: bool) -> tuple[str, ...]:
        return (*reference_argv(side, SPEC), *(("--gso",) if gso else ()))

    impl = TunnelImpl("gso", argv("client", client_gso), argv("server", server_gso))
    lab = build_lab(seed_tunnel(), name=new_lab_name("gs"), log_dir=tmp_path, owner_pid=os.getpid())
    try:
        return traffic_then_reports(lab, start_tunnel(lab, impl, timeout=20))
    finally:
        lab.teardown()


def test_tcp_crosses_in_runs_each_way(tmp_path: Path) -> None:
    client, server = run_tcp(tmp_path, client_gso=True, server_gso=True)
    for end in (client, server):
        assert (end["errors"], end["malformed"], end["foreign"]) == ({}, 0, 0)
        assert (end["gso"]["segment"], end["gso"]["gro"], end["gso"]["refused"]) == (True, True, 0)
    # U's segments leave in runs, and arrive as runs: veth and bridge keep a run whole.
    assert client["gso"]["datagrams_in_runs"] > 2 * client["gso"]["runs_sent"] > 0
    assert server["gso"]["datagrams_from_runs"] > 2 * server["gso"]["runs_received"] > 0
    # Every datagram the client sent reached the server, and each was one packet for the TUN.
    assert server["received"] == server["delivered"] == client["sent"]


@pytest.mark.parametrize(("client_gso", "server_gso"), [(True, False), (False, True)])
def test_an_end_without_gso_receives_one_whole_ip_packet_per_datagram(
    tmp_path: Path, client_gso: bool, server_gso: bool
) -> None:
    client, server = run_tcp(tmp_path, client_gso, server_gso)
    batched, plain = (client, server) if client_gso else (server, client)
    assert batched["gso"]["runs_sent"] > 0 and "gso" not in plain
    assert (plain["errors"], plain["malformed"], plain["foreign"]) == ({}, 0, 0)
    # The plain end took each datagram of every run as a whole IP packet: none was refused.
    assert plain["received"] == plain["delivered"] == batched["sent"]


def test_the_aead_wire_runs_too(tmp_path: Path) -> None:
    lab, tunnel = start_reference_lab(tmp_path, "ga", MODES["aead-gso"])
    try:
        client, server = traffic_then_reports(lab, tunnel)
    finally:
        lab.teardown()
    for end in (client, server):
        assert (end["errors"], end["malformed"], end["unauthentic"], end["replayed"]) == (
            {},
            0,
            0,
            0,
        )
        assert end["gso"]["refused"] == 0
    # Sealed packets of one size are datagrams of one size: they run, both ways.
    assert client["gso"]["datagrams_in_runs"] > 2 * client["gso"]["runs_sent"] > 0
    assert server["gso"]["datagrams_from_runs"] > 2 * server["gso"]["runs_received"] > 0
