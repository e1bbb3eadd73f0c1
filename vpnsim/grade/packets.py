"""What a submission sent, read from captured frames: tunneled packets inside UDP, and the
packets on the links around the server. Pure functions; the headers are `vpnsim.packets`'."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from vpnsim.packets import (
    ETH_P_IP,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_HEADER,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    parse_icmp,
    parse_ipv4,
    quoted_icmp,
)
from vpnsim.traffic.capture import (
    LINKTYPE_ETHERNET,
    Frame,
    UdpDatagram,
    ipv4_packet,
    parse_udp,
)

ICMP, TCP, UDP = IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
ECHO_REQUEST, ECHO_REPLY = ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY


@dataclass(frozen=True)
class IpSummary:
    src: str
    dst: str
    proto: int
    total_length: int  # from the header: how long the packet says it is
    captured: int  # how many of its bytes are there
    icmp_type: int | None
    more_fragments: bool
    offset: int  # fragment offset, in bytes
    header_length: int = 20

    @property
    def cut(self) -> bool:
        """Shorter than its header says: someone truncated it."""
        return self.captured < self.total_length

    def is_echo(self, kind: int, dst: str | None = None, src: str | None = None) -> bool:
        return (
            self.proto == ICMP
            and self.offset == 0
            and self.icmp_type == kind
            and (dst is None or self.dst == dst)
            and (src is None or self.src == src)
        )


def ip_summary(packet: bytes) -> IpSummary | None:
    """The IPv4 packet at the start of `packet`, or None if it is not one."""
    ip = parse_ipv4(packet)
    if ip is None:
        return None
    header = ip.header_length
    first_icmp = ip.proto == ICMP and ip.offset == 0 and len(packet) > header
    return IpSummary(
        src=ip.src,
        dst=ip.dst,
        proto=ip.proto,
        total_length=ip.total_length,
        captured=len(packet),
        icmp_type=packet[header] if first_icmp else None,
        more_fragments=ip.more_fragments,
        offset=ip.offset,
        header_length=header,
    )


def frame_ip(frame: Frame, linktype: int = LINKTYPE_ETHERNET) -> IpSummary | None:
    """The IPv4 packet a captured frame carries (Ethernet or raw IP, as on a TUN)."""
    data = ipv4_packet(frame.data, linktype)
    return None if data is None else ip_summary(data)


@dataclass(frozen=True)
class Tunneled:
    """A UDP datagram seen on a link, and the IP packet inside it (None: not a packet)."""

    outer: UdpDatagram
    inner: IpSummary | None


def tunneled(
    frames: Iterable[Frame], *, dst: str | None = None, src: str | None = None
) -> list[Tunneled]:
    """UDP datagrams (any port) to `dst` / from `src`, with the IP packet each carries."""
    found = []
    for frame in frames:
        outer = parse_udp(frame.data)
        if outer is None or (dst and outer.dst != dst) or (src and outer.src != src):
            continue
        found.append(Tunneled(outer, ip_summary(outer.payload)))
    return found


def plain(frames: Iterable[Frame], linktype: int = LINKTYPE_ETHERNET) -> list[IpSummary]:
    """Every IPv4 packet among the frames."""
    return [ip for frame in frames if (ip := frame_ip(frame, linktype)) is not None]


# -- probes: the grader's own echoes and TCP bytes, wherever a capture saw them ------------------

MARK = 24  # payload bytes a frame must show to count as one probe's: its unique prefix


@dataclass(frozen=True)
class Echo:
    """An ICMP echo request or reply seen on a link, in clear or inside a UDP datagram."""

    kind: int  # ECHO_REQUEST or ECHO_REPLY
    src: str
    dst: str
    data: bytes  # the echo's payload as far as the frame holds it (a first fragment: its start)
    outgoing: bool  # sent by the host whose link it is (on a TUN: routed into it by the kernel)
    outer: UdpDatagram | None  # the datagram it was tunneled in; None: in clear
    time: float

    def carries(self, payload: bytes) -> bool:
        """Whether this is the echo of exactly `payload` (or, cut or fragmented, its start)."""
        shown = len(self.data)
        return shown >= min(len(payload), MARK) and payload[:shown] == self.data


def _echo_in(packet: bytes) -> tuple[IpSummary, bytes] | None:
    """The IPv4 echo (request or reply, first fragment) at the start of `packet`, and the
    echo payload it holds."""
    ip = ip_summary(packet)
    if ip is None or not (ip.is_echo(ECHO_REQUEST) or ip.is_echo(ECHO_REPLY)):
        return None
    header = ip.header_length
    if len(packet) < header + 8:
        return None
    end = min(len(packet), ip.total_length) if ip.total_length >= header + 8 else len(packet)
    return ip, packet[header + 8 : end]


def _ip_packets(
    frames: Iterable[Frame], linktype: int
) -> Iterator[tuple[Frame, UdpDatagram | None, bytes]]:
    """Each IPv4 frame, the UDP datagram it is (None: not one), and the packet to look in:
    the datagram's payload (a tunneled packet, the lab's format), else the frame's own."""
    for frame in frames:
        data = ipv4_packet(frame.data, linktype)
        if data is None:
            continue
        outer = parse_udp(frame.data, linktype)
        yield frame, outer, (outer.payload if outer is not None else data)


