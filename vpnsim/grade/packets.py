"""Just enough IPv4 to read what a submission sent: tunneled packets inside UDP, and the
packets on the links around the server. Pure functions over captured frames."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from vpnsim.traffic.capture import (
    LINKTYPE_ETHERNET,
    Frame,
    UdpDatagram,
    ipv4_packet,
    parse_udp,
)

ETH_P_IP = 0x0800
ICMP = 1
TCP = 6
UDP = 17
ECHO_REQUEST = 8
ECHO_REPLY = 0


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
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header = (packet[0] & 0xF) * 4
    total, frag = struct.unpack_from("!H2xH", packet, 2)
    offset = (frag & 0x1FFF) * 8
    proto = packet[9]
    icmp_type = packet[header] if proto == ICMP and offset == 0 and len(packet) > header else None
    return IpSummary(
        src=socket.inet_ntoa(packet[12:16]),
        dst=socket.inet_ntoa(packet[16:20]),
        proto=proto,
        total_length=total,
        captured=len(packet),
        icmp_type=icmp_type,
        more_fragments=bool(frag & 0x2000),
        offset=offset,
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
