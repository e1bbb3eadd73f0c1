"""TAP mode of the reference tunnel (the lab's task 9): the frame protocol, sans-IO, and the
endpoint's and the reference argv's TAP options. In memory, no root."""

from __future__ import annotations

import dataclasses
import socket
import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnsim.impl import REFERENCE
from vpnsim.seed import seed_tunnel
from vpnsim.testing import MemoryNetwork, MemoryTun, ethernet_frame, ipv4_packet, pump
from vpnsim.tunnel.__main__ import parse_args
from vpnsim.tunnel.driver import Driver
from vpnsim.tunnel.frames import (
    FrameClientProtocol,
    FrameServerProtocol,
    MalformedFrame,
    inner_macs,
    is_group,
)
from vpnsim.tunnel.protocol import PEER_IDLE_TIMEOUT, Deliver, Send, Stats

SERVER = ("10.9.0.11", 9090)
CLIENT = ("10.9.0.5", 40000)
CLIENT_2 = ("10.9.0.6", 40000)
# The TAP devices' MACs: U's, U2's, and the server's own TAP.
U_MAC = "02:00:00:00:00:99"
U2_MAC = "02:00:00:00:00:98"
SERVER_MAC = "02:00:00:00:00:01"
BROADCAST = "ff:ff:ff:ff:ff:ff"
# The TAP devices' addresses (the lab's TUN addresses).
U_TAP, U2_TAP, SERVER_TAP = "192.168.53.99", "192.168.53.98", "192.168.53.1"
HOST_V = "192.168.60.5"
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806


def arp_request(sender_mac: str, sender_ip: str, target_ip: str) -> bytes:
    """'Who has target_ip? Tell sender_ip', broadcast, as a kernel sends it on a TAP."""
    return _arp(1, sender_mac, sender_ip, "00:00:00:00:00:00", target_ip, BROADCAST)


def arp_reply(sender_mac: str, sender_ip: str, target_mac: str, target_ip: str) -> bytes:
    """'sender_ip is at sender_mac', unicast back to the asker."""
    return _arp(2, sender_mac, sender_ip, target_mac, target_ip, target_mac)


def _arp(op: int, smac: str, sip: str, tmac: str, tip: str, dst_mac: str) -> bytes:
    body = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op)
    body += bytes.fromhex(smac.replace(":", "")) + socket.inet_aton(sip)
    body += bytes.fromhex(tmac.replace(":", "")) + socket.inet_aton(tip)
    return ethernet_frame(dst_mac, smac, ETH_P_ARP, body)


def ip_frame(dst_mac: str, src_mac: str, src: str, dst: str, payload: bytes = b"") -> bytes:
    return ethernet_frame(dst_mac, src_mac, ETH_P_IP, ipv4_packet(src, dst, payload))


def known_server(*clients: tuple[str, tuple[str, int]]) -> FrameServerProtocol:
    """A server that has heard one unicast frame from each (MAC, client address)."""
    server = FrameServerProtocol()
    for mac, addr in clients:
        frame = ip_frame(SERVER_MAC, mac, U_TAP, HOST_V)
        server.datagram_received(frame, addr, now=0.0)
    return server


def test_ethernet_frame_is_destination_source_ethertype_payload() -> None:
    assert ethernet_frame(BROADCAST, U_MAC, ETH_P_ARP, b"body") == (
        b"\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x99\x08\x06body"
    )


def test_inner_macs_are_source_then_destination_as_the_kernel_prints_them() -> None:
    frame = ip_frame("0a:1B:2c:3d:4e:5f", U_MAC, U_TAP, HOST_V)

    assert inner_macs(frame) == (U_MAC, "0a:1b:2c:3d:4e:5f")
    assert inner_macs(frame[:14]) == (U_MAC, "0a:1b:2c:3d:4e:5f")


def test_inner_macs_rejects_fewer_bytes_than_an_ethernet_header() -> None:
    with pytest.raises(MalformedFrame) as raised:
        inner_macs(bytes(13))
    assert str(raised.value) == "Ethernet header in 13 bytes"


