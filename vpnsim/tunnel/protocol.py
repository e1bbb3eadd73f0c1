"""The reference tunnel's protocol, sans-IO: pure objects fed packets, datagrams and `now`.

Plain mode is the SEED lab's wire format: each UDP datagram carries exactly one raw IP packet,
nothing else (no header, no keepalive), so either end interoperates with a student's
`tun_client.py` / `tun_server.py`.

- The client sends every packet read from its TUN to the server, and delivers to its TUN what
  the server sends (datagrams from anyone else are dropped: no injection from the outside).
- The server learns, from each datagram, which client address an inner source address lives
  behind; packets read from its TUN go to the client that owns their destination. A client that
  restarts from a new source port is followed at its first packet. With a single client known,
  unknown destinations go to it (the lab's single-client setup, e.g. site-to-site subnets).

Nothing here does IO or reads a clock: the driver passes `now` in, and acts on the returned
`Send` (a datagram to an address) and `Deliver` (a packet to write to the TUN) values.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

from vpnsim.errors import PacketError
from vpnsim.packets import IPAddress as IPAddress  # re-exported: the tunnel's names
from vpnsim.packets import MalformedPacket as MalformedPacket
from vpnsim.packets import inner_addresses as inner_addresses

Address = tuple[str, int]
Key = TypeVar("Key", bound=Hashable)

RawAddress = bytes  # an inner address as it stands in the packet: 4 or 16 bytes

# A client unheard of for this long is forgotten (its address may belong to someone else now).
PEER_IDLE_TIMEOUT = 300.0


def raw_addresses(packet: bytes) -> tuple[RawAddress, RawAddress]:
    """Source and destination of an IP packet as raw bytes, with the checks of
    `inner_addresses` (raises MalformedPacket alike): the per-packet path keys its routes by
    these, as building `ipaddress` objects cost ~3 us a packet."""
    if not packet:
        raise MalformedPacket("empty")
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        if ihl < 20 or len(packet) < ihl or total < ihl or total > len(packet):
            inner_addresses(packet)  # raises, with the message saying what is wrong
        return packet[12:16], packet[16:20]
    if version == 6:
        if len(packet) < 40 or 40 + int.from_bytes(packet[4:6], "big") > len(packet):
            inner_addresses(packet)
        return packet[8:24], packet[24:40]
    raise MalformedPacket(f"IP version {version}")


def address_view(raw: RawAddress) -> IPAddress:
    """A raw inner address as an `ipaddress` object (for reports and tests, not per packet)."""
    return ipaddress.ip_address(raw)


# Actions are named tuples: one is made per packet, and a tuple is the cheapest object to make.
class Send(NamedTuple):
    """Send `datagram` to `addr` over the outer (UDP) transport."""

    datagram: bytes
    addr: Address


class Deliver(NamedTuple):
    """Write `packet` to the TUN device."""

    packet: bytes


@dataclass
class Stats:
    """What an endpoint did, for evidence and for the exit report."""

    # Counted when the protocol hands a datagram or packet to the IO side; what the kernel
    # then refused is in the driver's `errors`.
    tun_packets: int = 0  # read from the TUN
    sent: int = 0  # datagrams handed to the transport
    received: int = 0  # datagrams accepted from the transport
    delivered: int = 0  # packets handed to the TUN
    malformed: int = 0  # datagrams that are not an IP packet: dropped
    foreign: int = 0  # datagrams from an address that is not our server: dropped
    no_route: int = 0  # TUN packets for a destination no client owns: dropped


@dataclass
class ClientProtocol:
    """One client: TUN packets to the server, the server's datagrams to the TUN."""

    server: Address
    stats: Stats = field(default_factory=Stats)

    def packet_from_tun(self, packet: bytes, now: float) -> list[Send]:
        return [Send(packet, self.route_from_tun(packet, now))]

    def datagram_received(self, data: bytes, addr: Address, now: float) -> list[Deliver]:
        return [Deliver(data)] if self.accept(data, addr, now) else []

    def route_from_tun(self, packet: bytes, now: float) -> Address:
        """Where a TUN packet goes (packet_from_tun without an action object): the server."""
        stats = self.stats
        stats.tun_packets += 1
        stats.sent += 1
        return self.server

    def accept(self, data: bytes, addr: Address, now: float) -> bool:
        """Whether a datagram goes to the TUN: an IP packet from our server."""
        if addr != self.server:
            self.stats.foreign += 1
            return False
        try:
            self.check(data)
        except PacketError:
            self.stats.malformed += 1
            return False
        self.stats.received += 1
        self.stats.delivered += 1
        return True

    def check(self, data: bytes) -> None:
        """Raises PacketError unless `data` is a whole IP packet (a frame, in TAP mode)."""
        raw_addresses(data)

    def expire(self, now: float) -> None:
        """Nothing times out on the client; here so both ends share one interface."""


@dataclass
class ClientTable(Generic[Key]):
    """Which client each inner address (an IP address, or a MAC in TAP mode) lives behind,
    and when each client last sent anything.

    Expiry is per client: an address behind a client that is still talking (a host of its
    site, say) stays routed even if that host itself is quiet. A client that restarts from a
    new port (or address) takes everything behind it along.
    """

    routes: dict[Key, Address] = field(default_factory=dict)
    last_heard: dict[Address, float] = field(default_factory=dict)

    def heard(self, addr: Address, now: float, source: Key | None) -> None:
        """`addr` sent something at `now`, from inner `source` (None: nothing to learn)."""
        if source is not None:
            known = self.routes.get(source)
            if known is not None and known != addr:
                self.routes = {k: (addr if c == known else c) for k, c in self.routes.items()}
                self.last_heard.pop(known, None)
            self.routes[source] = addr
        self.last_heard[addr] = now

    def owner(self, key: Key) -> Address | None:
        return self.routes.get(key)

    def only_client(self) -> Address | None:
        return next(iter(self.last_heard)) if len(self.last_heard) == 1 else None

    def clients(self) -> set[Address]:
        return set(self.last_heard)

    def expire(self, now: float, idle_timeout: float) -> None:
        stale = {c for c, heard in self.last_heard.items() if now - heard > idle_timeout}
        if not stale:
            return
        for client in stale:
            del self.last_heard[client]
        self.routes = {k: c for k, c in self.routes.items() if c not in stale}


