"""The Internet checksum and the IPv4, IPv6, UDP and ICMP headers: parse and build.

One place for the bytes every other module reads: the tunnel (per packet), the impairment
wire (per frame), captures, probes, evidence and the grader. Standard library only, and
fast where it runs per packet: `inner_addresses` and `checksum` build no header objects.

Parsed headers are frozen dataclasses that pack back to the bytes they came from
(`parse_ipv4(h.pack() + payload) == h`), so tests build packets with the same types.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from vpnsim.errors import PacketError

ETH_HEADER = 14  # destination MAC, source MAC, ethertype
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
VLAN_TAGS = (0x8100, 0x88A8)

IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ICMPV6 = 58
IPPROTO_DSTOPTS = 60
# IPv6 extension headers sized (hdr ext len + 1) * 8: hop-by-hop, routing, destination options.
IPV6_EXTENSIONS = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS)

IPV4_HEADER = 20  # without options
IPV6_HEADER = 40
UDP_HEADER = 8
ICMP_HEADER = 8  # type, code, checksum, and (for echo) identifier and sequence number

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACHABLE = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBHHH")


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The Internet checksum (RFC 1071) of `data`, to be packed big-endian ("!H").

    The one's complement sum of 16-bit words is the number `data` spells, modulo 0xFFFF
    (2**16 = 1 mod 0xFFFF), except that a non-zero sum is never 0 but 0xFFFF. One bignum
    division instead of a Python loop: four times faster on a 1500-byte packet."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF


class MalformedPacket(PacketError, ValueError):
    """Bytes that are not a whole IPv4 or IPv6 packet."""


_ADDRESSES: dict[bytes, IPAddress] = {}  # the tunnel's few inner addresses, made once
ADDRESS_CACHE_SIZE = 4096  # bounded: any peer may send any address


def _address(raw: bytes) -> IPAddress:
    found = _ADDRESSES.get(raw)
    if found is None:
        if len(_ADDRESSES) >= ADDRESS_CACHE_SIZE:
            _ADDRESSES.clear()
        found = _ADDRESSES[raw] = ipaddress.ip_address(raw)
    return found


def inner_addresses(packet: bytes) -> tuple[IPAddress, IPAddress]:
    """Source and destination of an IP packet; raises MalformedPacket if it is not one.

    Checks what a router would before forwarding: version, header length, and that the
    length field does not claim more bytes than arrived. The tunnel calls this per packet.
    """
    if not packet:
        raise MalformedPacket("empty")
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        if ihl < IPV4_HEADER or len(packet) < ihl:
            raise MalformedPacket(f"IPv4 header length {ihl} in {len(packet)} bytes")
        total = int.from_bytes(packet[2:4], "big")
        if total < ihl or total > len(packet):
            raise MalformedPacket(f"IPv4 total length {total} in {len(packet)} bytes")
        return _address(packet[12:16]), _address(packet[16:20])
    if version == 6:
        if len(packet) < IPV6_HEADER:
            raise MalformedPacket(f"IPv6 header in {len(packet)} bytes")
        if IPV6_HEADER + int.from_bytes(packet[4:6], "big") > len(packet):
            raise MalformedPacket("IPv6 payload length beyond the datagram")
        return _address(packet[8:24]), _address(packet[24:40])
    raise MalformedPacket(f"IP version {version}")


@dataclass(frozen=True, slots=True)
class IPv4Header:
    """An IPv4 header as it stands in the packet (addresses as dotted quads)."""

    src: str
    dst: str
    proto: int
    total_length: int  # how long the packet says it is, header included
    ttl: int = 64
    ident: int = 0
    flags_fragment: int = 0  # the 16 bits: reserved, DF, MF, then the offset in 8-byte units
    tos: int = 0
    checksum: int = 0
    options: bytes = b""

    @property
    def header_length(self) -> int:
        return IPV4_HEADER + len(self.options)

    @property
    def more_fragments(self) -> bool:
        return bool(self.flags_fragment & 0x2000)

    @property
    def dont_fragment(self) -> bool:
        return bool(self.flags_fragment & 0x4000)

    @property
    def offset(self) -> int:
        """The fragment offset, in bytes."""
        return (self.flags_fragment & 0x1FFF) * 8

    def pack(self) -> bytes:
        """The header's bytes, every field as it is (see `ipv4_header` for a correct one)."""
        fixed = _IPV4.pack(
            0x40 | self.header_length // 4,
            self.tos,
            self.total_length,
            self.ident,
            self.flags_fragment,
            self.ttl,
            self.proto,
            self.checksum,
            socket.inet_aton(self.src),
            socket.inet_aton(self.dst),
        )
        return fixed + self.options


def ipv4_header(
    src: str,
    dst: str,
    proto: int,
    payload_length: int,
    *,
    ttl: int = 64,
    ident: int = 0,
    flags_fragment: int = 0,
    tos: int = 0,
    options: bytes = b"",
) -> IPv4Header:
    """A correct header for `payload_length` bytes: total length and checksum filled in.
    `options` must be a multiple of 4 bytes, at most 40."""
    if len(options) % 4 or len(options) > 40:
        raise ValueError(f"IPv4 options of {len(options)} bytes: a multiple of 4, at most 40")
    total = IPV4_HEADER + len(options) + payload_length
    if total > 0xFFFF:
        raise ValueError(f"IPv4 packet of {total} bytes: at most 65535")
    header = IPv4Header(src, dst, proto, total, ttl, ident, flags_fragment, tos, 0, options)
    return _replace_checksum(header, checksum(header.pack()))


