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

from vpnsim.errors import PacketError
from vpnsim.packets import ETH_HEADER
from vpnsim.tunnel.protocol import Address, ClientProtocol, LearningServer

MAC = str  # "02:5e:10:00:00:99": lower case, colon separated, as the kernel prints it


class MalformedFrame(PacketError, ValueError):
    """Bytes too short to be an Ethernet frame."""


def inner_macs(frame: bytes) -> tuple[MAC, MAC]:
    """Source and destination MAC of an Ethernet frame; raises MalformedFrame if it is not one."""
    if len(frame) < ETH_HEADER:
        raise MalformedFrame(f"Ethernet header in {len(frame)} bytes")
    return frame[6:12].hex(":"), frame[0:6].hex(":")


def is_group(mac: MAC) -> bool:
    """Broadcast or multicast (the I/G bit of the first octet): meant for every station."""
    return int(mac[:2], 16) & 1 == 1


@dataclass
class FrameClientProtocol(ClientProtocol):
    """One client in TAP mode: TAP frames to the server, the server's frames to the TAP."""

    def check(self, data: bytes) -> None:
        inner_macs(data)  # what the server sends is delivered if it holds an Ethernet header


@dataclass
class FrameServerProtocol(LearningServer[MAC]):
    """Many clients in TAP mode: learns source MAC -> client address; routes TAP frames by
    destination MAC, and floods group and unknown destinations to every known client.

    `routes` and `last_heard` are as in `ServerProtocol`, keyed by MAC instead of IP address.
    """

    def keys(self, data: bytes) -> tuple[MAC | None, MAC]:
        source, destination = inner_macs(data)
        # No station owns a group address: nothing to learn from one.
        return (None if is_group(source) else source), destination

    def unowned(self, destination: MAC) -> list[Address]:
        """Group and unknown destinations: every known client."""
        return list(self.table.last_heard)
