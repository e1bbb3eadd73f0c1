"""Reading captured frames for the grader: IPv4 summaries, tunneled packets inside UDP."""

from __future__ import annotations

import pytest
from scapy.all import (
    ARP,
    ICMP,
    IP,
    TCP,
    UDP,
    Ether,
    IPOption_EOL,
    IPOption_NOP,
    IPv6,
    Raw,
    fragment,
)

from vpnsim.grade import packets
from vpnsim.grade.packets import (
    ECHO_REPLY,
    ECHO_REQUEST,
    IpSummary,
    Tunneled,
    frame_ip,
    ip_summary,
    plain,
    tunneled,
)
from vpnsim.traffic.capture import LINKTYPE_ETHERNET, LINKTYPE_RAW, Frame, UdpDatagram

U, SERVER, V, CLIENT_TUN = "10.9.0.5", "10.9.0.11", "192.168.60.5", "192.168.53.99"
GARBAGE = b"\x00vpnsim: this datagram is not an IP packet \xff\xfe"


def _ping(src: str = CLIENT_TUN, dst: str = V, kind: int = 8, size: int = 56) -> bytes:
    return bytes(IP(src=src, dst=dst) / ICMP(type=kind, id=7, seq=1) / Raw(b"p" * size))


def _eth(packet: object) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / packet)


def _udp_frame(
    inner: bytes, src: str = U, dst: str = SERVER, sport: int = 40000, dport: int = 9090
) -> bytes:
    return _eth(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(inner))


def _frame(data: bytes, t: float = 1.0, outgoing: bool = False) -> Frame:
    return Frame(t, data, outgoing)


def test_protocol_numbers() -> None:
    assert (packets.ICMP, packets.TCP, packets.UDP) == (1, 6, 17)
    assert (ECHO_REQUEST, ECHO_REPLY) == (8, 0)


def test_echo_request_summary() -> None:
    summary = ip_summary(_ping())
    assert summary == IpSummary(
        src=CLIENT_TUN,
        dst=V,
        proto=1,
        total_length=84,
        captured=84,
        icmp_type=8,
        more_fragments=False,
        offset=0,
    )
    assert not summary.cut
    assert summary.is_echo(ECHO_REQUEST)
    assert summary.is_echo(ECHO_REQUEST, dst=V)
    assert summary.is_echo(ECHO_REQUEST, dst=V, src=CLIENT_TUN)
    assert not summary.is_echo(ECHO_REQUEST, dst=U)
    assert not summary.is_echo(ECHO_REQUEST, src=V)
    assert not summary.is_echo(ECHO_REPLY)


def test_echo_reply_summary() -> None:
    summary = ip_summary(_ping(src=V, dst=CLIENT_TUN, kind=0, size=1400))
    assert summary is not None
    assert (summary.src, summary.dst, summary.proto) == (V, CLIENT_TUN, 1)
    assert summary.icmp_type == 0
    assert summary.total_length == summary.captured == 1428
    assert summary.is_echo(ECHO_REPLY, src=V, dst=CLIENT_TUN)
    assert not summary.is_echo(ECHO_REQUEST)


def test_icmp_type_is_read_after_ip_options() -> None:
    options = [IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()]
    packet = bytes(IP(src=V, dst=CLIENT_TUN, options=options) / ICMP(type=0) / b"ab")
    assert packet[0] == 0x46  # a 24-byte header
    summary = ip_summary(packet)
    assert summary is not None
    assert summary.icmp_type == 0
    assert summary.total_length == summary.captured == 24 + 8 + 2


