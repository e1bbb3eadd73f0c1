"""The wire's packet handling without root: which Ethernet frames are impairable and where their
IP packet is, the Internet checksum, and corruption with and without fixing the checksums
(IPv4, UDP, TCP, ICMP and ICMPv6, behind IPv6 extension headers too), as scapy checks them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6MLQuery,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    IPv6ExtHdrSegmentRouting,
    RouterAlert,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Padding, Raw

from vpnsim.impair.packet import checksum, corrupt, ip_span

MACS: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
V4: dict[str, Any] = {"src": "10.0.0.1", "dst": "10.0.0.2"}
V6: dict[str, Any] = {"src": "fd00::1", "dst": "fd00::2"}
PAYLOAD = bytes(range(32))


def eth(*layers: Packet) -> bytes:
    frame = Ether(**MACS)
    for layer in layers:
        frame = frame / layer
    return bytes(frame)


def udp4(**ip: Any) -> bytes:
    return eth(IP(**{**V4, **ip}) / UDP(sport=1234, dport=5678) / PAYLOAD)


def tcp4() -> bytes:
    return eth(IP(**V4) / TCP(sport=1234, dport=80, seq=1000, flags="PA") / PAYLOAD)


def udp6() -> bytes:
    return eth(IPv6(**V6) / UDP(sport=1234, dport=5678) / PAYLOAD)


def tcp6() -> bytes:
    return eth(IPv6(**V6) / TCP(sport=1234, dport=80, seq=1000, flags="PA") / PAYLOAD)


def icmp4() -> bytes:
    return eth(IP(**V4) / ICMP(id=7, seq=1) / PAYLOAD)


def icmp6() -> bytes:
    return eth(IPv6(**V6) / ICMPv6EchoRequest(id=7, seq=1, data=PAYLOAD))


def udp6_hop_by_hop() -> bytes:
    return eth(IPv6(**V6) / IPv6ExtHdrHopByHop() / UDP(sport=1234, dport=5678) / PAYLOAD)


def udp6_destination_options() -> bytes:
    return eth(IPv6(**V6) / IPv6ExtHdrDestOpt() / UDP(sport=1234, dport=5678) / PAYLOAD)


def icmp6_two_headers() -> bytes:
    headers = IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
    return eth(IPv6(**V6) / headers / ICMPv6EchoRequest(id=7, seq=1, data=PAYLOAD))


def tcp6_routed() -> bytes:
    # Segments left: the pseudo-header holds the final destination, the routing header's last
    # address (bytes 64-79 of the packet), not the IPv6 header's destination.
    routing = IPv6ExtHdrRouting(addresses=["fd00::7", "fd00::9"], segleft=2)
    return eth(IPv6(**V6) / routing / TCP(sport=1234, dport=80, seq=1000, flags="PA") / PAYLOAD)


def udp6_segment_routed() -> bytes:
    # A segment routing header: the final destination is its first segment (bytes 48-63).
    routing = IPv6ExtHdrSegmentRouting(addresses=["fd00::7", "fd00::9"], segleft=1)
    return eth(IPv6(**V6) / routing / UDP(sport=1234, dport=5678) / PAYLOAD)


# Each checksummed layer's checksum field: its name, and its offset in the layer.
CHECKSUM_FIELDS = {
    "IP": ("chksum", 10),
    "UDP": ("chksum", 6),
    "TCP": ("chksum", 16),
    "ICMP": ("chksum", 2),
    "ICMPv6EchoRequest": ("cksum", 2),
}


def checksummed(parsed: Packet) -> list[Any]:
    return [layer for layer in parsed.layers() if layer.__name__ in CHECKSUM_FIELDS]


def bad_checksums(frame: bytes) -> set[str]:
    """The layers whose stored checksum differs from the one scapy computes afresh."""
    parsed = Ether(frame)
    rebuilt = parsed.copy()
    layers = checksummed(parsed)
    assert layers, "no checksummed layer"
    for layer in layers:
        delattr(rebuilt[layer], CHECKSUM_FIELDS[layer.__name__][0])
    fresh = Ether(bytes(rebuilt))
    return {
        layer.__name__
        for layer in layers
        if getattr(parsed[layer], CHECKSUM_FIELDS[layer.__name__][0])
        != getattr(fresh[layer], CHECKSUM_FIELDS[layer.__name__][0])
    }


def checksum_bytes(frame: bytes) -> set[int]:
    """Where the checksums of the frame's checksummed layers are."""
    parsed = Ether(frame)
    starts = {
        len(frame) - len(bytes(parsed[layer])) + CHECKSUM_FIELDS[layer.__name__][1]
        for layer in checksummed(parsed)
    }
    return {i for start in starts for i in (start, start + 1)}


