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


# -- the grader's own probes, wherever a capture saw them -------------------------------------

PROBE = b"vpnsim 0a1b2c3d0001 task3, try 1 " * 2  # 66 bytes: a unique prefix, then more


def _echo_packet(
    payload: bytes = PROBE, kind: int = 8, src: str = CLIENT_TUN, dst: str = V
) -> bytes:
    return bytes(IP(src=src, dst=dst, id=9) / ICMP(type=kind, id=7, seq=1) / Raw(payload))


def test_echoes_in_clear_and_tunneled() -> None:
    request, reply = _echo_packet(), _echo_packet(kind=0, src=V, dst=CLIENT_TUN)
    frames = [
        _frame(_eth(IP(request)), 1.0, outgoing=True),
        _frame(_udp_frame(request), 2.0, outgoing=True),
        _frame(_udp_frame(reply, src=SERVER, dst=U, sport=9090, dport=40000), 3.0),
        _frame(_eth(ARP(psrc=U, pdst=SERVER)), 4.0),
        _frame(_udp_frame(GARBAGE), 5.0),
    ]
    found = packets.echoes(frames)
    assert [(e.kind, e.src, e.dst, e.outgoing, e.time) for e in found] == [
        (ECHO_REQUEST, CLIENT_TUN, V, True, 1.0),
        (ECHO_REQUEST, CLIENT_TUN, V, True, 2.0),
        (ECHO_REPLY, V, CLIENT_TUN, False, 3.0),
    ]
    assert found[0].outer is None
    assert found[1].outer == UdpDatagram(U, 40000, SERVER, 9090, len(request), request)
    assert found[2].outer is not None and found[2].outer.sport == 9090
    assert all(e.data == PROBE and e.carries(PROBE) for e in found)


def test_echoes_on_a_tun_capture() -> None:
    found = packets.echoes([_frame(_echo_packet(), 1.0, outgoing=True)], LINKTYPE_RAW)
    assert [(e.kind, e.outer, e.data) for e in found] == [(ECHO_REQUEST, None, PROBE)]


def test_echo_carries_its_own_payload_only() -> None:
    (echo,) = packets.echoes([_frame(_eth(IP(_echo_packet())))])
    assert echo.carries(PROBE)
    assert not echo.carries(PROBE.replace(b"0001", b"0002"))  # another probe's
    assert not echo.carries(PROBE[:-1] + b"!")  # every byte the frame holds must match
    assert packets.MARK == 24


def test_echo_of_a_first_fragment_or_a_cut_packet_carries_its_start() -> None:
    big = b"vpnsim 0a1b2c3d0007 large 3000 " * 100  # 3100 bytes
    first, *rest = fragment(IP(src=CLIENT_TUN, dst=V) / ICMP(id=7, seq=1) / Raw(big), 1480)
    found = packets.echoes([_frame(_eth(first)), *(_frame(_eth(f)) for f in rest)])
    assert len(found) == 1  # later fragments hold no ICMP header
    assert found[0].data == big[: 1480 - 8]
    assert found[0].carries(big)
    cut = _echo_packet(big)[:1000]  # a client reading 1000 bytes of it
    (inside,) = packets.echoes([_frame(_udp_frame(cut))])
    assert inside.data == big[: 1000 - 28]
    assert inside.carries(big)
    too_short = _echo_packet(big)[: 28 + 10]  # ten payload bytes: less than MARK
    assert packets.echoes([_frame(_udp_frame(too_short))])[0].carries(big) is False


def test_echoes_skip_other_icmp_and_other_protocols() -> None:
    frames = [
        _frame(_eth(IP(src=U, dst=V) / ICMP(type=3, code=1) / Raw(_echo_packet()[:28]))),
        _frame(_eth(IP(src=U, dst=V) / TCP(sport=1, dport=7) / Raw(PROBE))),
        _frame(_eth(IP(src=U, dst=V) / UDP(sport=1, dport=7) / Raw(PROBE))),
        _frame(_eth(IP(src=U, dst=V, proto=1) / Raw(b"\x08\x00"))),  # no room for the header
    ]
    assert packets.echoes(frames) == []


def test_segments_in_clear_and_tunneled() -> None:
    data = b"vpnsim 0a1b2c3d0003 task5 tcp " + bytes(range(200, 256))
    segment = bytes(IP(src=CLIENT_TUN, dst=V) / TCP(sport=40001, dport=7, flags="PA") / Raw(data))
    ack = bytes(IP(src=V, dst=CLIENT_TUN) / TCP(sport=7, dport=40001, flags="A"))
    frames = [
        _frame(_eth(IP(segment)), 1.0),
        _frame(_udp_frame(segment), 2.0, outgoing=True),
        _frame(_eth(IP(ack)), 3.0, outgoing=True),
        _frame(_eth(IP(_echo_packet())), 4.0),
    ]
    assert packets.segments(frames) == [
        packets.Segment(CLIENT_TUN, V, 40001, 7, data, False, False),
        packets.Segment(CLIENT_TUN, V, 40001, 7, data, True, True),
        packets.Segment(V, CLIENT_TUN, 7, 40001, b"", True, False),
    ]