@pytest.mark.parametrize(
    ("mac", "group"),
    [(BROADCAST, True), ("01:00:5e:00:00:01", True), ("33:33:00:00:00:01", True), (U_MAC, False)],
)
def test_broadcast_and_multicast_macs_are_group_addresses(mac: str, group: bool) -> None:
    assert is_group(mac) is group


def test_tap_client_sends_the_frame_unchanged_to_the_server() -> None:
    client = FrameClientProtocol(SERVER)
    frame = arp_request(U_MAC, U_TAP, SERVER_TAP)

    assert client.packet_from_tun(frame, now=0.0) == [Send(frame, SERVER)]
    assert client.stats == Stats(tun_packets=1, sent=1)


def test_tap_client_delivers_any_frame_from_its_server_even_one_that_is_not_ip() -> None:
    client = FrameClientProtocol(SERVER)
    reply = arp_reply(SERVER_MAC, SERVER_TAP, U_MAC, U_TAP)
    bare_header = ethernet_frame(U_MAC, SERVER_MAC, 0x88B5)

    assert client.datagram_received(reply, SERVER, now=0.0) == [Deliver(reply)]
    assert client.datagram_received(bare_header, SERVER, now=0.0) == [Deliver(bare_header)]
    assert client.stats == Stats(received=2, delivered=2)


def test_tap_client_drops_frames_shorter_than_a_header_and_frames_not_from_its_server() -> None:
    client = FrameClientProtocol(SERVER)
    frame = ip_frame(U_MAC, SERVER_MAC, HOST_V, U_TAP)

    assert client.datagram_received(frame[:13], SERVER, now=0.0) == []
    assert client.datagram_received(b"", SERVER, now=0.0) == []
    assert client.datagram_received(frame, ("10.9.0.66", 9090), now=0.0) == []
    assert client.stats == Stats(malformed=2, foreign=1)


def test_tap_server_delivers_the_frame_and_learns_its_source_mac() -> None:
    server = FrameServerProtocol()
    frame = arp_request(U_MAC, U_TAP, SERVER_TAP)

    assert server.datagram_received(frame, CLIENT, now=5.0) == [Deliver(frame)]
    assert server.routes == {U_MAC: CLIENT}
    assert server.last_heard == {CLIENT: 5.0}
    assert server.stats == Stats(received=1, delivered=1)


def test_tap_server_drops_and_counts_frames_shorter_than_a_header_and_learns_nothing() -> None:
    server = FrameServerProtocol()

    assert server.datagram_received(bytes(13), CLIENT, now=0.0) == []
    assert server.packet_from_tun(b"\xff" * 6, now=0.0) == []
    assert server.stats == Stats(tun_packets=1, malformed=2)
    assert (server.routes, server.clients()) == ({}, set())


def test_tap_server_learns_no_route_from_a_group_source_mac_but_knows_the_client() -> None:
    server = FrameServerProtocol()
    frame = ethernet_frame(BROADCAST, BROADCAST, ETH_P_ARP, b"spoofed")

    assert server.datagram_received(frame, CLIENT, now=0.0) == [Deliver(frame)]
    assert server.routes == {}
    assert server.clients() == {CLIENT}


def test_an_arp_request_from_the_servers_tap_is_flooded_to_both_clients() -> None:
    server = known_server((U_MAC, CLIENT), (U2_MAC, CLIENT_2))
    request = arp_request(SERVER_MAC, SERVER_TAP, U_TAP)

    assert server.packet_from_tun(request, now=1.0) == [
        Send(request, CLIENT),
        Send(request, CLIENT_2),
    ]
    assert server.stats == Stats(tun_packets=1, sent=2, received=2, delivered=2)