def changed(a: bytes, b: bytes) -> set[int]:
    assert len(a) == len(b)
    return {i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y}


# --- which frames, and where ------------------------------------------------------------------


def test_ip_span_ipv4() -> None:
    frame = udp4()
    assert ip_span(frame) == (14, 20 + 8 + 32)
    assert len(frame) == 14 + 60


def test_ip_span_ignores_ethernet_padding() -> None:
    frame = eth(IP(**V4) / UDP() / b"x" / Padding(b"\0" * 17))
    assert len(frame) == 60
    assert ip_span(frame) == (14, 29)


def test_ip_span_ipv6() -> None:
    assert ip_span(udp6()) == (14, 40 + 8 + 32)
    hop_by_hop_udp = eth(IPv6(**V6) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / UDP())
    assert ip_span(hop_by_hop_udp) == (14, 40 + 8 + 8)


def test_ip_span_vlan_tags() -> None:
    tagged = eth(Dot1Q(vlan=5) / IP(**V4) / UDP() / PAYLOAD)
    assert ip_span(tagged) == (18, 60)
    double = eth(Dot1AD(vlan=3) / Dot1Q(vlan=5) / IPv6(**V6) / UDP() / PAYLOAD)
    assert ip_span(double) == (22, 80)
    assert ip_span(eth(Dot1Q(vlan=5) / ARP())) is None


def test_arp_is_not_impairable() -> None:
    assert ip_span(eth(ARP(psrc="10.0.0.1", pdst="10.0.0.2"))) is None


def test_igmp_is_not_impairable() -> None:
    # The report a lab's bridge sends for 224.0.0.106 when a port joins, as seen on U:eth0:
    # its timing is the kernel's, so it must not take a place in a schedule.
    report = IP(src="0.0.0.0", dst="224.0.0.22", ttl=1, proto=2, options=[IPOption_Router_Alert()])
    # Type 0x22, one record: CHANGE_TO_EXCLUDE {} (a join) of 224.0.0.106.
    igmp = bytes.fromhex("2200 0000 0000 0001") + bytes.fromhex("04 00 0000 e000006a")
    frame = eth(report / Raw(igmp))
    assert len(frame) - 14 == 40
    assert ip_span(frame) is None


@pytest.mark.parametrize(
    "control",
    [
        ICMPv6ND_NS(tgt="fd00::2"),
        ICMPv6ND_NA(tgt="fd00::2"),
        ICMPv6ND_RS(),
    ],
    ids=["neighbour solicitation", "neighbour advertisement", "router solicitation"],
)
def test_neighbour_discovery_is_not_impairable(control: Packet) -> None:
    assert ip_span(eth(IPv6(src="fe80::1", dst="ff02::1:ff00:2") / control)) is None


@pytest.mark.parametrize(
    "mld", [ICMPv6MLReport2(), ICMPv6MLQuery()], ids=["MLDv2 report", "MLD query"]
)
def test_mld_behind_its_router_alert_is_not_impairable(mld: Packet) -> None:
    # MLD is always sent with a Hop-by-Hop Router Alert option (RFC 2710, 3810).
    router_alert = IPv6ExtHdrHopByHop(options=[RouterAlert()])
    frame = eth(IPv6(src="fe80::1", dst="ff02::16") / router_alert / mld)
    assert ip_span(frame) is None


def test_icmpv6_echo_is_impairable() -> None:
    frame = eth(IPv6(**V6) / ICMPv6EchoRequest(id=1, seq=1, data=b"ping"))
    assert ip_span(frame) == (14, 40 + 8 + 4)