def test_fragments() -> None:
    big = IP(src=CLIENT_TUN, dst=V, id=99) / ICMP(type=8) / Raw(b"y" * 3000)
    parts = [ip_summary(bytes(f)) for f in fragment(big, fragsize=1480)]
    assert [(p.offset, p.more_fragments, p.icmp_type, p.total_length) for p in parts] == [
        (0, True, 8, 1500),
        (1480, True, None, 1500),
        (2960, False, None, 68),
    ]
    assert all(p.proto == 1 and not p.cut for p in parts)
    assert parts[0].is_echo(ECHO_REQUEST, dst=V)
    assert not parts[1].is_echo(ECHO_REQUEST)
    assert not parts[2].is_echo(ECHO_REQUEST)


def test_non_first_fragment_whose_data_looks_like_an_echo_request() -> None:
    # The fragment's data starts with 8 (like an ICMP echo request), but it is not a header.
    packet = bytes(IP(src=CLIENT_TUN, dst=V, proto=1, frag=100, flags="MF") / Raw(b"\x08" * 40))
    summary = ip_summary(packet)
    assert summary is not None
    assert (summary.offset, summary.more_fragments, summary.icmp_type) == (800, True, None)
    assert not summary.is_echo(ECHO_REQUEST)


def test_cut_when_bytes_are_missing() -> None:
    packet = _ping(size=1400)
    summary = ip_summary(packet[:1000])
    assert summary is not None
    assert (summary.total_length, summary.captured) == (1428, 1000)
    assert summary.cut
    assert summary.icmp_type == 8
    assert summary.is_echo(ECHO_REQUEST, dst=V)  # still recognisable, but cut


def test_not_cut_with_trailing_bytes() -> None:
    summary = ip_summary(_ping() + b"\x00" * 6)  # Ethernet padding after the packet
    assert summary is not None
    assert (summary.total_length, summary.captured) == (84, 90)
    assert not summary.cut


def test_icmp_header_missing() -> None:
    summary = ip_summary(_ping()[:20])
    assert summary is not None
    assert summary.proto == 1
    assert summary.icmp_type is None
    assert summary.cut


@pytest.mark.parametrize(
    ("layer", "proto"),
    [(TCP(sport=1, dport=23, flags="S"), 6), (UDP(sport=1, dport=53), 17)],
)
def test_other_protocols_have_no_icmp_type(layer: object, proto: int) -> None:
    summary = ip_summary(bytes(IP(src=U, dst=V) / layer / b"data"))
    assert summary is not None
    assert summary.proto == proto
    assert summary.icmp_type is None
    assert not summary.is_echo(ECHO_REQUEST)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _ping()[:19],
        bytes(IPv6(src="fd00::1", dst="fd00::2") / ICMP()),
        GARBAGE,
        b"\x60" + bytes(39),
    ],
)
def test_non_ipv4_is_none(data: bytes) -> None:
    assert ip_summary(data) is None


def test_frame_ip_ethernet() -> None:
    summary = frame_ip(_frame(_eth(IP(_ping()))))
    assert summary == ip_summary(_ping())


@pytest.mark.parametrize(
    "data",
    [
        _eth(ARP(psrc=U, pdst=SERVER)),
        _eth(IPv6(src="fd00::1", dst="fd00::2")),
        _ping(),  # a raw IP packet read as Ethernet
        b"\x02\x00\x00\x00\x00\x01" * 2,  # shorter than an Ethernet header
        b"",
    ],
)
def test_frame_ip_ethernet_without_ipv4(data: bytes) -> None:
    assert frame_ip(_frame(data)) is None


def test_frame_ip_raw_linktype() -> None:
    assert frame_ip(_frame(_ping()), LINKTYPE_RAW) == ip_summary(_ping())
    assert frame_ip(_frame(_eth(IP(_ping()))), LINKTYPE_RAW) is None


def test_tunneled_extracts_the_inner_packet() -> None:
    inner = _ping()
    found = tunneled([_frame(_udp_frame(inner), outgoing=True)])
    assert found == [
        Tunneled(
            outer=UdpDatagram(
                src=U, sport=40000, dst=SERVER, dport=9090, length=len(inner), payload=inner
            ),
            inner=ip_summary(inner),
        )
    ]
    assert found[0].inner is not None
    assert found[0].inner.is_echo(ECHO_REQUEST, dst=V)