def test_a_multicast_frame_from_the_servers_tap_is_flooded_to_every_client() -> None:
    server = known_server((U_MAC, CLIENT), (U2_MAC, CLIENT_2))
    frame = ethernet_frame("01:00:5e:00:00:01", SERVER_MAC, ETH_P_IP, b"igmp")

    assert server.packet_from_tun(frame, now=1.0) == [Send(frame, CLIENT), Send(frame, CLIENT_2)]


def test_a_unicast_frame_goes_only_to_the_client_that_owns_its_destination_mac() -> None:
    server = known_server((U_MAC, CLIENT), (U2_MAC, CLIENT_2))
    to_u = ip_frame(U_MAC, SERVER_MAC, HOST_V, U_TAP)
    to_u2 = ip_frame(U2_MAC, SERVER_MAC, HOST_V, U2_TAP)

    assert server.packet_from_tun(to_u2, now=1.0) == [Send(to_u2, CLIENT_2)]
    assert server.packet_from_tun(to_u, now=1.0) == [Send(to_u, CLIENT)]
    assert server.stats == Stats(tun_packets=2, sent=2, received=2, delivered=2)


def test_unknown_unicast_is_flooded_to_every_known_client() -> None:
    server = known_server((U_MAC, CLIENT), (U2_MAC, CLIENT_2))
    frame = ip_frame("02:00:00:00:00:50", SERVER_MAC, HOST_V, "192.168.50.5")

    assert server.packet_from_tun(frame, now=1.0) == [Send(frame, CLIENT), Send(frame, CLIENT_2)]


def test_with_no_client_known_every_tap_frame_is_dropped_as_no_route() -> None:
    server = FrameServerProtocol()

    assert server.packet_from_tun(arp_request(SERVER_MAC, SERVER_TAP, U_TAP), 0) == []
    assert server.stats == Stats(tun_packets=1, no_route=1)


def test_a_tap_client_that_restarts_from_a_new_port_is_followed_with_the_macs_behind_it() -> None:
    # A client bridging a site: its own MAC and a site host's MAC live behind one address.
    site_mac = "02:00:00:00:00:50"
    server = known_server((U_MAC, CLIENT), (site_mac, CLIENT), (U2_MAC, CLIENT_2))
    restarted = ("10.9.0.5", 40001)

    server.datagram_received(arp_request(U_MAC, U_TAP, SERVER_TAP), restarted, now=10.0)
    to_site = ip_frame(site_mac, SERVER_MAC, HOST_V, "192.168.50.5")

    assert server.packet_from_tun(to_site, now=11.0) == [Send(to_site, restarted)]
    assert server.routes == {U_MAC: restarted, site_mac: restarted, U2_MAC: CLIENT_2}
    assert server.clients() == {restarted, CLIENT_2}


def test_tap_expiry_is_per_client_and_forgets_the_macs_behind_a_silent_one() -> None:
    server = FrameServerProtocol(idle_timeout=30.0)
    server.datagram_received(arp_request(U_MAC, U_TAP, SERVER_TAP), CLIENT, now=100.0)
    server.datagram_received(arp_request(U2_MAC, U2_TAP, SERVER_TAP), CLIENT_2, now=120.0)

    server.expire(now=130.0)  # idle exactly 30 s: not longer, kept
    assert server.clients() == {CLIENT, CLIENT_2}

    server.expire(now=130.5)
    assert (server.routes, server.last_heard) == ({U2_MAC: CLIENT_2}, {CLIENT_2: 120.0})
    request = arp_request(SERVER_MAC, SERVER_TAP, U_TAP)
    assert server.packet_from_tun(request, now=131.0) == [Send(request, CLIENT_2)]


def test_tap_idle_timeout_defaults_to_the_ip_servers() -> None:
    assert FrameServerProtocol().idle_timeout == PEER_IDLE_TIMEOUT == 300.0