def test_ip_span_other_ethertypes() -> None:
    assert ip_span(bytes(Ether(type=0x88CC, **MACS) / (b"\0" * 46))) is None  # LLDP


def test_ip_span_truncated_frames() -> None:
    whole = udp4()
    assert ip_span(b"") is None
    assert ip_span(whole[:13]) is None
    assert ip_span(whole[:14]) is None
    assert ip_span(whole[: 14 + 19]) is None  # not even an IPv4 header
    assert ip_span(whole[: 14 + 20]) == (14, 20)
    assert ip_span(whole[: 14 + 30]) == (14, 30)  # the header says 60: only what is there
    assert ip_span(udp6()[: 14 + 39]) is None
    assert ip_span(udp6()[: 14 + 50]) == (14, 50)
    tagged = eth(Dot1Q(vlan=5) / IP(**V4) / UDP())
    assert ip_span(tagged[:16]) is None  # the tag cut short
    assert ip_span(tagged[: 18 + 19]) is None


# --- the checksum -----------------------------------------------------------------------------


def test_checksum_known_values() -> None:
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D  # RFC 1071, 3
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert checksum(header) == 0xB861
    assert checksum(header[:10] + b"\xb8\x61" + header[12:]) == 0  # a valid header sums to 0
    assert checksum(b"") == 0xFFFF
    assert checksum(b"\x01") == 0xFEFF  # an odd byte is padded with a zero
    assert checksum(b"\xff\xff") == 0
    assert checksum(bytearray(b"\x12\x34")) == checksum(memoryview(b"\x12\x34")) == 0xEDCB


def test_checksum_matches_scapy() -> None:
    ip = IP(udp4()[14:])
    assert checksum(bytes(ip)[:20]) == 0
    assert ip.chksum == checksum(bytes(IP(**V4, chksum=0) / UDP() / PAYLOAD)[:20])


# --- corruption -------------------------------------------------------------------------------

# (offset in the IP packet, layers whose checksum the flip breaks)
UDP4_CASES = [
    (1, {"IP"}),  # type of service
    (4, {"IP"}),  # identification
    (8, {"IP"}),  # time to live
    (10, {"IP"}),  # the header checksum itself
    (12, {"IP", "UDP"}),  # source address: also in the pseudo header
    (19, {"IP", "UDP"}),  # destination address
    (20, {"UDP"}),  # source port
    (27, {"UDP"}),  # the UDP checksum itself
    (28, {"UDP"}),  # payload
    (59, {"UDP"}),  # the last byte
]
TCP4_CASES = [(8, {"IP"}), (12, {"IP", "TCP"}), (24, {"TCP"}), (36, {"TCP"}), (71, {"TCP"})]
UDP6_CASES = [
    (1, set()),  # traffic class: no IPv6 header checksum, not in the pseudo header
    (7, set()),  # hop limit
    (8, {"UDP"}),  # source address
    (39, {"UDP"}),  # destination address
    (46, {"UDP"}),  # the UDP checksum
    (48, {"UDP"}),  # payload
]
TCP6_CASES = [(7, set()), (8, {"TCP"}), (56, {"TCP"}), (91, {"TCP"})]
ICMP4_CASES = [
    (8, {"IP"}),  # time to live
    (12, {"IP"}),  # source address: ICMP has no pseudo header
    (21, {"ICMP"}),  # code
    (22, {"ICMP"}),  # the ICMP checksum itself
    (24, {"ICMP"}),  # identifier
    (28, {"ICMP"}),  # payload
    (59, {"ICMP"}),  # the last byte
]
ECHO6 = {"ICMPv6EchoRequest"}
ICMP6_CASES = [
    (7, set()),
    (8, ECHO6),
    (39, ECHO6),
    (41, ECHO6),
    (42, ECHO6),
    (44, ECHO6),
    (79, ECHO6),
]
UDP6_BEHIND_ONE_HEADER_CASES = [  # an 8-byte extension header at 40-47, UDP at 48
    (7, set()),  # hop limit
    (8, {"UDP"}),  # source address
    (39, {"UDP"}),  # destination address
    (46, set()),  # padding in the extension header: no checksum covers it
    (48, {"UDP"}),  # source port
    (54, {"UDP"}),  # the UDP checksum
    (56, {"UDP"}),  # payload
    (87, {"UDP"}),  # the last byte
]
ICMP6_TWO_HEADERS_CASES = [(8, ECHO6), (46, set()), (54, set()), (58, ECHO6), (95, ECHO6)]
TCP6_ROUTED_CASES = [
    (8, {"TCP"}),  # source address
    (39, set()),  # the IPv6 header's destination: not the final one
    (50, set()),  # the routing header's first address
    (79, {"TCP"}),  # its last address: the final destination
    (96, {"TCP"}),  # the TCP checksum
    (131, {"TCP"}),  # the last byte
]
UDP6_SEGMENT_ROUTED_CASES = [(39, set()), (63, {"UDP"}), (79, set()), (86, {"UDP"}), (119, {"UDP"})]

