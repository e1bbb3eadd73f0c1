"""The reference tunnel in TAP mode, the lab's task 9: whole Ethernet frames cross the tunnel,
and the kernels at both ends answer each other's ARP through it. Always the reference.

```
  U 10.9.0.5 [TAP 192.168.53.99] ---- 10.9.0.11 [server, TAP 192.168.53.1] 192.168.60.11
        route 192.168.60.0/24 via 192.168.53.1                              V 192.168.60.5
```
"""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vpnsim.impl import REFERENCE
from vpnsim.net.rtnl import Route
from vpnsim.seed import seed_tunnel
from vpnsim.topology import build_lab, new_lab_name
from vpnsim.traffic.capture import Capture, UdpDatagram
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel, start_tunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
U_TAP = "192.168.53.99"
SERVER_TAP = "192.168.53.1"
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
BROADCAST = "ff:ff:ff:ff:ff:ff"


@contextmanager
def tap_tunnel_in_new_lab(log_dir: Path) -> Iterator[RunningTunnel]:
    """The SEED lab with its tunnel spec in TAP mode, the reference running; torn down after."""
    scenario = seed_tunnel()
    assert scenario.tunnel is not None
    tap = dataclasses.replace(scenario, tunnel=dataclasses.replace(scenario.tunnel, mode="tap"))
    lab = build_lab(tap, name=new_lab_name("tap"), log_dir=log_dir, owner_pid=os.getpid())
    try:
        yield start_tunnel(lab, REFERENCE)
    finally:
        lab.teardown()


@pytest.fixture(scope="module")
def tap_tunnel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTunnel]:
    with tap_tunnel_in_new_lab(tmp_path_factory.mktemp("tap")) as tunnel:
        yield tunnel


@pytest.fixture(scope="module")
def tap_probes(tap_tunnel: RunningTunnel) -> Iterator[Probes]:
    probes = Probes(tap_tunnel.lab, tap_tunnel)
    yield probes
    probes.close()


def ethertype(datagram: UdpDatagram) -> int:
    """The ethertype of the Ethernet frame a tunnel datagram carries."""
    return int(struct.unpack_from("!H", datagram.payload, 12)[0])


def frame_macs(datagram: UdpDatagram) -> tuple[str, str]:
    """(destination, source) MAC of the frame a tunnel datagram carries."""
    return datagram.payload[0:6].hex(":"), datagram.payload[6:12].hex(":")


def arp_fields(datagram: UdpDatagram) -> tuple[int, str, str, str]:
    """(operation, sender MAC, sender IP, target IP) of the ARP frame a datagram carries."""
    arp = datagram.payload[14:42]
    op = int(struct.unpack_from("!H", arp, 6)[0])
    return op, arp[8:14].hex(":"), socket.inet_ntoa(arp[14:18]), socket.inet_ntoa(arp[24:28])


def test_task9_each_end_has_a_tap_up_with_the_labs_address(tap_tunnel: RunningTunnel) -> None:
    lab = tap_tunnel.lab
    client = lab.rtnl("U").link(tap_tunnel.client_tun)
    server = lab.rtnl("server").link(tap_tunnel.server_tun)

    assert (client.tun_mode, client.up, client.addresses) == ("tap", True, ("192.168.53.99/24",))
    assert (server.tun_mode, server.up, server.addresses) == ("tap", True, ("192.168.53.1/24",))
    assert client.name.startswith("tap") and server.name.startswith("tap")
    assert lab.rtnl("U").tun_devices("tun") == lab.rtnl("server").tun_devices("tun") == []


def test_task9_the_client_routes_the_private_net_via_the_servers_tap_address(
    tap_tunnel: RunningTunnel,
) -> None:
    routes = tap_tunnel.lab.rtnl("U").routes()
    tap = tap_tunnel.client_tun

    assert Route("192.168.60.0/24", SERVER_TAP, tap) in routes
    assert Route("192.168.53.0/24", None, tap) in routes


