"""ICMP echo building and matching, UDP in captured frames, and pcap files, byte for byte."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from vpnsim.packets import checksum
from vpnsim.testing import ipv4_packet
from vpnsim.traffic.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    Frame,
    UdpDatagram,
    parse_udp,
    write_pcap,
)
from vpnsim.traffic.errors import NoRoute, ProbeFailed
from vpnsim.traffic.icmp import _heard as heard
from vpnsim.traffic.icmp import echo_request

US = "10.9.0.5"
ROUTER = "10.9.0.11"
HOST_V = "192.168.60.5"
IDENT, SEQ = 0x1234, 7
WHAT = "ICMP echo of 6 bytes to 192.168.60.5"


def match_reply(
    packet: bytes, ident: int, seq: int, source: str, what: str
) -> tuple[int, bytes] | None:
    """(ttl, payload) of our reply to `seq`, raising the error that quotes it; None otherwise."""
    found = heard(packet, ident, {seq}, source, what)
    if found is None:
        return None
    if found.error is not None:
        raise found.error
    return found.ttl, found.payload


def rfc1071(data: bytes) -> int:
    """The Internet checksum over big-endian words, written apart from the code under test."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def on_the_wire(value: int) -> bytes:
    # packets.checksum is a number to pack big-endian ("!H").
    return struct.pack("!H", value)


def test_checksum_of_the_rfc_1071_example_is_0x220d_on_the_wire() -> None:
    data = bytes.fromhex("0001 f203 f4f5 f6f7")

    assert rfc1071(data) == 0x220D
    assert on_the_wire(checksum(data)) == bytes.fromhex("220d")


def test_checksum_of_an_odd_length_message_pads_it_with_a_zero_byte() -> None:
    assert on_the_wire(checksum(b"\x01")) == bytes.fromhex("feff")


def test_echo_request_matches_a_well_known_windows_ping() -> None:
    # Windows' ping: ident 1, seq 1, 32 bytes "abc...w" + "abc...i"; checksum 0x4d5a.
    message = echo_request(1, 1, b"abcdefghijklmnopqrstuvwabcdefghi")

    assert message == bytes.fromhex("08004d5a00010001") + b"abcdefghijklmnopqrstuvwabcdefghi"


def test_echo_request_carries_ident_seq_payload_and_a_checksum_that_verifies() -> None:
    message = echo_request(IDENT, SEQ, b"vpnsim")

    assert message == bytes.fromhex("0800 9773 1234 0007") + b"vpnsim"
    assert rfc1071(message) == 0  # the receiver's check: the sum over the whole message


@pytest.mark.parametrize("size", [0, 1, 2, 1471, 1472, 65507])
def test_echo_request_checksum_verifies_for_any_payload_size(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))

    assert rfc1071(echo_request(IDENT, SEQ, payload)) == 0


def icmp(icmp_type: int, code: int, rest: bytes, body: bytes) -> bytes:
    header = struct.pack("!BBH4s", icmp_type, code, 0, rest)
    return header[:2] + struct.pack("!H", rfc1071(header + body)) + header[4:] + body


def echo_reply(ident: int, seq: int, payload: bytes, ttl: int = 63) -> bytes:
    body = icmp(0, 0, struct.pack("!HH", ident, seq), payload)
    return ipv4_packet(HOST_V, US, body, socket.IPPROTO_ICMP, ttl=ttl)


def icmp_error(icmp_type: int, code: int, ident: int, seq: int) -> bytes:
    """An ICMP error from the router quoting our request's IP header and first 8 bytes."""
    request = ipv4_packet(US, HOST_V, echo_request(ident, seq, b"vpnsim"), socket.IPPROTO_ICMP)
    body = icmp(icmp_type, code, b"\0\0\0\0", request[: 20 + 8])
    return ipv4_packet(ROUTER, US, body, socket.IPPROTO_ICMP)


def test_match_returns_ttl_and_payload_of_the_reply_to_our_ident_and_seq() -> None:
    packet = echo_reply(IDENT, SEQ, b"vpnsim", ttl=63)

    assert match_reply(packet, IDENT, SEQ, HOST_V, WHAT) == (63, b"vpnsim")


@pytest.mark.parametrize(("ident", "seq"), [(IDENT + 1, SEQ), (IDENT, SEQ + 1)])
def test_match_ignores_a_reply_to_another_ident_or_seq(ident: int, seq: int) -> None:
    assert match_reply(echo_reply(ident, seq, b"vpnsim"), IDENT, SEQ, HOST_V, WHAT) is None


def test_match_raises_no_route_for_destination_unreachable_quoting_our_request() -> None:
    packet = icmp_error(3, 1, IDENT, SEQ)

    with pytest.raises(NoRoute) as raised:
        match_reply(packet, IDENT, SEQ, ROUTER, WHAT)
    assert str(raised.value) == f"{WHAT}: host unreachable (ICMP from {ROUTER})"


