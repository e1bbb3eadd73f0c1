"""The offload wire's check (`tunnel.offload`): what a TSO read produces passes; every field
the kernel would refuse, or that does not fit the packet, is refused with a reason."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnsim.packets import MalformedPacket
from vpnsim.testing import ipv4_packet
from vpnsim.tunnel.offload import (
    F_NEEDS_CSUM,
    GSO_TCPV4,
    GSO_TCPV6,
    VNET_HDR,
    check_vnet_header,
    split_super_packet,
)

# A TSO super-packet as the kernel reads it: IPv4 + 20-byte TCP header + 3 segments' payload.
TCP_SEGMENT = ipv4_packet("192.168.53.99", "192.168.60.5", bytes(20 + 3 * 1448), protocol=6)
TSO = VNET_HDR.pack(F_NEEDS_CSUM, GSO_TCPV4, 40, 1448, 20, 16)
PLAIN = VNET_HDR.pack(0, 0, 0, 0, 0, 0)


def test_a_tso_read_and_a_plain_one_pass_and_split_back() -> None:
    assert split_super_packet(TCP_SEGMENT + TSO) == (TSO, TCP_SEGMENT)
    assert split_super_packet(TCP_SEGMENT + PLAIN) == (PLAIN, TCP_SEGMENT)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (VNET_HDR.pack(4, 0, 0, 0, 0, 0), "flags 0x4"),
        (VNET_HDR.pack(0, 0, 9000, 0, 0, 0), "vnet header length 9000"),
        (VNET_HDR.pack(1, 0, 0, 0, 20, 9000), "checksum at 20\\+9000"),
        (VNET_HDR.pack(1, 0, 0, 0, 10, 16), "checksum at 10\\+16"),  # inside the IP header
        (VNET_HDR.pack(0, 0x80, 0, 0, 0, 0), "ECN flag without segmentation"),
        (VNET_HDR.pack(1, GSO_TCPV6, 40, 1448, 20, 16), "segmentation type 4 for IPv4"),
        (VNET_HDR.pack(1, 3, 40, 1448, 20, 16), "segmentation type 3"),  # UDP fragmentation
        (VNET_HDR.pack(0, GSO_TCPV4, 40, 1448, 0, 0), "without checksum offload"),
        (VNET_HDR.pack(1, GSO_TCPV4, 40, 0, 20, 16), "segmentation of 0 bytes"),
        (VNET_HDR.pack(1, GSO_TCPV4, 40, 0xFFFF, 20, 16), "segmentation of 65535 bytes"),
        (VNET_HDR.pack(1, GSO_TCPV4, 40, 1448, 20, 6), "checksum at 20\\+6"),  # not TCP's
    ],
)
def test_each_bad_field_is_refused_with_its_reason(header: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        check_vnet_header(header, TCP_SEGMENT)


def test_tcp_segmentation_of_a_udp_packet_is_refused() -> None:
    udp = ipv4_packet("192.168.53.99", "192.168.60.5", bytes(3000), protocol=17)
    with pytest.raises(MalformedPacket, match="protocol 17"):
        check_vnet_header(TSO, udp)


def test_a_packet_whose_length_field_differs_from_its_size_is_refused() -> None:
    with pytest.raises(MalformedPacket, match="total length"):
        split_super_packet(TCP_SEGMENT + b"extra" + TSO)
    with pytest.raises(MalformedPacket, match="no vnet header"):
        split_super_packet(b"short")


@given(st.binary(max_size=120))
def test_any_bytes_split_or_raise_malformed_packet_only(data: bytes) -> None:
    try:
        header, packet = split_super_packet(data)
    except MalformedPacket:
        return
    assert header + packet == data[-10:] + data[:-10]
    assert len(packet) == int.from_bytes(packet[2:4], "big") or packet[0] >> 4 == 6


@given(st.tuples(*[st.integers(0, 255)] * 2, *[st.integers(0, 0xFFFF)] * 4))
def test_any_header_on_a_real_tcp_packet_passes_or_raises_malformed_packet(
    fields: tuple[int, ...],
) -> None:
    header = struct.pack("<BBHHHH", *fields)
    try:
        check_vnet_header(header, TCP_SEGMENT)
    except MalformedPacket:
        return
    flags, _gso_type, hdr_len, _size, start, offset = fields
    assert hdr_len <= len(TCP_SEGMENT) and flags & ~3 == 0
    if flags & F_NEEDS_CSUM:
        assert start >= 20 and start + offset + 2 <= len(TCP_SEGMENT)