def test_arp_resolves_through_two_drivers_and_the_ip_packet_follows_by_mac() -> None:
    # U's kernel asks who has 192.168.53.1 (its route's gateway); the server's kernel answers.
    net = MemoryNetwork()
    u_tap, server_tap = MemoryTun("tap0"), MemoryTun("tap0")
    client = Driver(FrameClientProtocol(SERVER), u_tap, net.transport(CLIENT))
    server_protocol = FrameServerProtocol()
    server = Driver(server_protocol, server_tap, net.transport(SERVER))
    request = arp_request(U_MAC, U_TAP, SERVER_TAP)
    reply = arp_reply(SERVER_MAC, SERVER_TAP, U_MAC, U_TAP)
    packet = ip_frame(SERVER_MAC, U_MAC, U_TAP, HOST_V, b"ping")
    echo = ip_frame(U_MAC, SERVER_MAC, HOST_V, U_TAP, b"pong")

    u_tap.inject(request)
    pump(client, server)
    server_tap.inject(reply)
    pump(client, server)
    u_tap.inject(packet)
    server_tap.inject(echo)
    pump(client, server)

    assert server_tap.written == [request, packet]
    assert u_tap.written == [reply, echo]
    assert server_protocol.routes == {U_MAC: CLIENT}


_macs = st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))


@given(dst=_macs, src=_macs, ethertype=st.integers(0, 0xFFFF), payload=st.binary(max_size=1500))
def test_any_frame_crosses_client_server_client_byte_identical(
    dst: str, src: str, ethertype: int, payload: bytes
) -> None:
    client, server = FrameClientProtocol(SERVER), FrameServerProtocol()
    frame = ethernet_frame(dst, src, ethertype, payload)
    back = ethernet_frame(src, dst, ethertype, payload)

    (send,) = client.packet_from_tun(frame, now=0.0)
    assert server.datagram_received(send.datagram, CLIENT, now=0.0) == [Deliver(frame)]
    (send_back,) = server.packet_from_tun(back, now=1.0)
    assert send_back.addr == CLIENT
    assert client.datagram_received(send_back.datagram, SERVER, now=1.0) == [Deliver(back)]


def test_the_endpoint_defaults_to_tun_and_takes_tap_mode_and_gateways() -> None:
    tun = parse_args(["server", "--tun-address", "192.168.53.1/24"])
    tap = parse_args([
        "client", "--server", "10.9.0.11", "--mode", "tap", "--tun-address", "192.168.53.99/24",
        "--route", "192.168.60.0/24", "--gateway", "192.168.53.1",
    ])  # fmt: skip

    assert (tun.mode, tun.tun_name, tun.gateway) == ("tun", None, [])
    assert (tap.mode, [str(g) for g in tap.gateway]) == ("tap", ["192.168.53.1"])


def test_reference_argv_in_tap_mode_routes_the_private_net_via_the_servers_tap_address() -> None:
    scenario = seed_tunnel()
    assert scenario.tunnel is not None
    spec = dataclasses.replace(scenario.tunnel, mode="tap")

    assert REFERENCE.argv("client", spec) == (
        sys.executable, "-m", "vpnsim.tunnel", "client", "--port", "9090", "--mode", "tap",
        "--server", "10.9.0.11", "--tun-address", "192.168.53.99/24",
        "--route", "192.168.60.0/24", "--gateway", "192.168.53.1",
    )  # fmt: skip
    assert REFERENCE.argv("server", spec) == (
        sys.executable, "-m", "vpnsim.tunnel", "server", "--port", "9090", "--mode", "tap",
        "--tun-address", "192.168.53.1/24",
    )  # fmt: skip


def test_reference_argv_in_tap_mode_routes_a_site_behind_the_client_via_the_clients_tap() -> None:
    scenario = seed_tunnel()
    assert scenario.tunnel is not None
    spec = dataclasses.replace(
        scenario.tunnel, mode="tap", server_routes=("192.168.50.0/24",), client_routes=()
    )

    assert REFERENCE.argv("server", spec)[-6:] == (
        "--tun-address", "192.168.53.1/24",
        "--route", "192.168.50.0/24", "--gateway", "192.168.53.99",
    )  # fmt: skip
    assert "--gateway" not in REFERENCE.argv("client", spec)