def test_match_names_an_unknown_unreachable_code() -> None:
    with pytest.raises(NoRoute) as raised:
        match_reply(icmp_error(3, 13, IDENT, SEQ), IDENT, SEQ, ROUTER, WHAT)
    assert str(raised.value) == f"{WHAT}: unreachable code 13 (ICMP from {ROUTER})"


def test_match_ignores_destination_unreachable_quoting_another_request() -> None:
    assert match_reply(icmp_error(3, 1, IDENT + 1, SEQ), IDENT, SEQ, ROUTER, WHAT) is None


def test_match_raises_probe_failed_not_no_route_for_time_exceeded_quoting_our_request() -> None:
    with pytest.raises(ProbeFailed) as raised:
        match_reply(icmp_error(11, 0, IDENT, SEQ), IDENT, SEQ, ROUTER, WHAT)
    assert type(raised.value) is ProbeFailed
    assert str(raised.value) == f"{WHAT}: time exceeded (ICMP from {ROUTER}): a routing loop?"


def udp_header(sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header for `payload` (checksum 0: none)."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)


def ethernet(ethertype: int, body: bytes) -> bytes:
    return (
        bytes.fromhex("02 42 0a 09 00 0b 02 42 0a 09 00 05") + struct.pack("!H", ethertype) + body
    )


def with_fragment(packet: bytes, offset_words: int, more_fragments: bool) -> bytes:
    field = (0x2000 if more_fragments else 0) | offset_words
    header = packet[:6] + struct.pack("!H", field) + packet[8:10] + b"\0\0" + packet[12:20]
    return header[:10] + struct.pack("!H", rfc1071(header)) + header[12:] + packet[20:]


UDP_PACKET = ipv4_packet(
    US, ROUTER, udp_header(40000, 9090, b"hello") + b"hello", socket.IPPROTO_UDP
)
HELLO = UdpDatagram(src=US, sport=40000, dst=ROUTER, dport=9090, length=5, payload=b"hello")


def test_parse_udp_of_an_ethernet_frame() -> None:
    assert parse_udp(ethernet(0x0800, UDP_PACKET), LINKTYPE_ETHERNET) == HELLO


def test_parse_udp_of_a_raw_ip_packet_from_a_tun_capture() -> None:
    assert parse_udp(UDP_PACKET, LINKTYPE_RAW) == HELLO


def test_parse_udp_of_a_first_fragment_gives_the_udp_length_and_the_bytes_it_carries() -> None:
    payload = bytes(range(256)) * 12  # 3072 bytes: fragmented over a 1500-byte link
    first = ipv4_packet(
        US, ROUTER, udp_header(40000, 9090, payload) + payload[:1472], socket.IPPROTO_UDP
    )

    datagram = parse_udp(with_fragment(first, 0, more_fragments=True), LINKTYPE_RAW)

    assert datagram == UdpDatagram(US, 40000, ROUTER, 9090, length=3072, payload=payload[:1472])


def test_parse_udp_ignores_a_non_first_fragment() -> None:
    middle = ipv4_packet(US, ROUTER, bytes(1480), socket.IPPROTO_UDP)

    assert parse_udp(with_fragment(middle, 185, more_fragments=True), LINKTYPE_RAW) is None
    assert parse_udp(ethernet(0x0800, with_fragment(middle, 370, False)), LINKTYPE_ETHERNET) is None


def test_parse_udp_ignores_arp() -> None:
    arp_request = bytes.fromhex("0001 0800 06 04 0001 02420a090005 0a090005 000000000000 0a09000b")

    assert parse_udp(ethernet(0x0806, arp_request), LINKTYPE_ETHERNET) is None


def test_parse_udp_ignores_tcp_icmp_and_short_frames() -> None:
    tcp = ipv4_packet(US, ROUTER, bytes(20), socket.IPPROTO_TCP)
    ping = ipv4_packet(US, ROUTER, echo_request(IDENT, SEQ, b"vpnsim"), socket.IPPROTO_ICMP)

    assert parse_udp(ethernet(0x0800, tcp), LINKTYPE_ETHERNET) is None
    assert parse_udp(ethernet(0x0800, ping), LINKTYPE_ETHERNET) is None
    assert parse_udp(ethernet(0x0800, UDP_PACKET[:27]), LINKTYPE_ETHERNET) is None
    assert parse_udp(b"\x02\x42", LINKTYPE_ETHERNET) is None


def read_pcap(path: Path) -> tuple[tuple[int, ...], list[tuple[int, int, int, int, bytes]]]:
    """Global header fields and records, in the byte order the magic number announces."""
    data = path.read_bytes()
    order = "<" if data[:4] == bytes.fromhex("d4c3b2a1") else ">"
    header = struct.unpack_from(order + "IHHiIII", data, 0)
    records = []
    offset = 24
    while offset < len(data):
        seconds, micros, included, original = struct.unpack_from(order + "IIII", data, offset)
        offset += 16
        records.append((seconds, micros, included, original, data[offset : offset + included]))
        offset += included
    return header, records


def test_write_pcap_writes_a_global_header_and_records_that_read_back_exactly(
    tmp_path: Path,
) -> None:
    sent, received = ethernet(0x0800, UDP_PACKET), ethernet(0x0806, bytes(28))
    frames = [
        Frame(time=1_700_000_000.5, data=sent, outgoing=True),
        Frame(time=1_700_000_001.25, data=received, outgoing=False),
    ]
    path = tmp_path / "captures" / "u-eth0.pcap"  # the folder does not exist yet

    write_pcap(path, frames, LINKTYPE_ETHERNET)

    header, records = read_pcap(path)
    assert header == (0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)
    assert records == [
        (1_700_000_000, 500_000, len(sent), len(sent), sent),
        (1_700_000_001, 250_000, len(received), len(received), received),
    ]
    assert path.stat().st_size == 24 + 16 + len(sent) + 16 + len(received)
    if shutil.which("tcpdump"):
        shown = subprocess.run(
            ["tcpdump", "-r", str(path), "-nn"], capture_output=True, text=True, check=True
        ).stdout
        assert "IP 10.9.0.5.40000 > 10.9.0.11.9090: UDP, length 5" in shown


def test_write_pcap_of_a_tun_capture_uses_the_raw_ip_link_type(tmp_path: Path) -> None:
    path = tmp_path / "tun0.pcap"

    write_pcap(path, [Frame(time=0.0, data=UDP_PACKET, outgoing=True)], LINKTYPE_RAW)

    header, records = read_pcap(path)
    assert header == (0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW)
    assert records == [(0, 0, len(UDP_PACKET), len(UDP_PACKET), UDP_PACKET)]


def test_write_pcap_of_no_frames_is_the_global_header_alone(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"

    write_pcap(path, [])

    assert read_pcap(path) == ((0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET), [])


@pytest.mark.parametrize("ihl_words", [4, 6, 15])
def test_parse_udp_refuses_a_header_length_that_does_not_fit(ihl_words: int) -> None:
    packet = bytearray(
        ipv4_packet(
            "10.9.0.5",
            "10.9.0.11",
            struct.pack("!HHHH", 1, 9090, 8, 0),
            protocol=socket.IPPROTO_UDP,
        )
    )
    packet[0] = 0x40 | ihl_words
    assert parse_udp(bytes(packet), LINKTYPE_RAW) is None


def test_match_ignores_an_error_whose_quote_stops_before_our_icmp_header() -> None:
    quoted_header = bytearray(ipv4_packet("192.168.53.99", "192.168.60.5", b"", protocol=1))
    quoted_header[0] = 0x46  # claims 24 bytes of header, but only 20 + 8 are quoted
    body = bytes(quoted_header) + echo_request(7, 1, b"")[:8]
    error = ipv4_packet(
        "10.9.0.11", "192.168.53.99", struct.pack("!BBHI", 3, 1, 0, 0) + body, protocol=1
    )
    assert match_reply(error, 7, 1, "10.9.0.11", "probe") is None


def test_pcap_timestamps_round_to_the_nearest_microsecond(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    write_pcap(path, [Frame(1.000001, b"\x00" * 14, False), Frame(2.9999996, b"\x00" * 14, True)])
    records = path.read_bytes()[24:]
    assert struct.unpack_from("=II", records, 0) == (1, 1)
    assert struct.unpack_from("=II", records, 16 + 14) == (3, 0)


def test_tap_datagrams_are_described_as_frames_and_arp() -> None:
    from vpnsim.testing import ethernet_frame
    from vpnsim.traffic.evidence import describe_inner

    u, s = "02:00:00:00:00:99", "02:00:00:00:00:01"
    arp = bytes.fromhex("0001080006040001") + bytes.fromhex(u.replace(":", ""))
    arp += socket.inet_aton("192.168.53.99") + bytes(6) + socket.inet_aton("192.168.53.1")
    request = ethernet_frame("ff:ff:ff:ff:ff:ff", u, 0x0806, arp)
    reply_body = arp[:7] + b"\x02" + arp[8:]
    reply = ethernet_frame(
        u,
        s,
        0x0806,
        reply_body[:8]
        + bytes.fromhex("020000000001")
        + socket.inet_aton("192.168.53.1")
        + reply_body[18:],
    )
    ping = ethernet_frame(
        s, u, 0x0800, ipv4_packet("192.168.53.99", "192.168.60.5", b"x", protocol=1)
    )
    assert describe_inner(request, "tap") == "ARP who has 192.168.53.1? tell 192.168.53.99"
    assert describe_inner(reply, "tap") == "ARP 192.168.53.1 is at 02:00:00:00:00:01"
    assert describe_inner(ping, "tap") == (
        "Ethernet 02:00:00:00:00:99 > 02:00:00:00:00:01: ICMP 192.168.53.99 > 192.168.60.5"
    )
    assert describe_inner(b"\x00" * 5, "tap") == "5 bytes that are not an Ethernet frame"
