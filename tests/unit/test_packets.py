"""vpnsim.packets: the checksum and the headers, against packets scapy built (their bytes are
written out here, so the expectations do not move with scapy), and as properties."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnsim import packets
from vpnsim.packets import (
    ICMP_ECHO_REQUEST,
    IPPROTO_ICMP,
    IPPROTO_UDP,
    IcmpHeader,
    IPv4Header,
    IPv6Header,
    UdpHeader,
    checksum,
    icmp_echo,
    inner_addresses,
    ipv4_header,
    ipv6_upper_layer,
    parse_icmp,
    parse_ipv4,
    parse_ipv6,
    parse_udp_header,
    quoted_icmp,
)

# IP(src="192.168.53.99", dst="192.168.60.5", id=7, ttl=63)/ICMP(type=8, id=0x1234, seq=1)/b"abc"
ECHO = bytes.fromhex("4500001f000700003f01891ec0a83563c0a83c05 0800216812340001616263")
# IPv6(src="fd00:53::99", dst="fd00:60::5", tc=0xb8, fl=0x12345, hlim=9)/UDP(sport=1, dport=2)/b"hi"
UDP6 = bytes.fromhex(
    "6b812345000a1109fd000053000000000000000000000099fd000060000000000000000000000005"
    "00010002000a9c1b6869"
)
# IP(src="10.9.0.1", dst="10.9.0.5")/ICMP(type=3, code=1)/IP(ECHO): host unreachable, quoting it
UNREACHABLE = bytes.fromhex("4500003b00010000400166aa0a0900010a090005 0301fcfe00000000") + ECHO


def test_checksum_of_the_rfc_1071_example() -> None:
    assert checksum(bytes.fromhex("0001 f203 f4f5 f6f7")) == 0x220D


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0xFFFF),  # nothing summed: the complement of 0
        (b"\0\0\0\0", 0xFFFF),
        (b"\x01", 0xFEFF),  # an odd byte is padded with a zero byte
        (b"\xff\xff", 0x0000),  # a sum of 0xFFFF, never 0: the complement is 0
        (b"\xff\xff\x00\x01", 0xFFFE),  # the carry wraps around: 0xFFFF + 1 = 0x0001
        (bytearray(b"\x12\x34"), 0xEDCB),
        (memoryview(b"\x12\x34\x56"), 0x97CB),
    ],
)
def test_checksum_exact(data: bytes, expected: int) -> None:
    assert checksum(data) == expected


def test_parse_an_ipv4_echo_request() -> None:
    header = parse_ipv4(ECHO)
    assert header == IPv4Header(
        src="192.168.53.99", dst="192.168.60.5", proto=IPPROTO_ICMP, total_length=31, ttl=63,
        ident=7, flags_fragment=0, tos=0, checksum=0x891E, options=b"",
    )  # fmt: skip
    assert header is not None and header.header_length == 20
    assert (header.more_fragments, header.dont_fragment, header.offset) == (False, False, 0)
    assert parse_icmp(ECHO, 20) == IcmpHeader(ICMP_ECHO_REQUEST, 0, 0x2168, 0x1234, 1)


def test_a_built_ipv4_header_and_echo_are_the_bytes_scapy_builds() -> None:
    header = ipv4_header("192.168.53.99", "192.168.60.5", IPPROTO_ICMP, 11, ttl=63, ident=7)
    assert header.pack() == ECHO[:20]
    assert icmp_echo(ICMP_ECHO_REQUEST, 0x1234, 1, b"abc") == ECHO[20:]


def test_ipv4_options_flags_and_fragment_offset() -> None:
    options = bytes.fromhex("94040000")  # Router Alert
    header = ipv4_header(
        "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 8, flags_fragment=0x2000 | 185, options=options
    )
    parsed = parse_ipv4(header.pack() + b"\0" * 8)
    assert parsed == header
    assert parsed.header_length == 24 and parsed.total_length == 32
    assert (parsed.more_fragments, parsed.dont_fragment, parsed.offset) == (True, False, 1480)
    assert checksum(header.pack()) == 0


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        ECHO[:19],  # shorter than a header
        b"\x65" + ECHO[1:],  # version 6
        b"\x44" + ECHO[1:],  # header length 16: under 20
        b"\x46" + ECHO[1:20],  # header length 24 in 20 bytes
    ],
)
def test_parse_ipv4_refuses_what_is_not_an_ipv4_header(packet: bytes) -> None:
    assert parse_ipv4(packet) is None


def test_ipv4_header_refuses_bad_options_and_oversized_packets() -> None:
    with pytest.raises(ValueError, match="IPv4 options of 3 bytes: a multiple of 4, at most 40"):
        ipv4_header("10.0.0.1", "10.0.0.2", IPPROTO_UDP, 0, options=b"\1\1\1")
    with pytest.raises(ValueError, match="IPv4 packet of 65536 bytes: at most 65535"):
        ipv4_header("10.0.0.1", "10.0.0.2", IPPROTO_UDP, 65516)


def test_parse_an_ipv6_udp_datagram() -> None:
    header = parse_ipv6(UDP6)
    assert header == IPv6Header(
        src="fd00:53::99", dst="fd00:60::5", next_header=IPPROTO_UDP, payload_length=10,
        hop_limit=9, traffic_class=0xB8, flow_label=0x12345,
    )  # fmt: skip
    assert header is not None and header.pack() == UDP6[:40]
    assert parse_udp_header(UDP6, 40) == UdpHeader(1, 2, 10, 0x9C1B)
    assert ipv6_upper_layer(UDP6) == (IPPROTO_UDP, 40, True)
    assert parse_ipv6(ECHO) is None and parse_ipv6(UDP6[:39]) is None
    assert parse_udp_header(UDP6, 43) is None  # ends 1 byte into the header


def test_the_echo_request_an_icmp_error_quotes() -> None:
    assert parse_icmp(UNREACHABLE, 20) == IcmpHeader(3, 1, 0xFCFE, 0, 0)
    assert quoted_icmp(UNREACHABLE, 20) == IcmpHeader(ICMP_ECHO_REQUEST, 0, 0x2168, 0x1234, 1)
    # RFC 792's least quote: the IP header and 8 bytes (our payload is not quoted).
    least = UNREACHABLE[: 28 + 20 + 8]
    assert quoted_icmp(least, 20) == IcmpHeader(ICMP_ECHO_REQUEST, 0, 0x2168, 0x1234, 1)
    assert quoted_icmp(least[:-1], 20) is None  # the quote stops inside the ICMP header
    not_icmp = UNREACHABLE[:37] + bytes([IPPROTO_UDP]) + UNREACHABLE[38:]
    assert quoted_icmp(not_icmp, 20) is None


# -- properties ---------------------------------------------------------------------------------

ipv4_addresses = st.ip_addresses(v=4).map(str)
# As inet_ntop writes them ("::ffff:0.0.0.0", where ipaddress writes "::ffff:0:0").
ipv6_addresses = st.ip_addresses(v=6).map(lambda a: socket.inet_ntop(socket.AF_INET6, a.packed))
u8, u16 = st.integers(0, 0xFF), st.integers(0, 0xFFFF)
ipv4_headers = st.builds(
    IPv4Header,
    src=ipv4_addresses,
    dst=ipv4_addresses,
    proto=u8,
    total_length=u16,
    ttl=u8,
    ident=u16,
    flags_fragment=u16,
    tos=u8,
    checksum=u16,
    options=st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)
ipv6_headers = st.builds(
    IPv6Header,
    src=ipv6_addresses,
    dst=ipv6_addresses,
    next_header=u8,
    payload_length=u16,
    hop_limit=u8,
    traffic_class=u8,
    flow_label=st.integers(0, 0xFFFFF),
)


@given(ipv4_headers, st.binary(max_size=64))
def test_parse_ipv4_inverts_pack(header: IPv4Header, payload: bytes) -> None:
    assert parse_ipv4(header.pack() + payload) == header


@given(ipv6_headers, st.binary(max_size=64))
def test_parse_ipv6_inverts_pack(header: IPv6Header, payload: bytes) -> None:
    assert parse_ipv6(header.pack() + payload) == header


@given(st.builds(UdpHeader, u16, u16, u16, u16), st.builds(IcmpHeader, u8, u8, u16, u16, u16))
def test_parse_udp_and_icmp_invert_pack(udp: UdpHeader, icmp: IcmpHeader) -> None:
    assert parse_udp_header(b"xy" + udp.pack(), 2) == udp
    assert parse_icmp(icmp.pack()) == icmp


@given(ipv4_addresses, ipv4_addresses, u8, st.integers(0, 65515 - 40), u8, u16, u16)
def test_a_built_ipv4_header_checksums_to_zero(
    src: str, dst: str, proto: int, length: int, ttl: int, ident: int, frag: int
) -> None:
    header = ipv4_header(src, dst, proto, length, ttl=ttl, ident=ident, flags_fragment=frag)
    assert checksum(header.pack()) == 0
    assert parse_ipv4(header.pack()) == header


@given(u16, u16, st.binary(max_size=300))
def test_an_echo_with_its_checksum_in_place_checksums_to_zero(
    ident: int, seq: int, payload: bytes
) -> None:
    assert checksum(icmp_echo(ICMP_ECHO_REQUEST, ident, seq, payload)) == 0


@given(st.binary(max_size=200).map(lambda b: b[: len(b) // 2 * 2]))
def test_any_data_with_its_checksum_appended_checksums_to_zero(data: bytes) -> None:
    assert checksum(data + struct.pack("!H", checksum(data))) == 0


@given(st.binary(max_size=200))
def test_checksum_is_the_folded_sum_of_big_endian_words(data: bytes) -> None:
    padded = data + b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert checksum(data) == ~total & 0xFFFF


def test_inner_addresses_remembers_a_bounded_number_of_addresses() -> None:
    packets._ADDRESSES.clear()
    for n in range(packets.ADDRESS_CACHE_SIZE + 10):
        src = str(ipaddress.IPv4Address(0x0A000000 + n))
        packet = ipv4_header(src, "192.168.60.5", IPPROTO_UDP, 0).pack()
        assert inner_addresses(packet) == (
            ipaddress.IPv4Address(src),
            ipaddress.IPv4Address("192.168.60.5"),
        )
        assert len(packets._ADDRESSES) <= packets.ADDRESS_CACHE_SIZE
    assert inner_addresses(UDP6) == (
        ipaddress.IPv6Address("fd00:53::99"),
        ipaddress.IPv6Address("fd00:60::5"),
    )
