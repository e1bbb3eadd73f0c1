"""`build_with_tunnel`: the reference tunnel's ends start while the links are built, and the
lab it hands back is the lab `build_lab` + `start_tunnel` make; a failure leaves nothing.
The readiness pre-check's routes (read from /proc) are the routes netlink reports."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

from vpnsim.bench.framework import STUDENT
from vpnsim.impl import REFERENCE, TunnelImpl
from vpnsim.net import namespace
from vpnsim.proc import ProgramFailed
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import build_with_tunnel, proc_routes, start_tunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"


def _links(lab: Lab, host: str) -> list[tuple[str, str, bool, tuple[str, ...]]]:
    """Each link by name, kind, state and addresses (indexes and MACs differ between labs)."""
    found = [
        (link.name, str(link.kind), link.up, link.addresses) for link in lab.rtnl(host).links()
    ]
    return sorted(found)


def test_the_early_tunnel_carries_traffic_and_the_lab_is_the_usual_one(tmp_path: Path) -> None:
    early, tunnel = build_with_tunnel(seed_tunnel(), REFERENCE, log_dir=tmp_path / "early")
    usual = build_lab(seed_tunnel(), log_dir=tmp_path / "usual")
    try:
        start_tunnel(usual, REFERENCE)
        assert tunnel.client_tun and tunnel.server_tun
        assert tunnel.ready_seconds > 0
        reply = Probes(early, tunnel).ping("U", V, b"through the early tunnel")
        assert (reply.source, reply.payload) == (V, b"through the early tunnel")
        for host in ("U", "server", "V", "V2"):
            assert _links(early, host) == _links(usual, host), host
            assert sorted(early.rtnl(host).routes(), key=str) == sorted(
                usual.rtnl(host).routes(), key=str
            )
    finally:
        early.teardown()
        usual.teardown()


def test_an_implementation_under_test_starts_once_the_lab_is_whole(tmp_path: Path) -> None:
    lab, tunnel = build_with_tunnel(seed_tunnel(), STUDENT, log_dir=tmp_path)
    try:
        assert tunnel.impl is STUDENT
        probes = Probes(lab, tunnel)
        assert probes.ping("U", V, b"student").payload == b"student"
        data = bytes(range(256)) * 20  # fragments both ways
        assert probes.udp("U", V, data) == data
    finally:
        lab.teardown()


def test_a_tunnel_that_never_gets_ready_leaves_nothing_behind(tmp_path: Path) -> None:
    name = new_lab_name("early")
    exits = TunnelImpl("exits", client_argv=(sys.executable, "-c", "raise SystemExit(3)"))
    with pytest.raises(ProgramFailed, match="exited with status 3"):
        build_with_tunnel(seed_tunnel(), exits, name=name, log_dir=tmp_path, timeout=5)
    assert namespace.list_names(f"vpnsim.{name}.") == []


def test_proc_routes_are_the_routes_netlink_reports(tmp_path: Path) -> None:
    lab, tunnel = build_with_tunnel(seed_tunnel(), REFERENCE, log_dir=tmp_path)
    try:
        for program in (tunnel.client, tunnel.server):
            found = proc_routes(program.pid)
            assert found is not None
            ipv4 = {net for net in found if ipaddress.ip_network(net).version == 4}
            reported = {route.dst for route in lab.rtnl(program.host).routes()}
            assert ipv4 == {dst for dst in reported if ":" not in dst}
        assert "192.168.60.0/24" in (proc_routes(tunnel.client.pid) or set())
    finally:
        lab.teardown()
    assert proc_routes(tunnel.client.pid) in (None, set())  # gone with its process