def echoes(frames: Iterable[Frame], linktype: int = LINKTYPE_ETHERNET) -> list[Echo]:
    """Every ICMP echo among the frames: in clear, or tunneled (an IPv4 packet at the start
    of a UDP datagram's payload, the lab's format)."""
    found = []
    for frame, outer, packet in _ip_packets(frames, linktype):
        inside = _echo_in(packet)
        if inside is None:
            continue
        ip, payload = inside
        kind = ECHO_REQUEST if ip.icmp_type == ECHO_REQUEST else ECHO_REPLY
        found.append(Echo(kind, ip.src, ip.dst, payload, frame.outgoing, outer, frame.time))
    return found


@dataclass(frozen=True)
class Segment:
    """A TCP segment seen on a link, in clear or inside a UDP datagram."""

    src: str
    dst: str
    sport: int
    dport: int
    data: bytes
    outgoing: bool
    tunneled: bool


def _segment_in(packet: bytes) -> tuple[IpSummary, int, int, bytes] | None:
    ip = ip_summary(packet)
    if ip is None or ip.proto != TCP or ip.offset != 0:
        return None
    header = ip.header_length
    if len(packet) < header + 20:
        return None
    sport, dport = struct.unpack_from("!HH", packet, header)
    offset = (packet[header + 12] >> 4) * 4
    end = min(len(packet), ip.total_length)
    return ip, sport, dport, packet[header + offset : end]


def segments(frames: Iterable[Frame], linktype: int = LINKTYPE_ETHERNET) -> list[Segment]:
    """Every TCP segment among the frames, in clear or tunneled."""
    found = []
    for frame, outer, packet in _ip_packets(frames, linktype):
        inside = _segment_in(packet)
        if inside is None:
            continue
        ip, sport, dport, payload = inside
        found.append(
            Segment(ip.src, ip.dst, sport, dport, payload, frame.outgoing, outer is not None)
        )
    return found


def in_clear(frames: Iterable[Frame], dst_prefix: str) -> list[IpSummary]:
    """Packets sent in clear (not inside UDP) to an address starting with `dst_prefix`."""
    found = []
    for frame in frames:
        if not frame.outgoing or parse_udp(frame.data) is not None:
            continue
        ip = frame_ip(frame)
        if ip is not None and ip.dst.startswith(dst_prefix):
            found.append(ip)
    return found


def echo_answer(packet: bytes, ident: int, seq: int) -> tuple[int, int, bytes] | None:
    """What an IPv4 packet read from a raw ICMP socket says about our echo (`ident`, `seq`):
    (ECHO_REPLY, 0, payload) for its reply, (type, code, b"") for an ICMP error quoting our
    request, else None."""
    ip = parse_ipv4(packet)
    icmp = None if ip is None else parse_icmp(packet, ip.header_length)
    if ip is None or icmp is None:
        return None
    if icmp.type == ECHO_REPLY:
        ours = (icmp.ident, icmp.seq) == (ident, seq)
        return (ECHO_REPLY, 0, packet[ip.header_length + ICMP_HEADER :]) if ours else None
    quoted = quoted_icmp(packet, ip.header_length)
    if quoted is None or (quoted.type, quoted.ident, quoted.seq) != (ECHO_REQUEST, ident, seq):
        return None
    return icmp.type, icmp.code, b""


# -- a BPF filter for the captures: no flood of junk datagrams reaches the grader -------------

_BPF_LDH, _BPF_LDB, _BPF_LDXB_MSH, _BPF_LDB_IND = 0x28, 0x30, 0xB1, 0x50
_BPF_JEQ, _BPF_JSET, _BPF_RET = 0x15, 0x45, 0x06
KEEP_SNAP = 0x40000  # a filter's "keep the whole frame"

# (code, jump if true, jump if false, k), jumps counted from the next instruction.
# Keeps every frame except UDP datagrams (first fragments) whose payload is not an IPv4
# packet (version 4, 20-byte header) carrying ICMP or TCP: the grader's probes are ICMP and
# TCP, tunneled or not, and a flood of junk to the tunnel port is kept out in the kernel.
TUNNEL_FILTER: tuple[tuple[int, int, int, int], ...] = (
    (_BPF_LDH, 0, 0, 12),  # 0: ethertype
    (_BPF_JEQ, 0, 10, ETH_P_IP),  # 1: not IPv4 -> keep
    (_BPF_LDB, 0, 0, 23),  # 2: IP protocol
    (_BPF_JEQ, 0, 8, UDP),  # 3: not UDP -> keep
    (_BPF_LDH, 0, 0, 20),  # 4: flags and fragment offset
    (_BPF_JSET, 6, 0, 0x1FFF),  # 5: a later fragment (no UDP header) -> keep
    (_BPF_LDXB_MSH, 0, 0, 14),  # 6: X = IP header length
    (_BPF_LDB_IND, 0, 0, 22),  # 7: the payload's first byte (14 + X + 8)
    (_BPF_JEQ, 0, 4, 0x45),  # 8: not an IPv4 header of 20 bytes -> drop
    (_BPF_LDB_IND, 0, 0, 31),  # 9: the inner packet's protocol
    (_BPF_JEQ, 1, 0, ICMP),  # 10: ICMP -> keep
    (_BPF_JEQ, 0, 1, TCP),  # 11: TCP -> keep, else drop
    (_BPF_RET, 0, 0, KEEP_SNAP),  # 12: keep
    (_BPF_RET, 0, 0, 0),  # 13: drop
)


def bpf_program(instructions: tuple[tuple[int, int, int, int], ...] = TUNNEL_FILTER) -> bytes:
    """The instructions as struct sock_filter[] (for SO_ATTACH_FILTER)."""
    return b"".join(struct.pack("=HBBI", *ins) for ins in instructions)
