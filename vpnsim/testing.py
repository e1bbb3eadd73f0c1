"""In-memory doubles of the driver's TUN device and transport, for fast unit tests with no root.

`MemoryTun` stands for a TUN device (`vpnsim.tunnel.driver.TunDevice`), `MemoryTransport` for a
UDP socket (`DatagramTransport`) bound on a `MemoryNetwork`. Nothing here has a file descriptor:
tests call `Driver.tun_readable()` / `Driver.transport_readable()` themselves, or `pump()` to
run a client and a server driver until the traffic settles:

    net = MemoryNetwork()
    client_tun, server_tun = MemoryTun("tun0"), MemoryTun("tun0")
    client = Driver(ClientProtocol(SERVER), client_tun, net.transport(CLIENT))
    server = Driver(ServerProtocol(), server_tun, net.transport(SERVER))
    client_tun.inject(ipv4_packet("192.168.53.99", "192.168.60.5", b"hello"))
    pump(client, server)
    assert server_tun.written == [ipv4_packet("192.168.53.99", "192.168.60.5", b"hello")]
"""

from __future__ import annotations

import errno
import io
import socket
import struct
from collections import deque

from vpnsim.packets import ipv4_header
from vpnsim.tunnel.driver import Driver
from vpnsim.tunnel.protocol import Address

# pump() gives up after this many rounds: in memory, traffic that never settles is a loop.
MAX_PUMP_ROUNDS = 10_000


class MemoryTun:
    """A TUN device in memory: `inject()` what the kernel would route in, read `written`."""

    def __init__(self, name: str = "tun0", fail_writes: OSError | None = None) -> None:
        self.name = name
        self.written: list[bytes] = []
        # While set, write() raises it (as the kernel does for a packet it refuses).
        self.fail_writes = fail_writes
        self._inbound: deque[bytes] = deque()

    def inject(self, packet: bytes) -> None:
        """Queue `packet` as if the kernel had routed it into the TUN: read() returns it next."""
        self._inbound.append(bytes(packet))

    def fileno(self) -> int:
        """No descriptor: drive the Driver with tun_readable(), not with select."""
        raise io.UnsupportedOperation("MemoryTun has no file descriptor; call tun_readable()")

    def read(self) -> bytes | None:
        """The oldest injected packet, or None when none is waiting."""
        return self._inbound.popleft() if self._inbound else None

    def write(self, packet: bytes) -> None:
        """Record `packet` in `written`, or raise `fail_writes` when set."""
        if self.fail_writes is not None:
            raise self.fail_writes
        self.written.append(bytes(packet))


class MemoryNetwork:
    """Addresses to the `MemoryTransport` bound there; datagrams cross it instantly, in order."""

    def __init__(self) -> None:
        self._bound: dict[Address, MemoryTransport] = {}

    def transport(self, addr: Address, fail_sends: OSError | None = None) -> MemoryTransport:
        """A transport bound at `addr`; raises OSError(EADDRINUSE) if one is bound there."""
        if addr in self._bound:
            raise OSError(errno.EADDRINUSE, f"{addr[0]}:{addr[1]} is already bound")
        bound = MemoryTransport(self, addr, fail_sends)
        self._bound[addr] = bound
        return bound

    def _route(self, data: bytes, sender: Address, addr: Address) -> None:
        receiver = self._bound.get(addr)
        if receiver is not None:  # nobody bound there: lost, as UDP would be
            receiver._inbound.append((data, sender))

    def _unbind(self, transport: MemoryTransport) -> None:
        if self._bound.get(transport.addr) is transport:
            del self._bound[transport.addr]


class MemoryTransport:
    """A UDP socket bound at `addr` on a `MemoryNetwork` (make one with `network.transport()`)."""

    def __init__(
        self, network: MemoryNetwork, addr: Address, fail_sends: OSError | None = None
    ) -> None:
        self.network = network
        self.addr = addr
        # Every datagram handed to sendto() that did not raise, delivered or not.
        self.sent: list[tuple[bytes, Address]] = []
        # While set, sendto() raises it (e.g. ENETUNREACH, ENOBUFS).
        self.fail_sends = fail_sends
        self._inbound: deque[tuple[bytes, Address]] = deque()

    def fileno(self) -> int:
        """No descriptor: drive the Driver with transport_readable(), not with select."""
        raise io.UnsupportedOperation(
            "MemoryTransport has no file descriptor; call transport_readable()"
        )

    def recvfrom(self) -> tuple[bytes, Address] | None:
        """The oldest datagram queued here and its sender's address, or None."""
        return self._inbound.popleft() if self._inbound else None

    def sendto(self, data: bytes, addr: Address) -> None:
        """Queue `data` at the transport bound at `addr` (dropped if none), from `self.addr`."""
        if self.fail_sends is not None:
            raise self.fail_sends
        data = bytes(data)
        self.sent.append((data, addr))
        self.network._route(data, self.addr, addr)

    def close(self) -> None:
        """Unbind: later datagrams to this address are dropped, and it can be bound again."""
        self.network._unbind(self)


def pump(*drivers: Driver) -> int:
    """Read every driver's TUN and transport until nothing moves; returns the rounds that moved.

    Raises RuntimeError if traffic is still moving after MAX_PUMP_ROUNDS rounds.
    """
    for rounds in range(MAX_PUMP_ROUNDS + 1):
        moved = 0
        for driver in drivers:
            moved += driver.tun_readable()
            moved += driver.transport_readable()
        if not moved:
            return rounds
    raise RuntimeError(f"traffic still moving after {MAX_PUMP_ROUNDS} rounds: a loop?")


def ipv4_packet(
    src: str,
    dst: str,
    payload: bytes = b"",
    protocol: int = socket.IPPROTO_UDP,
    ttl: int = 64,
    ident: int = 0,
    options: bytes = b"",
) -> bytes:
    """An IPv4 packet with a correct header (length, checksum) around `payload`.

    `options` must be a multiple of 4 bytes, at most 40.
    """
    header = ipv4_header(src, dst, protocol, len(payload), ttl=ttl, ident=ident, options=options)
    return header.pack() + payload


def ethernet_frame(dst_mac: str, src_mac: str, ethertype: int, payload: bytes = b"") -> bytes:
    """An Ethernet II frame as a TAP device reads it: no preamble, no FCS, no padding.

    MACs are written as the kernel prints them, e.g. "ff:ff:ff:ff:ff:ff"."""
    header = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
    if len(header) != 12:
        raise ValueError(f"MACs {dst_mac!r} and {src_mac!r}: six octets each")
    return header + struct.pack("!H", ethertype) + payload
