"""Routes keyed by raw address bytes: `raw_addresses` accepts and refuses exactly what
`inner_addresses` does, and gives the same addresses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnsim.packets import MalformedPacket, inner_addresses
from vpnsim.testing import ipv4_packet
from vpnsim.tunnel.protocol import ServerProtocol, raw_addresses


def _either(data: bytes) -> object:
    try:
        return tuple(ipaddress.ip_address(a) for a in raw_addresses(data))
    except MalformedPacket:
        return "malformed"


def _reference(data: bytes) -> object:
    try:
        return inner_addresses(data)
    except MalformedPacket:
        return "malformed"


@given(st.binary(max_size=80))
def test_raw_addresses_agree_with_inner_addresses_on_any_bytes(data: bytes) -> None:
    assert _either(data) == _reference(data)


@given(
    st.sampled_from([0x45, 0x46, 0x44, 0x60, 0x65]),
    st.integers(0, 0xFFFF),
    st.binary(min_size=38, max_size=60),
)
def test_raw_addresses_agree_near_valid_headers(first: int, length: int, rest: bytes) -> None:
    data = bytes([first, 0]) + length.to_bytes(2, "big") + rest
    if first >> 4 == 6:
        data = bytes([first, 0, 0, 0]) + (length % 64).to_bytes(2, "big") + rest
    assert _either(data) == _reference(data)


def test_raw_addresses_are_the_packed_addresses() -> None:
    packet = ipv4_packet("192.168.53.99", "192.168.60.5", b"x" * 10)
    assert raw_addresses(packet) == (bytes([192, 168, 53, 99]), bytes([192, 168, 60, 5]))


def test_server_routes_by_raw_bytes_and_shows_ipaddress_objects() -> None:
    server = ServerProtocol()
    client = ("10.9.0.5", 40000)
    server.datagram_received(ipv4_packet("192.168.53.99", "192.168.60.5", b"u"), client, 1.0)
    assert server.table.routes == {bytes([192, 168, 53, 99]): client}
    assert server.routes == {ipaddress.IPv4Address("192.168.53.99"): client}
    sends = server.packet_from_tun(ipv4_packet("192.168.60.5", "192.168.53.99", b"v"), 2.0)
    assert [s.addr for s in sends] == [client]


def test_raw_addresses_message_says_what_is_wrong() -> None:
    with pytest.raises(MalformedPacket, match="total length 60 in 24 bytes"):
        raw_addresses(bytes([0x45, 0, 0, 60]) + bytes(20))