def test_in_clear_is_what_a_host_sent_outside_udp() -> None:
    frames = [
        _frame(_eth(IP(_echo_packet(src=U))), 1.0, outgoing=True),  # sent, in clear
        _frame(_udp_frame(_echo_packet()), 2.0, outgoing=True),  # tunneled
        _frame(_eth(IP(_echo_packet(src=V, dst=U, kind=0))), 3.0),  # received
        _frame(_eth(IP(src=U, dst=SERVER) / ICMP()), 4.0, outgoing=True),  # elsewhere
    ]
    found = packets.in_clear(frames, "192.168.60.")
    assert [(ip.src, ip.dst, ip.icmp_type) for ip in found] == [(U, V, 8)]


def test_echo_answer_reply_and_errors() -> None:
    reply = bytes(IP(src=V, dst=U) / ICMP(type=0, id=77, seq=1) / Raw(b"payload"))
    assert packets.echo_answer(reply, 77, 1) == (ECHO_REPLY, 0, b"payload")
    assert packets.echo_answer(reply, 78, 1) is None  # someone else's ping
    assert packets.echo_answer(reply, 77, 2) is None
    request = bytes(IP(src=U, dst=V) / ICMP(type=8, id=77, seq=1) / Raw(b"payload"))
    error = bytes(IP(src=SERVER, dst=U) / ICMP(type=3, code=1) / Raw(request[:28]))
    assert packets.echo_answer(error, 77, 1) == (3, 1, b"")
    assert packets.echo_answer(error, 76, 1) is None
    assert packets.echo_answer(b"\x45" + b"\x00" * 10, 77, 1) is None


# A classic BPF interpreter, enough for TUNNEL_FILTER: what the kernel would keep.
def _run_bpf(program: bytes, frame: bytes) -> int:
    import struct

    code = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a = x = pc = 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op in (0x28, 0x30, 0x50):  # ldh [k], ldb [k], ldb [x+k]
            at = k + (x if op == 0x50 else 0)
            size = 2 if op == 0x28 else 1
            if at + size > len(frame):
                return 0  # an out-of-bounds load drops the frame
            a = int.from_bytes(frame[at : at + size], "big")
        elif op == 0xB1:  # ldxb 4*([k]&0xf)
            if k >= len(frame):
                return 0
            x = (frame[k] & 0xF) * 4
        elif op == 0x15:  # jeq
            pc += jt if a == k else jf
        elif op == 0x45:  # jset
            pc += jt if a & k else jf
        elif op == 0x06:  # ret
            return k
        else:
            raise AssertionError(f"unknown opcode {op:#x}")


@pytest.mark.parametrize(
    ("frame", "kept"),
    [
        (_udp_frame(_ping()), True),  # a tunneled ping
        (_udp_frame(bytes(IP(src=CLIENT_TUN, dst=V) / TCP(dport=7) / Raw(b"x"))), True),
        (_udp_frame(b"\xde\xad\xbe\xef" * 350), False),  # hostile_flood's junk
        (_udp_frame(GARBAGE), False),  # the robust task's datagram
        (_udp_frame(b""), False),
        (_udp_frame(bytes(IP(src=CLIENT_TUN, dst=V) / UDP(dport=53))), False),  # UDP in UDP
        (_udp_frame(bytes(IPv6() / ICMP())), False),
        (
            _udp_frame(bytes(IP(src=CLIENT_TUN, dst=V, options=[IPOption_NOP()] * 4) / ICMP())),
            False,
        ),
        (_eth(IP(_ping())), True),  # in clear
        (_eth(IP(src=U, dst=V) / TCP(dport=7)), True),
        (_eth(ARP(psrc=U, pdst=SERVER)), True),
        (_eth(IPv6(src="fd00::1", dst="fd00::2") / ICMP()), True),
        (_udp_frame(_ping(), src=SERVER, dst="10.9.0.255"), True),
    ],
)
def test_tunnel_filter_keeps_probes_and_drops_junk_datagrams(frame: bytes, kept: bool) -> None:
    assert bool(_run_bpf(packets.bpf_program(), frame)) is kept
    if kept:
        assert _run_bpf(packets.bpf_program(), frame) == packets.KEEP_SNAP


def test_tunnel_filter_keeps_later_fragments_of_a_tunneled_datagram() -> None:
    outer = IP(src=U, dst=SERVER, id=5) / UDP(sport=40000, dport=9090) / Raw(_ping(size=2000))
    first, second = fragment(outer, fragsize=1480)
    assert _run_bpf(packets.bpf_program(), _eth(first)) == packets.KEEP_SNAP
    assert _run_bpf(packets.bpf_program(), _eth(second)) == packets.KEEP_SNAP
    junk = IP(src=U, dst=SERVER, id=6) / UDP(sport=40000, dport=9090) / Raw(b"\xde" * 2000)
    first, second = fragment(junk, fragsize=1480)
    assert _run_bpf(packets.bpf_program(), _eth(first)) == 0
    assert _run_bpf(packets.bpf_program(), _eth(second)) == packets.KEEP_SNAP  # cannot tell


def test_bpf_program_bytes() -> None:
    program = packets.bpf_program()
    assert len(program) == 8 * len(packets.TUNNEL_FILTER) == 8 * 14
    assert program[:8] == bytes([0x28, 0, 0, 0, 12, 0, 0, 0])  # ldh [12], little-endian k
    assert program[-8:] == bytes([0x06, 0, 0, 0, 0, 0, 0, 0])  # ret #0: drop