CASES = [
    pytest.param(build, at, broken, id=f"{build.__name__}@{at}")
    for build, cases in (
        (udp4, UDP4_CASES),
        (tcp4, TCP4_CASES),
        (udp6, UDP6_CASES),
        (tcp6, TCP6_CASES),
        (icmp4, ICMP4_CASES),
        (icmp6, ICMP6_CASES),
        (udp6_hop_by_hop, UDP6_BEHIND_ONE_HEADER_CASES),
        (udp6_destination_options, UDP6_BEHIND_ONE_HEADER_CASES),
        (icmp6_two_headers, ICMP6_TWO_HEADERS_CASES),
        (tcp6_routed, TCP6_ROUTED_CASES),
        (udp6_segment_routed, UDP6_SEGMENT_ROUTED_CASES),
    )
    for at, broken in cases
]


@pytest.mark.parametrize(("build", "at", "broken"), CASES)
@pytest.mark.parametrize("xor", [0x01, 0x80, 0xFF])
def test_corrupt_without_fixing_leaves_checksums_wrong(
    build: Callable[[], bytes], at: int, broken: set[str], xor: int
) -> None:
    frame = build()
    assert bad_checksums(frame) == set()
    damaged = corrupt(frame, 14, at, xor, fix_checksums=False)
    assert changed(frame, damaged) == {14 + at}
    assert damaged[14 + at] == frame[14 + at] ^ xor
    assert bad_checksums(damaged) == broken


@pytest.mark.parametrize(("build", "at", "broken"), CASES)
@pytest.mark.parametrize("xor", [0x01, 0x80, 0xFF])
def test_corrupt_with_fixing_gives_valid_checksums(
    build: Callable[[], bytes], at: int, broken: set[str], xor: int
) -> None:
    frame = build()
    damaged = corrupt(frame, 14, at, xor, fix_checksums=True)
    assert bad_checksums(damaged) == set()
    if 14 + at in checksum_bytes(frame):
        assert damaged == frame  # a flipped checksum is computed again
    else:
        assert damaged[14 + at] == frame[14 + at] ^ xor
        rewritten = changed(frame, damaged) - {14 + at}
        assert rewritten <= checksum_bytes(frame)
        assert bool(rewritten) == bool(broken)


def test_fixing_behind_a_vlan_tag() -> None:
    frame = eth(Dot1Q(vlan=5) / IP(**V4) / UDP() / PAYLOAD)
    assert bad_checksums(corrupt(frame, 18, 30, 0x55, fix_checksums=False)) == {"UDP"}
    assert bad_checksums(corrupt(frame, 18, 30, 0x55, fix_checksums=True)) == set()


def test_ipv4_udp_without_checksum_stays_without() -> None:
    frame = eth(IP(**V4) / UDP(sport=1, dport=2, chksum=0) / PAYLOAD)
    damaged = corrupt(frame, 14, 30, 0x42, fix_checksums=True)
    assert damaged[14 + 26 : 14 + 28] == b"\0\0"
    assert changed(frame, damaged) == {14 + 30}  # the IP header is untouched, still valid
    assert checksum(damaged[14:34]) == 0