def test_tunneled_filters_by_dst_and_src() -> None:
    request = _ping()
    reply = _ping(src=V, dst=CLIENT_TUN, kind=0)
    frames = [
        _frame(_udp_frame(request), 1.0),  # U -> server
        _frame(_udp_frame(reply, src=SERVER, dst=U, sport=9090, dport=40000), 2.0),
        _frame(_udp_frame(request, src="10.9.0.6", dst=SERVER, dport=9091), 3.0),
        _frame(_udp_frame(request, dst="10.9.0.99"), 4.0),
    ]
    to_server = tunneled(frames, dst=SERVER)
    assert [(t.outer.src, t.outer.dport) for t in to_server] == [(U, 9090), ("10.9.0.6", 9091)]
    from_server = tunneled(frames, src=SERVER)
    assert len(from_server) == 1
    assert from_server[0].outer.dport == 40000
    assert from_server[0].inner == ip_summary(reply)
    assert [t.outer.dst for t in tunneled(frames, src=U, dst=SERVER)] == [SERVER]
    assert len(tunneled(frames)) == 4  # no filter: every UDP datagram, any port
    assert tunneled(frames, dst="10.9.0.200") == []


@pytest.mark.parametrize("payload", [GARBAGE, b"", b"hello", bytes(IPv6() / ICMP())])
def test_tunneled_inner_none_for_garbage(payload: bytes) -> None:
    found = tunneled([_frame(_udp_frame(payload))], dst=SERVER)
    assert len(found) == 1
    assert found[0].inner is None
    assert found[0].outer.payload == payload
    assert found[0].outer.length == len(payload)


def test_tunneled_skips_what_is_not_udp() -> None:
    frames = [
        _frame(_eth(IP(src=U, dst=SERVER) / TCP(sport=1, dport=9090))),
        _frame(_eth(IP(src=U, dst=SERVER) / ICMP())),
        _frame(_eth(ARP(psrc=U, pdst=SERVER))),
        _frame(b""),
    ]
    assert tunneled(frames) == []


def test_tunneled_skips_non_first_fragments_of_the_outer_datagram() -> None:
    outer = IP(src=U, dst=SERVER, id=5) / UDP(sport=40000, dport=9090) / Raw(_ping(size=2000))
    frames = [_frame(_eth(f)) for f in fragment(outer, fragsize=1480)]
    found = tunneled(frames, dst=SERVER)
    assert len(found) == 1  # only the first fragment carries the UDP header
    assert found[0].outer.length == 2028


def test_tunneled_accepts_any_iterable() -> None:
    frames = (_frame(_udp_frame(_ping())) for _ in range(3))
    assert len(tunneled(frames, dst=SERVER)) == 3


def test_plain() -> None:
    request = _ping()
    frames = [
        _frame(_eth(IP(request)), 1.0),
        _frame(_eth(ARP(psrc=U, pdst=SERVER)), 2.0),
        _frame(_udp_frame(request), 3.0),
        _frame(_eth(IPv6(src="fd00::1", dst="fd00::2")), 4.0),
        _frame(_eth(IP(src=V, dst=U) / TCP(sport=23, dport=5000)), 5.0),
    ]
    found = plain(frames)
    assert [(ip.src, ip.dst, ip.proto) for ip in found] == [
        (CLIENT_TUN, V, 1),
        (U, SERVER, 17),
        (V, U, 6),
    ]
    assert found[0] == ip_summary(request)
    assert plain(frames, LINKTYPE_ETHERNET) == found


def test_plain_raw_linktype() -> None:
    frames = [_frame(_ping()), _frame(GARBAGE), _frame(_ping(src=V, dst=CLIENT_TUN, kind=0))]
    assert [ip.icmp_type for ip in plain(frames, LINKTYPE_RAW)] == [8, 0]
    assert plain([]) == []