def test_task9_arp_crosses_the_tunnel_and_each_kernel_answers_the_other(tmp_path: Path) -> None:
    # A lab of its own: the first packet from U must find no neighbour entry yet.
    with tap_tunnel_in_new_lab(tmp_path) as tunnel:
        lab = tunnel.lab
        u_mac = lab.rtnl("U").link(tunnel.client_tun).mac
        server_mac = lab.rtnl("server").link(tunnel.server_tun).mac
        assert lab.rtnl("U").neighbours(tunnel.client_tun) == []
        with Capture(lab.ns("server"), "eth0") as capture:
            assert Probes(lab, tunnel).ping("U", V, b"first").payload == b"first"
        datagrams = capture.udp(9090)
        neighbours = lab.rtnl("U").neighbours(tunnel.client_tun)

    to_server = [d for d in datagrams if (d.dst, d.dport) == ("10.9.0.11", 9090)]
    from_server = [d for d in datagrams if (d.src, d.sport) == ("10.9.0.11", 9090)]
    requests = [d for d in to_server if ethertype(d) == ETH_P_ARP]
    replies = [d for d in from_server if ethertype(d) == ETH_P_ARP]
    # U asks, by broadcast, for its route's gateway; the server's kernel answers U alone.
    assert [(frame_macs(d), arp_fields(d)) for d in requests][:1] == [
        ((BROADCAST, u_mac), (1, u_mac, U_TAP, SERVER_TAP))
    ]
    assert [(frame_macs(d), arp_fields(d)) for d in replies][:1] == [
        ((u_mac, server_mac), (2, server_mac, SERVER_TAP, U_TAP))
    ]
    assert (SERVER_TAP, server_mac) in neighbours


def test_task9_icmp_56_bytes_from_u_to_v_crosses_as_one_ethernet_frame_each_way(
    tap_probes: Probes, tap_tunnel: RunningTunnel
) -> None:
    lab = tap_tunnel.lab
    u_mac = lab.rtnl("U").link(tap_tunnel.client_tun).mac
    server_mac = lab.rtnl("server").link(tap_tunnel.server_tun).mac
    payload = bytes(range(56))  # as `ping` sends by default

    with tap_probes.evidence() as rec:
        reply = tap_probes.ping("U", V, payload)

    assert (reply.source, reply.payload) == (V, payload)
    assert rec.result.through_tunnel
    frame_bytes = 14 + 20 + 8 + len(payload)
    (request,) = [d for d in rec.result.to_server if ethertype(d) == ETH_P_IP]
    (echo,) = [d for d in rec.result.from_server if ethertype(d) == ETH_P_IP]
    assert [(d.src, d.dst, d.length, frame_macs(d)) for d in (request, echo)] == [
        ("10.9.0.5", "10.9.0.11", frame_bytes, (server_mac, u_mac)),
        ("10.9.0.11", "10.9.0.5", frame_bytes, (u_mac, server_mac)),
    ]
    # TAP mode: the datagram's payload is the frame itself, and the frame's is the IP packet.
    inner = request.payload[14:]
    assert (socket.inet_ntoa(inner[12:16]), socket.inet_ntoa(inner[16:20])) == (U_TAP, V)
    assert inner[28:] == payload


def test_task9_icmp_3000_bytes_is_fragmented_into_full_frames_and_arrives_whole(
    tap_probes: Probes,
) -> None:
    payload = bytes(range(256)) * 11 + bytes(184)  # 3000 bytes, as in `ping -s 3000`

    with tap_probes.evidence() as rec:
        assert tap_probes.ping("U", V, payload).payload == payload

    # 3008 bytes of ICMP in 1500-byte IP fragments, each in a 14-byte Ethernet header.
    to_server = [d.length for d in rec.result.to_server if ethertype(d) == ETH_P_IP]
    from_server = [d.length for d in rec.result.from_server if ethertype(d) == ETH_P_IP]
    assert to_server == from_server == [1514, 1514, 14 + 20 + 48]


def test_task9_tcp_from_u_to_v_is_byte_identical_and_v_reaches_us_tap_address(
    tap_probes: Probes,
) -> None:
    data = bytes(range(256)) * 200

    with tap_probes.evidence() as rec:
        assert tap_probes.tcp("U", V, data) == data
        assert tap_probes.ping("V", U_TAP, b"reverse").payload == b"reverse"

    assert rec.result.through_tunnel
    assert rec.result.client.rx_bytes > len(data)  # the echo came back through U's TAP
