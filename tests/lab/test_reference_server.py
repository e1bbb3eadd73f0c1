"""The reference server's own promises: many clients, following a restarted client, surviving
garbage, and its exit report. Always the reference, whatever `--vpn-impl` says.

```
  U  10.9.0.5 [TUN 192.168.53.99] --+
                                    +-- 10.9.0.11 [server, TUN 192.168.53.1] -- V 192.168.60.5
  U2 10.9.0.6 [TUN 192.168.53.98] --+
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.impl import REFERENCE
from vpnsim.model import Host, Interface, TunnelSpec
from vpnsim.net import namespace
from vpnsim.pytest.fixtures import LabFactory
from vpnsim.seed import HOST_SYSCTLS, seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel, start_tunnel, wait_client_ready

pytestmark = pytest.mark.lab

V = "192.168.60.5"


@pytest.fixture(scope="module")
def two_client_lab(vpnsim_labs: LabFactory) -> Iterator[Lab]:
    scenario = seed_tunnel()
    u2 = Host("U2", (Interface("eth0", "net-10.9.0.0", "10.9.0.6/24"),), sysctls=HOST_SYSCTLS)
    scenario = dataclasses.replace(scenario, hosts=(*scenario.hosts, u2))
    lab = vpnsim_labs.build(scenario)  # in the session's leak registry
    yield lab
    lab.teardown()


@pytest.fixture(scope="module")
def tunnel(two_client_lab: Lab) -> RunningTunnel:
    return start_tunnel(two_client_lab, REFERENCE)


@pytest.fixture(scope="module")
def second_client(two_client_lab: Lab, tunnel: RunningTunnel) -> str:
    spec = dataclasses.replace(tunnel.spec, client="U2", client_tun="192.168.53.98/24")
    program = two_client_lab.start("U2", REFERENCE.argv("client", spec), log_name="client-U2")
    return wait_client_ready(two_client_lab, spec, program, 10)


def test_two_clients_each_get_their_own_replies(
    two_client_lab: Lab, tunnel: RunningTunnel, second_client: str
) -> None:
    probes = Probes(two_client_lab, tunnel)
    for _ in range(3):  # interleaved: each reply is routed by its inner destination
        assert probes.ping("U", V, b"for U").payload == b"for U"
        assert probes.ping("U2", V, b"for U2").payload == b"for U2"
    assert probes.udp("U2", V, b"x" * 5000) == b"x" * 5000
    assert probes.ping("V", "192.168.53.98", b"to U2").payload == b"to U2"
    assert probes.ping("V", "192.168.53.99", b"to U").payload == b"to U"
    probes.close()


def test_a_restarted_client_is_followed_from_its_new_source_port(
    two_client_lab: Lab, tunnel: RunningTunnel
) -> None:
    probes = Probes(two_client_lab, tunnel)
    with probes.evidence() as before:
        probes.ping("U", V)
    tunnel.restart_client()
    with probes.evidence() as after:
        assert probes.ping("U", V, b"again").payload == b"again"
    (old,) = {d.sport for d in before.result.to_server}
    (new,) = {d.sport for d in after.result.to_server}
    assert old != new
    assert [d.dport for d in after.result.from_server] == [new]


def test_garbage_on_port_9090_is_dropped_and_the_server_keeps_serving(
    two_client_lab: Lab, tunnel: RunningTunnel
) -> None:
    with namespace.socket_in(two_client_lab.ns("U2"), socket.AF_INET, socket.SOCK_DGRAM) as s:
        for garbage in (b"", b"\x00", b"hello, server", b"\x45" + bytes(30)):
            s.sendto(garbage, ("10.9.0.11", 9090))
    probes = Probes(two_client_lab, tunnel)
    assert probes.ping("U", V, b"still there").payload == b"still there"
    assert tunnel.server.running()


def test_on_sigterm_each_end_reports_its_counters_and_exits_0(tmp_path: Path) -> None:
    lab = build_lab(seed_tunnel(), name=new_lab_name("rx"), log_dir=tmp_path, owner_pid=os.getpid())
    try:
        tunnel = start_tunnel(lab, REFERENCE)
        probes = Probes(lab, tunnel)
        probes.ping("U", V)
        with namespace.socket_in(lab.ns("U"), socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"not an IP packet", ("10.9.0.11", 9090))
        probes.ping("U", V)  # the garbage is handled before this echo's request
        assert (tunnel.stop_client(), tunnel.server.stop()) == (0, 0)
        client = json.loads(tunnel.client.stdout().splitlines()[-1])
        server = json.loads(tunnel.server.stdout().splitlines()[-1])
    finally:
        lab.teardown()
    assert client | {"tun": "-"} == {
        "side": "client", "tun": "-", "tun_packets": 2, "sent": 2, "received": 2,
        "delivered": 2, "malformed": 0, "foreign": 0, "no_route": 0, "errors": {},
    }  # fmt: skip
    assert server | {"tun": "-"} == {
        "side": "server", "tun": "-", "tun_packets": 2, "sent": 2, "received": 2,
        "delivered": 2, "malformed": 1, "foreign": 0, "no_route": 0, "errors": {},
    }  # fmt: skip


def test_the_tunnel_spec_of_the_seed_lab_is_the_labs() -> None:
    assert seed_tunnel().tunnel == TunnelSpec(
        client="U", server="server", server_address="10.9.0.11"
    )
