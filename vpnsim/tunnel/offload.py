"""The offload fast path (`--offload`, both ends): TCP super-packets of up to ~64 KB per system
call, instead of one MTU-sized packet.

The TUN is opened with IFF_VNET_HDR and TUNSETOFFLOAD (checksum and TSO offered), so the
kernel hands it whole TSO/GSO super-packets, each behind a 10-byte `virtio_net_hdr` saying how
to cut it into segments. The tunnel carries each as one datagram: the IP packet first, the
header as a 10-byte trailer (so the endpoints' IP checks and routes work unchanged, and AEAD
mode encrypts and authenticates it whole, one AES-GCM call per super-packet). The outer
network fragments and reassembles the datagram in the kernel; the far end writes the header
and the packet back to its own TUN, and the kernel segments (or forwards the super-packet to
a device that can). Not the SEED wire: both ends must use it; plain mode's default stays one
raw IP packet per datagram.

Everything written to the TUN is checked first (`split_super_packet`): a datagram whose
trailer or packet the kernel would refuse is dropped and counted, never written.
"""

from __future__ import annotations

import fcntl
import os
import struct

from vpnsim.packets import MalformedPacket
from vpnsim.tunnel.tun import IFF_NO_PI, IFF_TUN, TUNSETIFF

IFF_VNET_HDR = 0x4000
TUNSETOFFLOAD = 0x400454D0
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN

VNET_HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR_BYTES = VNET_HDR.size  # 10
F_NEEDS_CSUM = 0x01
F_DATA_VALID = 0x02  # set on reads of packets whose checksum the kernel already checked
GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_ECN = 0, 1, 4, 0x80
GSO_BY_FRAGS = 0xFFFF  # a gso_size with a meaning of its own inside the kernel: refused
TCP = 6
TCP_HEADER = 20
TCP_CHECKSUM_OFFSET = 16  # offsetof(struct tcphdr, check): the kernel insists, for TSO
# Largest super-packet the kernel may hand us: the TUN's gso_max_size is set to this, so one
# (plus trailer and AEAD overhead) always fits in a UDP datagram (65507 bytes of IPv4 payload).
GSO_MAX_SIZE = 65000
READ_SIZE = VNET_HDR_BYTES + 65535
SUPER_PACKET = 1500  # a read longer than this is several packets' worth


def _ip_length(packet: bytes) -> tuple[int, int, int]:
    """(version, header length up to the transport header, transport protocol); raises
    MalformedPacket unless the packet's own length field is exactly its size."""
    if len(packet) < 20:
        raise MalformedPacket(f"super-packet of {len(packet)} bytes")
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        if ihl < 20 or total != len(packet) or ihl > total:
            raise MalformedPacket(f"IPv4 total length {total} in {len(packet)} bytes")
        return 4, ihl, packet[9]
    if version == 6:
        if len(packet) < 40 or 40 + int.from_bytes(packet[4:6], "big") != len(packet):
            raise MalformedPacket(f"IPv6 payload length in {len(packet)} bytes")
        return 6, 40, packet[6]
    raise MalformedPacket(f"IP version {version}")


def check_vnet_header(header: bytes, packet: bytes) -> None:
    """Raises MalformedPacket unless `header` is a virtio_net_hdr the kernel accepts for
    `packet` (what this tunnel's TUN reads produce: checksum offload, TCP segmentation)."""
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = VNET_HDR.unpack(header)
    version, ip_header, proto = _ip_length(packet)
    if flags & ~(F_NEEDS_CSUM | F_DATA_VALID):
        raise MalformedPacket(f"vnet header flags {flags:#x}")
    if hdr_len > len(packet):  # tun_get_user refuses it, whatever the rest says
        raise MalformedPacket(f"vnet header length {hdr_len} in {len(packet)} bytes")
    if flags & F_NEEDS_CSUM and not (
        ip_header <= csum_start and csum_start + csum_offset + 2 <= len(packet)
    ):
        raise MalformedPacket(f"checksum at {csum_start}+{csum_offset} in {len(packet)} bytes")
    kind = gso_type & ~GSO_ECN
    if kind == GSO_NONE:
        if gso_type != GSO_NONE:
            raise MalformedPacket("ECN flag without segmentation")
        return
    wanted = GSO_TCPV4 if version == 4 else GSO_TCPV6
    if kind != wanted or proto != TCP:
        raise MalformedPacket(f"segmentation type {gso_type} for IPv{version} protocol {proto}")
    if not flags & F_NEEDS_CSUM or gso_size in (0, GSO_BY_FRAGS):
        raise MalformedPacket(f"segmentation of {gso_size} bytes without checksum offload")
    # As virtio_net_hdr_to_skb checks: the checksum is the TCP one, and a whole TCP header
    # follows where it starts.
    if csum_offset != TCP_CHECKSUM_OFFSET or csum_start + TCP_HEADER > len(packet):
        raise MalformedPacket(f"TCP segmentation with its checksum at {csum_start}+{csum_offset}")


def split_super_packet(data: bytes) -> tuple[bytes, bytes]:
    """A datagram of the offload wire (packet + 10-byte header trailer) as (header, packet),
    checked; raises MalformedPacket otherwise."""
    if len(data) < VNET_HDR_BYTES:
        raise MalformedPacket(f"{len(data)} bytes: no vnet header")
    header, packet = data[-VNET_HDR_BYTES:], data[:-VNET_HDR_BYTES]
    check_vnet_header(header, packet)
    return header, packet


class OffloadTun:
    """A TUN with IFF_VNET_HDR and TSO offered; reads and writes the offload wire's form."""

    mode = "tun"

    def __init__(self, name_template: str = "tun%d") -> None:
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR
        try:
            ifr = fcntl.ioctl(
                self.fd, TUNSETIFF, struct.pack("16sH", name_template.encode(), flags)
            )
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, OFFLOADS)
        except OSError:
            os.close(self.fd)
            raise
        self.name = ifr[:16].rstrip(b"\0").decode()
        # Reads bigger than one MTU-sized packet: the fast path at work (exit report).
        self.super_packets = 0
        self.largest = 0

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        """One (super-)packet with its header moved to the end, or None when none waits."""
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return None
        size = len(data) - VNET_HDR_BYTES
        if size > SUPER_PACKET:
            self.super_packets += 1
            self.largest = max(self.largest, size)
        return data[VNET_HDR_BYTES:] + data[:VNET_HDR_BYTES]

    def report(self) -> dict[str, int]:
        return {"super_packets": self.super_packets, "largest": self.largest}

    def write(self, data: bytes) -> None:
        """Write one datagram's packet with its header; raises MalformedPacket (nothing
        written) if the kernel would have to refuse it."""
        header, packet = split_super_packet(data)
        os.writev(self.fd, (header, packet))

    def close(self) -> None:
        os.close(self.fd)
