"""The reference tunnel's sans-IO protocol: plain mode, who may talk, routing, expiry, parsing."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnsim.strategies import Payload, payloads
from vpnsim.testing import ipv4_packet
from vpnsim.traffic.icmp import echo_request
from vpnsim.tunnel.protocol import (
    PEER_IDLE_TIMEOUT,
    ClientProtocol,
    Deliver,
    MalformedPacket,
    Send,
    ServerProtocol,
    Stats,
    inner_addresses,
)

# The SEED lab: client U and server on 10.9.0.0/24; the tunnel on 192.168.53.0/24; the private
# network behind the server on 192.168.60.0/24.
SERVER = ("10.9.0.11", 9090)
CLIENT = ("10.9.0.5", 40000)
CLIENT_2 = ("10.9.0.6", 40000)
CLIENT_TUN = "192.168.53.99"
CLIENT_2_TUN = "192.168.53.98"
HOST_V = "192.168.60.5"


def ping(src: str, dst: str, seq: int = 1) -> bytes:
    """An ICMP echo request from `src` to `dst` with a correct IPv4 header."""
    return ipv4_packet(src, dst, echo_request(0x1234, seq, b"vpnsim"), socket.IPPROTO_ICMP)


def ipv6_packet(src: str, dst: str, payload: bytes = b"") -> bytes:
    no_next_header = 59
    return (
        struct.pack("!IHBB", 0x6000_0000, len(payload), no_next_header, 64)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + payload
    )


def test_plain_mode_client_sends_the_tun_packet_unchanged_to_the_server() -> None:
    client = ClientProtocol(SERVER)
    packet = ping(CLIENT_TUN, HOST_V)

    assert client.packet_from_tun(packet, now=0.0) == [Send(packet, SERVER)]
    assert client.stats == Stats(tun_packets=1, sent=1)


def test_plain_mode_server_delivers_the_datagram_unchanged_to_its_tun() -> None:
    server = ServerProtocol()
    packet = ping(CLIENT_TUN, HOST_V)

    assert server.datagram_received(packet, CLIENT, now=0.0) == [Deliver(packet)]
    assert server.stats == Stats(received=1, delivered=1)


def test_plain_mode_client_delivers_the_servers_datagram_unchanged_to_its_tun() -> None:
    client = ClientProtocol(SERVER)
    reply = ping(HOST_V, CLIENT_TUN)

    assert client.datagram_received(reply, SERVER, now=0.0) == [Deliver(reply)]
    assert client.stats == Stats(received=1, delivered=1)


def test_client_drops_datagrams_from_an_address_that_is_not_its_server() -> None:
    client = ClientProtocol(SERVER)
    reply = ping(HOST_V, CLIENT_TUN)

    assert client.datagram_received(reply, ("10.9.0.11", 9091), now=0.0) == []
    assert client.datagram_received(reply, ("10.9.0.66", 9090), now=0.0) == []
    assert client.stats == Stats(foreign=2)


def test_client_drops_non_ip_garbage_from_its_server() -> None:
    client = ClientProtocol(SERVER)

    assert client.datagram_received(b"hello, tunnel", SERVER, now=0.0) == []
    assert client.stats == Stats(malformed=1)


def test_server_drops_non_ip_garbage_and_learns_no_client_from_it() -> None:
    server = ServerProtocol()

    assert server.datagram_received(b"hello, tunnel", CLIENT, now=0.0) == []
    assert server.stats == Stats(malformed=1)
    assert server.routes == {}


def test_server_drops_a_malformed_packet_read_from_its_tun() -> None:
    server = ServerProtocol()
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)

    assert server.packet_from_tun(b"\x45\x00", now=1.0) == []
    assert server.stats == Stats(tun_packets=1, received=1, delivered=1, malformed=1)


def test_server_learns_which_client_address_an_inner_source_lives_behind() -> None:
    server = ServerProtocol()

    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=5.0)

    assert server.routes == {IPv4Address(CLIENT_TUN): CLIENT}
    assert server.last_heard == {CLIENT: 5.0}
    assert server.clients() == {CLIENT}


def test_server_learns_ipv6_inner_sources_too() -> None:
    server = ServerProtocol()
    server.datagram_received(ipv6_packet("fd00::99", "fd00::1"), CLIENT, now=0.0)
    server.datagram_received(ipv6_packet("fd00::98", "fd00::1"), CLIENT_2, now=0.0)
    reply = ipv6_packet("fd00::1", "fd00::98", b"reply")

    assert server.packet_from_tun(reply, now=1.0) == [Send(reply, CLIENT_2)]


def test_server_routes_tun_packets_to_the_client_that_owns_their_destination() -> None:
    server = ServerProtocol()
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(CLIENT_2_TUN, HOST_V), CLIENT_2, now=0.0)
    to_first, to_second = ping(HOST_V, CLIENT_TUN), ping(HOST_V, CLIENT_2_TUN)

    assert server.packet_from_tun(to_first, now=1.0) == [Send(to_first, CLIENT)]
    assert server.packet_from_tun(to_second, now=1.0) == [Send(to_second, CLIENT_2)]
    assert server.stats == Stats(tun_packets=2, sent=2, received=2, delivered=2)


def test_two_clients_each_get_their_own_replies_and_not_the_others() -> None:
    server = ServerProtocol()
    first, second = ClientProtocol(SERVER), ClientProtocol(SERVER)
    for client, addr, tun in ((first, CLIENT, CLIENT_TUN), (second, CLIENT_2, CLIENT_2_TUN)):
        (send,) = client.packet_from_tun(ping(tun, HOST_V), now=0.0)
        server.datagram_received(send.datagram, addr, now=0.0)
    replies = {CLIENT: ping(HOST_V, CLIENT_TUN), CLIENT_2: ping(HOST_V, CLIENT_2_TUN)}

    delivered: dict[tuple[str, int], list[Deliver]] = {CLIENT: [], CLIENT_2: []}
    for reply in (replies[CLIENT_2], replies[CLIENT]):
        for send in server.packet_from_tun(reply, now=1.0):
            client = first if send.addr == CLIENT else second
            delivered[send.addr] += client.datagram_received(send.datagram, SERVER, now=1.0)

    assert delivered == {CLIENT: [Deliver(replies[CLIENT])], CLIENT_2: [Deliver(replies[CLIENT_2])]}


def test_a_client_that_restarts_from_a_new_source_port_is_followed() -> None:
    server = ServerProtocol()
    restarted = ("10.9.0.5", 40001)
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(CLIENT_2_TUN, HOST_V), CLIENT_2, now=0.0)

    server.datagram_received(ping(CLIENT_TUN, HOST_V, seq=2), restarted, now=10.0)
    reply = ping(HOST_V, CLIENT_TUN)

    assert server.packet_from_tun(reply, now=11.0) == [Send(reply, restarted)]
    assert server.clients() == {restarted, CLIENT_2}


def test_a_restarted_client_takes_the_subnet_learned_behind_it_along() -> None:
    # Site-to-site: a router behind the client forwards its LAN (192.168.50.0/24) into the tunnel.
    server = ServerProtocol()
    lan_host = "192.168.50.5"
    restarted = ("10.9.0.5", 40001)
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(lan_host, HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(CLIENT_2_TUN, HOST_V), CLIENT_2, now=0.0)

    # Only the router's own address speaks after the restart; the LAN host stays silent.
    server.datagram_received(ping(CLIENT_TUN, HOST_V, seq=2), restarted, now=10.0)
    to_lan_host = ping(HOST_V, lan_host)

    assert server.packet_from_tun(to_lan_host, now=11.0) == [Send(to_lan_host, restarted)]
    assert server.clients() == {restarted, CLIENT_2}


def test_with_exactly_one_client_known_an_unknown_destination_goes_to_it() -> None:
    server = ServerProtocol()
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    to_unknown = ping(HOST_V, "192.168.50.5")

    assert server.packet_from_tun(to_unknown, now=1.0) == [Send(to_unknown, CLIENT)]
    assert server.stats.no_route == 0


def test_with_two_clients_known_an_unknown_destination_is_dropped_as_no_route() -> None:
    server = ServerProtocol()
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(CLIENT_2_TUN, HOST_V), CLIENT_2, now=0.0)

    assert server.packet_from_tun(ping(HOST_V, "192.168.50.5"), now=1.0) == []
    assert server.stats == Stats(tun_packets=1, received=2, delivered=2, no_route=1)


def test_with_no_client_known_every_tun_packet_is_dropped_as_no_route() -> None:
    server = ServerProtocol()

    assert server.packet_from_tun(ping(HOST_V, CLIENT_TUN), now=0.0) == []
    assert server.stats == Stats(tun_packets=1, no_route=1)


def test_expire_forgets_clients_idle_longer_than_idle_timeout() -> None:
    server = ServerProtocol(idle_timeout=30.0)
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=100.0)
    server.datagram_received(ping(CLIENT_2_TUN, HOST_V), CLIENT_2, now=120.0)

    server.expire(now=130.0)  # idle exactly 30 s: not longer, kept
    assert server.clients() == {CLIENT, CLIENT_2}

    server.expire(now=130.5)
    assert server.routes == {IPv4Address(CLIENT_2_TUN): CLIENT_2}
    assert server.last_heard == {CLIENT_2: 120.0}

    server.expire(now=150.5)
    assert server.routes == {}


def test_expire_keeps_a_client_that_spoke_again_before_the_timeout() -> None:
    server = ServerProtocol(idle_timeout=30.0)
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(CLIENT_TUN, HOST_V, seq=2), CLIENT, now=25.0)

    server.expire(now=50.0)

    assert server.routes == {IPv4Address(CLIENT_TUN): CLIENT}
    assert server.last_heard == {CLIENT: 25.0}


def test_expiry_is_per_client_so_a_quiet_host_behind_a_talking_client_stays_routed() -> None:
    server = ServerProtocol(idle_timeout=10.0)
    server.datagram_received(ping("192.168.50.5", HOST_V), CLIENT, now=0.0)  # site host
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(CLIENT_2_TUN, HOST_V), CLIENT_2, now=0.0)
    server.datagram_received(ping(CLIENT_TUN, HOST_V, seq=2), CLIENT, now=19.0)

    server.expire(now=19.0)

    assert server.routes == {IPv4Address("192.168.50.5"): CLIENT, IPv4Address(CLIENT_TUN): CLIENT}
    assert server.packet_from_tun(ping(HOST_V, "192.168.50.5"), now=19.0) == [
        Send(ping(HOST_V, "192.168.50.5"), CLIENT)
    ]


def test_a_moved_client_keeps_its_site_routes_alive_from_its_new_address() -> None:
    server = ServerProtocol(idle_timeout=10.0)
    server.datagram_received(ping("192.168.50.5", HOST_V), CLIENT, now=0.0)
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)
    restarted = (CLIENT[0], CLIENT[1] + 1)
    server.datagram_received(ping(CLIENT_TUN, HOST_V, seq=2), restarted, now=8.0)

    server.expire(now=15.0)

    assert server.routes == {
        IPv4Address("192.168.50.5"): restarted,
        IPv4Address(CLIENT_TUN): restarted,
    }
    assert server.last_heard == {restarted: 8.0}


def test_idle_timeout_defaults_to_five_minutes() -> None:
    server = ServerProtocol()
    server.datagram_received(ping(CLIENT_TUN, HOST_V), CLIENT, now=0.0)

    server.expire(now=300.0)
    assert server.clients() == {CLIENT}
    server.expire(now=300.001)
    assert server.clients() == set()
    assert PEER_IDLE_TIMEOUT == 300.0


def test_inner_addresses_of_an_ipv4_packet() -> None:
    assert inner_addresses(ping(CLIENT_TUN, HOST_V)) == (
        IPv4Address(CLIENT_TUN),
        IPv4Address(HOST_V),
    )


def test_inner_addresses_of_an_ipv4_packet_with_options() -> None:
    packet = ipv4_packet(CLIENT_TUN, HOST_V, b"data", options=b"\x01" * 8)

    assert inner_addresses(packet) == (IPv4Address(CLIENT_TUN), IPv4Address(HOST_V))


def test_inner_addresses_of_an_ipv6_packet() -> None:
    assert inner_addresses(ipv6_packet("fd00::99", "fd00::1", b"data")) == (
        IPv6Address("fd00::99"),
        IPv6Address("fd00::1"),
    )


def _with_total_length(packet: bytes, total: int) -> bytes:
    return packet[:2] + struct.pack("!H", total) + packet[4:]


_PING = ping(CLIENT_TUN, HOST_V)  # 20 + 8 + 6 = 34 bytes


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\x50" + _PING[1:], "IP version 5", id="version-5"),
        pytest.param(b"\x00" * 40, "IP version 0", id="version-0"),
        pytest.param(_PING[:19], "IPv4 header length 20 in 19 bytes", id="ipv4-header-truncated"),
        pytest.param(b"\x44" + _PING[1:], "IPv4 header length 16 in 34 bytes", id="ihl-below-5"),
        pytest.param(_PING[:33], "IPv4 total length 34 in 33 bytes", id="ipv4-truncated"),
        pytest.param(
            _with_total_length(_PING, 35), "IPv4 total length 35 in 34 bytes", id="total-beyond"
        ),
        pytest.param(
            _with_total_length(_PING, 19), "IPv4 total length 19 in 34 bytes", id="total-below-ihl"
        ),
        pytest.param(
            ipv6_packet("fd00::99", "fd00::1")[:39], "IPv6 header in 39 bytes", id="ipv6-header"
        ),
        pytest.param(
            ipv6_packet("fd00::99", "fd00::1", b"data")[:43],
            "IPv6 payload length beyond the datagram",
            id="ipv6-truncated",
        ),
    ],
)
def test_inner_addresses_rejects_what_is_not_a_whole_ip_packet(packet: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket) as raised:
        inner_addresses(packet)
    assert str(raised.value) == message


_pings = st.builds(ping, st.ip_addresses(v=4).map(str), st.ip_addresses(v=4).map(str))
# Bytes that often look like the start of an IP header, so both outcomes get exercised.
_datagrams = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda first, rest: bytes([first]) + rest,
        st.sampled_from([0x45, 0x46, 0x4F, 0x60]),
        st.binary(max_size=80),
    ),
    _pings.flatmap(lambda packet: st.integers(0, len(packet)).map(lambda cut: packet[:cut])),
    st.builds(bytes.__add__, _pings, st.binary(max_size=8)),  # whole, maybe with padding
)


@given(data=_datagrams)
def test_server_never_raises_and_delivers_exactly_the_input_or_counts_it_malformed(
    data: bytes,
) -> None:
    server = ServerProtocol()

    actions = server.datagram_received(data, CLIENT, now=0.0)

    if actions:
        assert actions == [Deliver(data)]
        assert server.stats == Stats(received=1, delivered=1)
    else:
        assert server.stats == Stats(malformed=1)


@given(
    src=st.ip_addresses(v=4).map(str),
    dst=st.ip_addresses(v=4).map(str),
    protocol=st.integers(0, 255),
    payload=payloads(max_size=0xFFFF - 60),
    option_words=st.integers(0, 10),
)
def test_any_ipv4_packet_crosses_client_server_client_byte_identical(
    src: str, dst: str, protocol: int, payload: Payload, option_words: int
) -> None:
    client, server = ClientProtocol(SERVER), ServerProtocol()
    # Another client is known, so the reply must follow the learned route, not the fallback.
    server.datagram_received(ping(CLIENT_2_TUN, HOST_V), CLIENT_2, now=0.0)
    options = b"\x01" * 4 * option_words  # NOPs
    packet = ipv4_packet(src, dst, payload.data(), protocol, options=options)
    reply = ipv4_packet(dst, src, payload.data(), protocol, options=options)

    (send,) = client.packet_from_tun(packet, now=1.0)
    assert server.datagram_received(send.datagram, CLIENT, now=1.0) == [Deliver(packet)]
    (send_back,) = server.packet_from_tun(reply, now=2.0)
    assert send_back.addr == CLIENT
    assert client.datagram_received(send_back.datagram, SERVER, now=2.0) == [Deliver(reply)]
