"""TLS mode of the reference tunnel, sans-IO: a client and a many-client server over
`TlsChannel`s (see `tls_channel` for the wire format), fed bytes and `now`.

- The client verifies the server (chain to the lab CA, and the host name it was given), logs
  in if it has credentials, learns its TUN address from the server's `OK` (unless it has
  its own), then carries packets. A refusal of any kind ends it with a message saying which.
- The server accepts many connections. Each must finish its handshake and login before
  `handshake_timeout`; it then owns its assigned address (from the pool) and whatever inner
  source addresses its packets carry, unless another client owns them. A TUN packet goes to
  the connection that owns its destination. A connection whose output to TCP has grown past
  `send_limit` (a client that stopped reading) gets no more packets: they are dropped and
  counted. Whatever one connection does ends at most that connection; every ending is
  counted by kind in `stats.closed`.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections import Counter
from collections.abc import Collection, Hashable, Iterator, Mapping
from dataclasses import dataclass, field

from vpnsim.tunnel.protocol import IPAddress, MalformedPacket, inner_addresses
from vpnsim.tunnel.shadow import ShadowEntry, ShadowError, verify
from vpnsim.tunnel.tls_channel import ChannelClosed, TlsChannel

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_SEND_LIMIT = 256 * 1024
ConnId = Hashable


@dataclass
class TlsStats:
    tun_packets: int = 0  # read from the TUN
    sent: int = 0  # packets written into a TLS session
    received: int = 0  # packets taken from a TLS session
    delivered: int = 0  # packets handed to the TUN
    no_route: int = 0  # TUN packets for a destination no client owns: dropped
    send_buffer_full: int = 0  # packets dropped for a client that does not read
    spoofed: int = 0  # packets from a client with another client's source address: dropped
    accepted: int = 0  # connections
    logins: int = 0  # logins accepted
    closed: Counter[str] = field(default_factory=Counter)  # connection endings, by kind


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


class AddressPool:
    """Client TUN addresses handed out one per connection, lowest free first."""

    def __init__(self, network: str, reserved: tuple[str, ...] = ()) -> None:
        self.interface = ipaddress.ip_interface(network)
        self.network = self.interface.network
        self._reserved = {ipaddress.ip_address(a) for a in reserved}
        self._taken: set[IPAddress] = set()

    def take(
        self, in_use: Collection[IPAddress] = ()
    ) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
        """The lowest free address, skipping `in_use` (a client's own, learnt from it)."""
        for host in self.network.hosts():
            if host not in self._taken and host not in self._reserved and host not in in_use:
                self._taken.add(host)
                return ipaddress.ip_interface(f"{host}/{self.network.prefixlen}")
        return None

    def give_back(self, address: IPAddress) -> None:
        self._taken.discard(address)


class TlsClientProtocol:
    """One client connection. `state`: handshake, login, open or closed (`closed_reason`)."""

    def __init__(
        self,
        context: ssl.SSLContext,
        server_hostname: str,
        credentials: Credentials | None = None,
    ) -> None:
        self.channel = TlsChannel(context, server_side=False, server_hostname=server_hostname)
        self.credentials = credentials
        self.state = "handshake"
        self.assigned: str | None = None  # "address/prefix" from the server's OK
        self.closed_kind: str | None = None
        self.closed_reason: str | None = None
        self.stats = TlsStats()

    def start(self) -> None:
        """Begin the handshake: the ClientHello lands in `channel.out`."""
        self.channel.start()

    def data_received(self, data: bytes, now: float) -> list[bytes]:
        """Feed TCP bytes (b"": end of stream); returns packets for the TUN."""
        return self._step(data)

    def packet_from_tun(self, packet: bytes, now: float) -> None:
        self.stats.tun_packets += 1
        if self.state != "open":
            return  # not authenticated both ways yet: nothing leaves
        self.stats.sent += 1
        self.channel.write(packet)

    def close(self) -> None:
        if self.state != "closed":
            self.channel.close()
            self._closed("local", "closed by us")

    def _step(self, data: bytes) -> list[bytes]:
        if self.state == "closed":
            return []
        packets: list[bytes] = []
        try:
            self.channel.receive(data)
            packets = self._advance()
            self.channel.raise_if_ended()
        except ChannelClosed as exc:
            self.channel.close()
            self._closed(exc.kind, exc.reason)
        return packets  # what came before an ending still counts

    def _advance(self) -> list[bytes]:
        if self.state == "handshake" and self.channel.handshaken:
            if self.credentials is None:
                self.state = "open"
            else:
                c = self.credentials
                self.channel.write(f"LOGIN {c.user} {c.password}\n".encode())
                self.state = "login"
        if self.state == "login":
            line = self.channel.line()
            if line is None:
                return []
            verdict, _, rest = line.partition(" ")
            if verdict == "OK":
                self.assigned = rest.strip() or None
                self.state = "open"
            elif verdict == "DENIED":
                raise ChannelClosed("login", f"the server refused the login: {rest}")
            else:
                raise ChannelClosed("garbage", f"unexpected answer to the login: {line[:60]!r}")
        if self.state != "open":
            return []
        packets = self.channel.packets()
        self.stats.received += len(packets)
        self.stats.delivered += len(packets)
        return packets

    def _closed(self, kind: str, reason: str) -> None:
        self.state = "closed"
        self.closed_kind, self.closed_reason = kind, reason
        self.stats.closed[kind] += 1


@dataclass
class ServerConnection:
    channel: TlsChannel
    peer: str
    deadline: float
    state: str = "handshake"  # handshake, login, open, closed
    user: str | None = None
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None = None
    dropping: bool = False  # told the log that its packets are being dropped


class TlsServerProtocol:
    """Many connections, keyed by whatever the driver uses (a socket's fd)."""

    def __init__(
        self,
        context: ssl.SSLContext,
        users: Mapping[str, ShadowEntry] | None = None,
        pool: AddressPool | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        send_limit: int = DEFAULT_SEND_LIMIT,
    ) -> None:
        self.context = context
        self.users = users
        self.pool = pool
        self.handshake_timeout = handshake_timeout
        self.send_limit = send_limit
        self.connections: dict[ConnId, ServerConnection] = {}
        self.routes: dict[IPAddress, ConnId] = {}  # inner address -> connection
        self.stats = TlsStats()
        self.log: list[str] = []  # one line per event worth telling; the driver prints them

    def connection_made(self, conn: ConnId, peer: str, now: float) -> None:
        channel = TlsChannel(self.context, server_side=True)
        self.connections[conn] = ServerConnection(channel, peer, now + self.handshake_timeout)
        self.stats.accepted += 1

    def data_received(self, conn: ConnId, data: bytes, now: float) -> list[bytes]:
        """Feed TCP bytes of `conn` (b"": end of stream); returns packets for the TUN."""
        c = self.connections.get(conn)
        if c is None or c.state == "closed":
            return []
        packets: list[bytes] = []
        try:
            c.channel.receive(data)
            packets = self._advance(conn, c)
            c.channel.raise_if_ended()
        except ChannelClosed as exc:
            self._end(conn, c, exc.kind, exc.reason)
        return packets  # what came before an ending still counts

    def packet_from_tun(self, packet: bytes, now: float) -> None:
        self.stats.tun_packets += 1
        try:
            _source, destination = inner_addresses(packet)
        except MalformedPacket:
            self.stats.no_route += 1
            return
        conn = self.routes.get(destination)
        if conn is None:
            open_ones = [k for k, c in self.connections.items() if c.state == "open"]
            # The lab's single-client setup: what is for nobody known goes to the one client.
            conn = open_ones[0] if len(open_ones) == 1 else None
        c = self.connections.get(conn) if conn is not None else None
        if c is None or c.state != "open":
            self.stats.no_route += 1
            return
        if len(c.channel.out) > self.send_limit:
            self.stats.send_buffer_full += 1
            if not c.dropping:  # once per episode: a flood must not flood the log too
                c.dropping = True
                self.log.append(
                    f"{c.peer}: not reading, {len(c.channel.out)} bytes queued: "
                    "dropping its packets"
                )
            return
        c.dropping = False
        self.stats.sent += 1
        c.channel.write(packet)

    def expire(self, now: float) -> None:
        """End connections that have not finished handshake and login in time."""
        for conn, c in list(self.connections.items()):
            if c.state in ("handshake", "login") and now > c.deadline:
                self._end(conn, c, "timeout", f"no {c.state} within {self.handshake_timeout:g} s")

    def connection_lost(self, conn: ConnId) -> None:
        """The driver closed the socket: forget the connection."""
        c = self.connections.pop(conn, None)
        if c is not None and c.state != "closed":
            self._end(conn, c, "eof", "the connection was lost")

    def finished(self, conn: ConnId) -> bool:
        """Whether `conn` is closed: the driver sends what of `out` the socket takes (the
        last words, an alert) and closes it. What a peer that does not read leaves is lost:
        it must not keep its socket open forever."""
        c = self.connections.get(conn)
        return c is None or c.state == "closed"

    def open_connections(self) -> Iterator[ConnId]:
        return (k for k, c in self.connections.items() if c.state == "open")

    def _advance(self, conn: ConnId, c: ServerConnection) -> list[bytes]:
        if c.state == "handshake" and c.channel.handshaken:
            if self.users is None:
                self._open(conn, c, None)
            else:
                c.state = "login"
        if c.state == "login":
            line = c.channel.line()
            if line is None:
                return []
            self._login(conn, c, line)
        if c.state != "open":
            return []
        packets = []
        for packet in c.channel.packets():
            try:
                source, _ = inner_addresses(packet)
            except MalformedPacket as exc:
                raise ChannelClosed("garbage", f"not an IP packet: {exc}") from None
            owner = self.routes.setdefault(source, conn)
            if owner != conn:
                self.stats.spoofed += 1
                continue
            packets.append(packet)
        self.stats.received += len(packets)
        self.stats.delivered += len(packets)
        return packets

    def _login(self, conn: ConnId, c: ServerConnection, line: str) -> None:
        assert self.users is not None
        word, _, rest = line.partition(" ")
        user, _, password = rest.partition(" ")
        if word != "LOGIN" or not user:
            raise ChannelClosed("garbage", f"expected LOGIN <user> <password>, got {line[:30]!r}")
        entry = self.users.get(user)
        try:
            good = entry is not None and verify(password, entry.hash)
        except ShadowError as exc:
            self.log.append(f"{c.peer}: user {user}: {exc}")
            good = False
        if not good:
            c.channel.write(b"DENIED wrong user name or password\n")
            raise ChannelClosed("login", f"login refused for user {user!r}")
        self._open(conn, c, user)

    def _open(self, conn: ConnId, c: ServerConnection, user: str | None) -> None:
        c.user = user
        if self.pool is not None:
            c.address = self.pool.take(in_use=self.routes.keys())
            if c.address is None:
                if user is not None:
                    c.channel.write(b"DENIED no free TUN address\n")
                raise ChannelClosed("pool", "no free TUN address")
            self.routes[c.address.ip] = conn
        if user is not None:
            c.channel.write(f"OK {c.address or ''}\n".encode())
            self.stats.logins += 1
        c.state = "open"
        self.log.append(f"{c.peer}: open, user {user or '-'}, TUN address {c.address or '-'}")

    def _end(self, conn: ConnId, c: ServerConnection, kind: str, reason: str) -> None:
        c.channel.close()
        c.state = "closed"
        self.stats.closed[kind] += 1
        self.log.append(f"{c.peer}: closed ({kind}): {reason}")
        self.routes = {a: k for a, k in self.routes.items() if k != conn}
        if c.address is not None and self.pool is not None:
            self.pool.give_back(c.address.ip)
            c.address = None
