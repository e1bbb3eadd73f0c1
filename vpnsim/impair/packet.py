"""Just enough of Ethernet, IPv4 and IPv6 for the wire: which frames to impair, where their IP
packet starts, and corruption with or without fixing the checksums afterwards.

Impairable frames are IP packets. ARP, IGMP and IPv6 neighbour discovery / MLD pass untouched and
take no place in a schedule: their timing depends on kernel timers, and counting them would
make "the same traffic" differ from run to run.
"""

from __future__ import annotations

import struct

from vpnsim.packets import (
    ETH_HEADER,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_HOPOPTS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IGMP,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXTENSIONS,  # fix() looks past these
    VLAN_TAGS,
    checksum,
)

# Where the checksum is in each upper-layer header fix() recomputes, by IP version.
CHECKSUM_AT = {
    4: {IPPROTO_UDP: 6, IPPROTO_TCP: 16, IPPROTO_ICMP: 2},
    6: {IPPROTO_UDP: 6, IPPROTO_TCP: 16, IPPROTO_ICMPV6: 2},
}
ICMPV6_CONTROL = range(130, 144)  # MLD (130-132, 143), router/neighbour discovery (133-137)


def ip_span(frame: bytes) -> tuple[int, int] | None:
    """(offset, length) of the impairable IP packet in an Ethernet frame, or None."""
    offset = ETH_HEADER
    if len(frame) < offset:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    while ethertype in VLAN_TAGS and len(frame) >= offset + 4:
        ethertype = struct.unpack_from("!H", frame, offset + 2)[0]
        offset += 4
    if ethertype == ETH_P_IP and len(frame) >= offset + 20:
        if frame[offset + 9] == IPPROTO_IGMP:  # the kernel's multicast chatter, as MLD is
            return None
        length = struct.unpack_from("!H", frame, offset + 2)[0]
        return offset, min(length, len(frame) - offset)
    if ethertype == ETH_P_IPV6 and len(frame) >= offset + 40:
        next_header, upper = frame[offset + 6], offset + 40
        if next_header == IPPROTO_HOPOPTS and len(frame) >= upper + 8:  # MLD's Router Alert
            next_header, upper = frame[upper], upper + (frame[upper + 1] + 1) * 8
        control = len(frame) > upper and frame[upper] in ICMPV6_CONTROL
        if next_header == IPPROTO_ICMPV6 and control:
            return None
        length = 40 + struct.unpack_from("!H", frame, offset + 4)[0]
        return offset, min(length, len(frame) - offset)
    return None


def corrupt(frame: bytes, ip_offset: int, at: int, xor: int, fix_checksums: bool) -> bytes:
    """`frame` with byte `at` of its IP packet XORed with `xor`; with `fix_checksums`, the
    checksums are recomputed (see `fix`), as if the damage came before them."""
    data = bytearray(frame)
    data[ip_offset + at] ^= xor
    if fix_checksums:
        fix(data, ip_offset)
    return bytes(data)


def fix(data: bytearray, ip_offset: int) -> None:
    """Recompute the checksums of the IP packet at `ip_offset`, in place, where it can.

    IPv4: the header checksum, then UDP's and TCP's (with the pseudo-header) or ICMP's (over
    the ICMP message alone), but not in a fragment, whose transport checksum covers bytes not
    in this frame; a UDP datagram without a checksum stays without one. IPv6: UDP's, TCP's or
    ICMPv6's (with the pseudo-header), found behind hop-by-hop, routing and destination options
    headers; none behind a fragment header or any other it does not know.
    """
    version = data[ip_offset] >> 4
    if version == 4:
        ihl = (data[ip_offset] & 0x0F) * 4
        if ihl < 20 or len(data) < ip_offset + ihl:
            return
        struct.pack_into("!H", data, ip_offset + 10, 0)
        struct.pack_into("!H", data, ip_offset + 10, checksum(data[ip_offset : ip_offset + ihl]))
        if struct.unpack_from("!H", data, ip_offset + 6)[0] & 0x3FFF:
            return  # a fragment: the transport checksum covers bytes not in this frame
        total = struct.unpack_from("!H", data, ip_offset + 2)[0]
        proto = data[ip_offset + 9]
        l4 = ip_offset + ihl
        end = min(ip_offset + total, len(data))
        pseudo = b""  # ICMP's checksum covers the ICMP message alone
        if proto != IPPROTO_ICMP:
            addresses = bytes(data[ip_offset + 12 : ip_offset + 20])
            pseudo = addresses + struct.pack("!BBH", 0, proto, end - l4)
    elif version == 6:
        found = _upper_layer_v6(data, ip_offset)
        if found is None:
            return
        proto, l4, end, destination = found
        source = bytes(data[ip_offset + 8 : ip_offset + 24])
        pseudo = source + destination + struct.pack("!IxxxB", end - l4, proto)
    else:
        return
    field = CHECKSUM_AT[version].get(proto)
    if field is None or end - l4 < field + 2:
        return
    if proto == IPPROTO_UDP and version == 4 and data[l4 + 6 : l4 + 8] == b"\0\0":
        return  # IPv4 UDP without a checksum stays without one
    struct.pack_into("!H", data, l4 + field, 0)
    value = checksum(pseudo + bytes(data[l4:end]))
    if proto == IPPROTO_UDP and value == 0:
        value = 0xFFFF  # 0 means "no checksum" in UDP
    struct.pack_into("!H", data, l4 + field, value)


def _upper_layer_v6(data: bytes | bytearray, ip_offset: int) -> tuple[int, int, int, bytes] | None:
    """(protocol, offset, end, final destination) of the header after the IPv6 header at
    `ip_offset` and any hop-by-hop, routing and destination options headers: the upper-layer
    header, unless it is a fragment header or another one `fix` leaves alone. None if the
    packet ends within those extension headers.

    The final destination, which the upper-layer pseudo-header holds, is the IPv6 header's
    unless a routing header has segments left: then it is the last address of a type 0 or 2
    routing header, the first segment of a segment routing header (4), or unknown (None)."""
    end = min(ip_offset + 40 + struct.unpack_from("!H", data, ip_offset + 4)[0], len(data))
    proto, at = data[ip_offset + 6], ip_offset + 40
    destination = bytes(data[ip_offset + 24 : ip_offset + 40])
    while proto in IPV6_EXTENSIONS:
        if at + 8 > end:
            return None
        length = (data[at + 1] + 1) * 8
        if at + length > end:
            return None
        if proto == IPPROTO_ROUTING and data[at + 3]:  # segments left
            kind = data[at + 2]
            if kind in (0, 2) and length >= 24:
                destination = bytes(data[at + length - 16 : at + length])
            elif kind == 4 and length >= 24:
                destination = bytes(data[at + 8 : at + 24])
            else:
                return None
        proto, at = data[at], at + length
    return proto, at, end, destination