@dataclass
class LearningServer(ABC, Generic[Key]):
    """One server for both modes: learns inner source -> client address from each datagram,
    and sends what it reads from its device to the client that owns its destination. A
    subclass says how to read the keys (`keys`) and whom an unowned destination goes to
    (`unowned`).

    `routes` maps each inner key to the client it lives behind; `last_heard` says when each
    client last sent anything (see `ClientTable`).
    """

    idle_timeout: float = PEER_IDLE_TIMEOUT
    stats: Stats = field(default_factory=Stats)
    table: ClientTable[Key] = field(default_factory=ClientTable)

    @abstractmethod
    def keys(self, data: bytes) -> tuple[Key | None, Key]:
        """(source, destination) of a packet or frame; a source of None teaches nothing.
        Raises PacketError for bytes that are not one."""

    @abstractmethod
    def unowned(self, destination: Key) -> list[Address]:
        """Whom a packet or frame for `destination` goes to when no client owns it."""

    def datagram_received(self, data: bytes, addr: Address, now: float) -> list[Deliver]:
        return [Deliver(data)] if self.accept(data, addr, now) else []

    def accept(self, data: bytes, addr: Address, now: float) -> bool:
        """Whether a datagram goes to the device (a packet or frame); learns its source."""
        try:
            source, _destination = self.keys(data)
        except PacketError:
            self.stats.malformed += 1
            return False
        self.table.heard(addr, now, source)
        self.stats.received += 1
        self.stats.delivered += 1
        return True

    def packet_from_tun(self, packet: bytes, now: float) -> list[Send]:
        """Route one packet (a frame, in TAP mode) read from the device."""
        self.stats.tun_packets += 1
        try:
            _source, destination = self.keys(packet)
        except PacketError:
            self.stats.malformed += 1
            return []
        owner = self.table.owner(destination)
        clients = [owner] if owner is not None else self.unowned(destination)
        if not clients:
            self.stats.no_route += 1
            return []
        self.stats.sent += len(clients)
        return [Send(packet, client) for client in clients]

    @property
    def routes(self) -> dict[Key, Address]:
        return self.table.routes

    @property
    def last_heard(self) -> dict[Address, float]:
        return self.table.last_heard

    def expire(self, now: float) -> None:
        """Forget clients silent for over `idle_timeout` seconds, and what lives behind them."""
        self.table.expire(now, self.idle_timeout)

    def clients(self) -> set[Address]:
        return self.table.clients()


@dataclass
class ServerProtocol(LearningServer[RawAddress]):
    """Many clients: routes TUN packets by destination address. With a single client known,
    an unowned destination goes to it (the lab's single-client setup, e.g. site-to-site).

    Routes are keyed by raw address bytes; `routes` shows them as `ipaddress` objects."""

    def keys(self, data: bytes) -> tuple[RawAddress | None, RawAddress]:
        return raw_addresses(data)

    @property
    def routes(self) -> dict[IPAddress, Address]:  # type: ignore[override]
        return {address_view(raw): client for raw, client in self.table.routes.items()}

    def unowned(self, destination: RawAddress) -> list[Address]:
        only = self.table.only_client()
        return [] if only is None else [only]

    def packet_from_tun(self, packet: bytes, now: float) -> list[Send]:
        peer = self.route_from_tun(packet, now)
        return [] if peer is None else [Send(packet, peer)]

    def route_from_tun(self, packet: bytes, now: float) -> Address | None:
        """The client a TUN packet goes to (an IP packet has one destination), or None."""
        stats = self.stats
        stats.tun_packets += 1
        try:
            _source, destination = raw_addresses(packet)
        except PacketError:
            stats.malformed += 1
            return None
        owner = self.table.routes.get(destination)
        if owner is None:
            owner = self.table.only_client()
            if owner is None:
                stats.no_route += 1
                return None
        stats.sent += 1
        return owner


@runtime_checkable
class OneToOneEndpoint(Protocol):
    """An endpoint that sends each TUN packet to at most one peer, gives each datagram to the
    device or drops it, and never answers or sends on its own: plain IP mode (both ends) and
    the TAP client. `Driver.run` moves its packets without making action objects."""

    @property
    def stats(self) -> Stats: ...

    def route_from_tun(self, packet: bytes, now: float) -> Address | None: ...
    def accept(self, data: bytes, addr: Address, now: float) -> bool: ...
    def expire(self, now: float) -> None: ...


class Endpoint(Protocol):
    """What the driver runs: the classes here, their TAP-mode kin in `tunnel.frames`, or the
    AEAD mode's in `tunnel.secure`."""

    @property
    def stats(self) -> Stats: ...  # read-only here: an endpoint may keep a Stats subclass

    def packet_from_tun(self, packet: bytes, now: float) -> Sequence[Send]: ...
    # An AEAD endpoint (`tunnel.secure`) also answers a datagram (handshakes) and sends on
    # timers (retries, rekeys): plain endpoints return only Deliver, and None from expire.
    def datagram_received(
        self, data: bytes, addr: Address, now: float
    ) -> Sequence[Send | Deliver]: ...
    def expire(self, now: float) -> Sequence[Send] | None: ...
