"""TAP mode of the reference tunnel, sans-IO: whole Ethernet frames, one per UDP datagram.

The lab's task 9: both ends open a TAP device instead of a TUN, so the datagrams carry
Ethernet frames, ARP included, and the kernels at the two ends resolve each other's
addresses through the tunnel as if they shared one link. Still no header and no keepalive:
a datagram is exactly one frame, as a student's IFF_TAP program sends it.

- The client is the IP client with a frame check instead of an IP check: what its server
  sends is delivered if it holds at least an Ethernet header.
- The server is a learning bridge between its TAP and its clients. It learns, from each
  datagram, which client address a source MAC lives behind (a client that restarts from a
  new port is followed, and takes every MAC behind it along). A frame read from its TAP goes
  to the client that owns its destination MAC; broadcast and multicast frames (ARP requests)
  and unknown unicast go to every known client. Expiry is per client, as for the IP server.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpnsim.tunnel.protocol import (
    Address,
    ClientProtocol,
    Deliver,
    LearningServer,
    Send,
)

ETHERNET_HEADER = 14  # destination MAC, source MAC, ethertype
MAC = str  # "02:5e:10:00:00:99": lower case, colon separated, as the kernel prints it


class MalformedFrame(ValueError):
    """Bytes too short to be an Ethernet frame."""


def inner_macs(frame: bytes) -> tuple[MAC, MAC]:
    """Source and destination MAC of an Ethernet frame; raises MalformedFrame if it is not one."""
    if len(frame) < ETHERNET_HEADER:
        raise MalformedFrame(f"Ethernet header in {len(frame)} bytes")
    return frame[6:12].hex(":"), frame[0:6].hex(":")


def is_group(mac: MAC) -> bool:
    """Broadcast or multicast (the I/G bit of the first octet): meant for every station."""
    return int(mac[:2], 16) & 1 == 1


@dataclass
class FrameClientProtocol(ClientProtocol):
    """One client in TAP mode: TAP frames to the server, the server's frames to the TAP."""

    def datagram_received(self, data: bytes, addr: Address, now: float) -> list[Deliver]:
        if addr != self.server:
            self.stats.foreign += 1
            return []
        if len(data) < ETHERNET_HEADER:
            self.stats.malformed += 1
            return []
        self.stats.received += 1
        self.stats.delivered += 1
        return [Deliver(data)]


@dataclass
class FrameServerProtocol(LearningServer[MAC]):
    """Many clients in TAP mode: learns source MAC -> client address; routes TAP frames by
    destination MAC, and floods group and unknown destinations to every known client.

    `routes` and `last_heard` are as in `ServerProtocol`, keyed by MAC instead of IP address.
    """

    def datagram_received(self, data: bytes, addr: Address, now: float) -> list[Deliver]:
        try:
            source, _destination = inner_macs(data)
        except MalformedFrame:
            self.stats.malformed += 1
            return []
        # No station owns a group address: nothing to learn from one.
        self.table.heard(addr, now, None if is_group(source) else source)
        self.stats.received += 1
        self.stats.delivered += 1
        return [Deliver(data)]

    def packet_from_tun(self, packet: bytes, now: float) -> list[Send]:
        """Route one frame read from the TAP (the driver's name for what the device gives)."""
        self.stats.tun_packets += 1
        try:
            _source, destination = inner_macs(packet)
        except MalformedFrame:
            self.stats.malformed += 1
            return []
        owner = None if is_group(destination) else self.table.owner(destination)
        clients = [owner] if owner is not None else list(self.table.last_heard)
        if not clients:
            self.stats.no_route += 1
            return []
        self.stats.sent += len(clients)
        return [Send(packet, client) for client in clients]
