"""Just enough of Ethernet, IPv4 and IPv6 for the wire: which frames to impair, where their IP
packet starts, and corruption with or without fixing the checksums afterwards.

Impairable frames are IP packets. ARP, IGMP and IPv6 neighbour discovery / MLD pass untouched and
take no place in a schedule: their timing depends on kernel timers, and counting them would
make "the same traffic" differ from run to run.
"""

from __future__ import annotations

import struct

ETH_HEADER = 14
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TAGS = (0x8100, 0x88A8)
IPPROTO_HOPOPTS = 0
IPPROTO_ICMPV6 = 58
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IGMP = 2
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


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def corrupt(frame: bytes, ip_offset: int, at: int, xor: int, fix_checksums: bool) -> bytes:
    """`frame` with byte `at` of its IP packet XORed with `xor`; with `fix_checksums`, the
    IPv4 header and UDP/TCP checksums are recomputed, as if the damage came before them."""
    data = bytearray(frame)
    data[ip_offset + at] ^= xor
    if fix_checksums:
        fix(data, ip_offset)
    return bytes(data)


def fix(data: bytearray, ip_offset: int) -> None:
    """Recompute the checksums of the IP packet at `ip_offset`, in place, where it can."""
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
        pseudo = data[ip_offset + 12 : ip_offset + 20] + struct.pack("!BBH", 0, proto, end - l4)
    elif version == 6:
        proto = data[ip_offset + 6]
        l4 = ip_offset + 40
        end = min(l4 + struct.unpack_from("!H", data, ip_offset + 4)[0], len(data))
        pseudo = data[ip_offset + 8 : ip_offset + 40] + struct.pack("!IxxxB", end - l4, proto)
    else:
        return
    field = {IPPROTO_UDP: 6, IPPROTO_TCP: 16}.get(proto)
    if field is None or end - l4 < field + 2:
        return
    if proto == IPPROTO_UDP and version == 4 and data[l4 + 6 : l4 + 8] == b"\0\0":
        return  # IPv4 UDP without a checksum stays without one
    struct.pack_into("!H", data, l4 + field, 0)
    value = checksum(bytes(pseudo) + bytes(data[l4:end]))
    if proto == IPPROTO_UDP and value == 0:
        value = 0xFFFF  # 0 means "no checksum" in UDP
    struct.pack_into("!H", data, l4 + field, value)