def test_a_udp_checksum_of_zero_is_sent_as_ffff() -> None:
    # Choose the first two payload bytes so the one's complement sum is 0xFFFF after the flip.
    zeroed = eth(IP(**V4) / UDP(sport=1, dport=2) / (b"\0\0" + PAYLOAD))
    rest = ~Ether(zeroed)[UDP].chksum & 0xFFFF  # the sum of everything but those two bytes
    word = (0xFFFF - rest).to_bytes(2, "big")
    frame = eth(IP(**V4) / UDP(sport=1, dport=2) / (bytes([word[0] ^ 0x01, word[1]]) + PAYLOAD))
    damaged = corrupt(frame, 14, 28, 0x01, fix_checksums=True)
    assert damaged[14 + 28 : 14 + 30] == word
    assert damaged[14 + 26 : 14 + 28] == b"\xff\xff"
    assert bad_checksums(damaged) == set()


def test_fragments_get_their_header_fixed_but_not_l4() -> None:
    first = udp4(flags="MF")
    damaged = corrupt(first, 14, 30, 0x42, fix_checksums=True)
    assert damaged[14 + 26 : 14 + 28] == first[14 + 26 : 14 + 28]  # UDP checksum left alone
    assert bad_checksums(damaged) == {"UDP"}
    assert checksum(damaged[14:34]) == 0
    # A later fragment: its bytes after the header are not a UDP header.
    later = eth(IP(**V4, proto=17, frag=100) / PAYLOAD)
    damaged = corrupt(later, 14, 8, 0x01, fix_checksums=True)  # the TTL
    assert 14 + 8 in changed(later, damaged) <= {14 + 8, 14 + 10, 14 + 11}
    assert changed(later, damaged) != {14 + 8}
    assert checksum(damaged[14:34]) == 0
    # Don't Fragment alone is not a fragment: L4 is fixed.
    assert bad_checksums(corrupt(udp4(flags="DF"), 14, 30, 0x42, fix_checksums=True)) == set()


@pytest.mark.parametrize(
    ("frame", "at"),
    [
        (eth(IPv6(**V6) / IPv6ExtHdrFragment(m=1) / UDP() / PAYLOAD), 60),
        (eth(IPv6(**V6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(m=1) / UDP() / PAYLOAD), 70),
        # Authentication header (51): not one fix() looks past.
        (eth(IPv6(**V6, nh=51) / Raw(bytes([17, 2]) + bytes(14)) / UDP() / PAYLOAD), 70),
        # A routing header of a type it does not know (3), segments left: no final destination.
        (eth(IPv6(**V6, nh=43) / Raw(bytes([17, 2, 3, 1, 0, 0, 0, 0]) + bytes(16)) / UDP()), 70),
        # A hop-by-hop header longer than the packet.
        (eth(IPv6(**V6, nh=0) / Raw(bytes([17, 200]) + bytes(6)) / UDP() / PAYLOAD), 60),
        (eth(IPv6(**V6, nh=1) / ICMP() / PAYLOAD), 50),  # ICMP for IPv4 in IPv6
    ],
    ids=["fragment", "fragment behind hop-by-hop", "AH", "unknown routing", "cut short", "ICMP"],
)
def test_fixing_leaves_ipv6_transport_it_cannot_find(frame: bytes, at: int) -> None:
    damaged = corrupt(frame, 14, at, 0x01, fix_checksums=True)
    assert changed(frame, damaged) == {14 + at}


def test_icmpv4_in_a_fragment_and_icmpv6_in_ipv4_are_not_fixed() -> None:
    first = eth(IP(**V4, flags="MF") / ICMP() / PAYLOAD)
    damaged = corrupt(first, 14, 30, 0x42, fix_checksums=True)
    assert changed(first, damaged) == {14 + 30}  # the IP header does not cover the payload
    assert bad_checksums(damaged) == {"ICMP"}
    icmpv6 = eth(IP(**V4, proto=58) / ICMPv6EchoRequest(data=PAYLOAD))
    damaged = corrupt(icmpv6, 14, 30, 0x42, fix_checksums=True)
    assert changed(icmpv6, damaged) == {14 + 30}


def test_fixing_leaves_what_it_cannot_fix() -> None:
    # A non-IP version nibble after the flip: nothing is recomputed.
    damaged = corrupt(udp4(), 14, 0, 0x30, fix_checksums=True)  # version 4 -> 7
    assert changed(udp4(), damaged) == {14}