def _replace_checksum(header: IPv4Header, value: int) -> IPv4Header:
    return IPv4Header(
        header.src,
        header.dst,
        header.proto,
        header.total_length,
        header.ttl,
        header.ident,
        header.flags_fragment,
        header.tos,
        value,
        header.options,
    )


def parse_ipv4(packet: bytes | bytearray) -> IPv4Header | None:
    """The IPv4 header at the start of `packet`; None if it is not one (another version, a
    header length under 20, or fewer bytes than the header)."""
    if len(packet) < IPV4_HEADER or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < IPV4_HEADER or len(packet) < ihl:
        return None
    _, tos, total, ident, frag, ttl, proto, csum, src, dst = _IPV4.unpack_from(packet)
    options = bytes(packet[IPV4_HEADER:ihl])
    src, dst = socket.inet_ntoa(src), socket.inet_ntoa(dst)
    return IPv4Header(src, dst, proto, total, ttl, ident, frag, tos, csum, options)


@dataclass(frozen=True, slots=True)
class IPv6Header:
    """An IPv6 header (addresses as `inet_ntop` writes them)."""

    src: str
    dst: str
    next_header: int
    payload_length: int  # what follows the 40-byte header, extension headers included
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0

    def pack(self) -> bytes:
        first = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        return _IPV6.pack(
            first,
            self.payload_length,
            self.next_header,
            self.hop_limit,
            socket.inet_pton(socket.AF_INET6, self.src),
            socket.inet_pton(socket.AF_INET6, self.dst),
        )


def parse_ipv6(packet: bytes | bytearray) -> IPv6Header | None:
    """The IPv6 header at the start of `packet`; None if it is not one."""
    if len(packet) < IPV6_HEADER or packet[0] >> 4 != 6:
        return None
    first, length, next_header, hop_limit, src, dst = _IPV6.unpack_from(packet)
    return IPv6Header(
        socket.inet_ntop(socket.AF_INET6, src),
        socket.inet_ntop(socket.AF_INET6, dst),
        next_header,
        length,
        hop_limit,
        (first >> 20) & 0xFF,
        first & 0xFFFFF,
    )


def ipv6_upper_layer(packet: bytes | bytearray) -> tuple[int, int, bool] | None:
    """(next header, offset, first fragment) of the upper-layer header of an IPv6 packet,
    past hop-by-hop, routing, destination options and fragment headers; None if the packet
    ends inside its headers. A non-first fragment names its protocol but carries no header
    of it at `offset` (the data there continues the first fragment's)."""
    if len(packet) < IPV6_HEADER or packet[0] >> 4 != 6:
        return None
    next_header, offset, first = packet[6], IPV6_HEADER, True
    while next_header in IPV6_EXTENSIONS or next_header == IPPROTO_FRAGMENT:
        if len(packet) < offset + 8:
            return None
        if next_header == IPPROTO_FRAGMENT:
            first = first and struct.unpack_from("!H", packet, offset + 2)[0] >> 3 == 0
            next_header, offset = packet[offset], offset + 8
        else:
            next_header, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
    return next_header, offset, first


@dataclass(frozen=True, slots=True)
class UdpHeader:
    sport: int
    dport: int
    length: int  # header included
    checksum: int = 0  # 0: none (IPv4 only)

    def pack(self) -> bytes:
        return _UDP.pack(self.sport, self.dport, self.length, self.checksum)


def parse_udp_header(data: bytes | bytearray, offset: int = 0) -> UdpHeader | None:
    """The UDP header at `offset`; None if `data` ends before it does."""
    if len(data) < offset + UDP_HEADER:
        return None
    return UdpHeader(*_UDP.unpack_from(data, offset))


@dataclass(frozen=True, slots=True)
class IcmpHeader:
    """An ICMP (or ICMPv6) header; `ident` and `seq` are the echo's, else the 4 bytes after
    the checksum (a Packet Too Big's MTU is `ident << 16 | seq`)."""

    type: int
    code: int
    checksum: int = 0
    ident: int = 0
    seq: int = 0

    def pack(self) -> bytes:
        return _ICMP.pack(self.type, self.code, self.checksum, self.ident, self.seq)


def parse_icmp(data: bytes | bytearray, offset: int = 0) -> IcmpHeader | None:
    """The ICMP header at `offset`; None if `data` ends before it does."""
    if len(data) < offset + ICMP_HEADER:
        return None
    return IcmpHeader(*_ICMP.unpack_from(data, offset))


def icmp_echo(kind: int, ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMPv4 echo request or reply (`kind`) with its checksum."""
    message = IcmpHeader(kind, 0, 0, ident, seq).pack() + payload
    value = checksum(message)
    return message[:2] + value.to_bytes(2, "big") + message[4:]


def quoted_icmp(packet: bytes | bytearray, header_length: int) -> IcmpHeader | None:
    """The ICMP header of the IPv4 packet an ICMPv4 error quotes (the error's own ICMP header
    at `header_length`; the quote after it): None if the quote is not of an ICMP packet or
    stops short of its ICMP header."""
    quoted = header_length + ICMP_HEADER
    if len(packet) < quoted + IPV4_HEADER + ICMP_HEADER or packet[quoted + 9] != IPPROTO_ICMP:
        return None
    return parse_icmp(packet, quoted + (packet[quoted] & 0x0F) * 4)
