"""The AEAD mode of the reference tunnel, sans-IO: a client and a server fed bytes and `now`.

Each end runs the same loop as in plain mode (`tunnel.driver`), but every datagram is one of
`secure_wire`'s messages:

1. The client sends an initiation (its X25519 ephemeral key, a PSK mac); the server answers
   with its own ephemeral key and a mac under the new session's confirm key. Both derive one
   AES-256-GCM key per direction (`crypto.derive_session_keys`).
2. Data packets carry the receiver's session index and a counter (the nonce). The server uses
   a new session only once the client has sent on it (a keepalive if it has nothing else): a
   replayed initiation makes a session nobody can use, and displaces nothing.
3. Rekeying: the client starts a new handshake when a session has sent or received
   `rekey_after_packets` packets or is `rekey_after_seconds` old; both ends keep the previous
   session for `previous_key_seconds`, so packets in flight across the switch still arrive.
4. Roaming: the server sends to the address of the last authentic data packet of a client.

Every datagram that is not an authentic, fresh message is dropped and counted in
`SecureStats`; nothing raises out of an endpoint on remote input. Randomness (keys and session
indices) is injected as `random` and time as `now`, for deterministic tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vpnsim.tunnel import crypto, secure_wire
from vpnsim.tunnel.protocol import (
    PEER_IDLE_TIMEOUT,
    Address,
    Deliver,
    IPAddress,
    MalformedPacket,
    Send,
    Stats,
    inner_addresses,
)

Random = Callable[[int], bytes]
DATA_HEADER = secure_wire.DATA_HEADER
HEADER_BYTES = secure_wire.DATA_HEADER_BYTES


@dataclass(frozen=True)
class SecureConfig:
    """Limits and timers of the AEAD mode (seconds, packets)."""

    rekey_after_packets: int = 2**30
    rekey_after_seconds: float = 120.0
    reject_after_seconds: float = 180.0  # a session this old is never used again
    previous_key_seconds: float = 10.0  # the previous session still receives this long
    handshake_retry_seconds: float = 1.0
    no_reply_seconds: float = 10.0  # sent data, heard nothing authentic: new handshake
    # Server: heard data but sent nothing this long: a keepalive, so one-way traffic does not
    # look like a dead server to the client.
    keepalive_seconds: float = 5.0
    pending_handshake_seconds: float = 30.0  # server: an unconfirmed session is forgotten
    max_pending_handshakes: int = 1024
    queue_packets: int = 64  # client: packets kept while waiting for a session
    idle_timeout: float = PEER_IDLE_TIMEOUT


@dataclass
class SecureStats(Stats):
    """Plain mode's counters (`received`: authentic data packets) and the AEAD mode's own."""

    handshakes: int = 0  # sessions established (client: responses accepted; server: confirmed)
    rekeys: int = 0  # of which replaced an earlier session
    initiations_sent: int = 0
    responses_sent: int = 0
    keepalives: int = 0  # authentic empty data packets, received
    unauthentic: int = 0  # failed a mac or an AEAD tag (tampered, or another PSK): dropped
    replayed: int = 0  # counter already seen or behind the window: dropped
    unknown_index: int = 0  # names no session of ours (expired, or made up): dropped
    expired: int = 0  # on a session past reject_after_seconds: dropped
    unexpected: int = 0  # a well-formed message the other side should send: dropped
    roamed: int = 0  # server: a client's address changed
    no_session: int = 0  # TUN packets with no usable session (client: queue full): dropped


class Session:
    """One handshake's keys: a send counter, and a replay window for what we receive."""

    __slots__ = ("_receiver", "_sender", "created", "local_index", "remote_index", "sent", "window")

    def __init__(
        self, local_index: int, remote_index: int, send_key: bytes, receive_key: bytes, now: float
    ) -> None:
        self.local_index = local_index
        self.remote_index = remote_index
        self.created = now
        self._sender = crypto.PacketCipher(send_key)
        self._receiver = crypto.PacketCipher(receive_key)
        self.sent = 0  # the next counter: never reused, so never a repeated nonce
        self.window = crypto.ReplayWindow()

    def seal(self, packet: bytes) -> bytes:
        header = DATA_HEADER.pack(secure_wire.DATA, self.remote_index, self.sent)
        self.sent += 1
        return header + self._sender.seal(self.sent - 1, header, packet)

    def open(
        self, datagram: bytes, now: float, config: SecureConfig, stats: SecureStats
    ) -> bytes | None:
        """The authentic, fresh plaintext of a data message for us, or None (counted)."""
        _, _, counter = DATA_HEADER.unpack_from(datagram)
        if now - self.created >= config.reject_after_seconds:
            stats.expired += 1
            return None
        if not self.window.fresh(counter):
            stats.replayed += 1
            return None
        header, sealed = datagram[:HEADER_BYTES], datagram[HEADER_BYTES:]
        plaintext = self._receiver.open(counter, header, sealed)
        if plaintext is None:
            stats.unauthentic += 1
            return None
        self.window.accept(counter)  # only now: forgeries never move the window
        return plaintext

    def usable(self, now: float, config: SecureConfig) -> bool:
        return (
            now - self.created < config.reject_after_seconds
            and self.sent < crypto.REJECT_AFTER_MESSAGES
        )

    def due_for_rekey(self, now: float, config: SecureConfig) -> bool:
        return (
            self.sent >= config.rekey_after_packets
            or self.window.highest >= config.rekey_after_packets
            or now - self.created >= config.rekey_after_seconds
        )


def _new_index(random: Random, taken: Callable[[int], bool]) -> int:
    while True:
        index = int.from_bytes(random(4), "little")
        if index and not taken(index):  # 0 is "no session" in a peer hint
            return index


def _inner_packet(plaintext: bytes, stats: SecureStats) -> IPAddress | None:
    """The inner source of an authentic non-empty plaintext, or None (malformed, counted)."""
    try:
        source, _ = inner_addresses(plaintext)
    except MalformedPacket:
        stats.malformed += 1
        return None
    return source


@dataclass
class _Handshake:
    """The client's initiation in flight."""

    key: crypto.EphemeralKey
    index: int
    message: bytes
    sent_at: float


@dataclass
class SecureClient:
    """One client: a session with the server, rekeyed as it ages."""

    server: Address
    psk: bytes
    config: SecureConfig = field(default_factory=SecureConfig)
    random: Random = os.urandom
    stats: SecureStats = field(default_factory=SecureStats)
    current: Session | None = None
    previous: Session | None = None
    previous_until: float = 0.0
    handshake: _Handshake | None = None
    queue: list[bytes] = field(default_factory=list)
    # When we first sent data after the last authentic packet from the server (None: heard).
    awaiting_reply_since: float | None = None

    def packet_from_tun(self, packet: bytes, now: float) -> list[Send]:
        self.stats.tun_packets += 1
        session = self.current
        if session is None or not session.usable(now, self.config):
            if len(self.queue) >= self.config.queue_packets:
                self.stats.no_session += 1
            else:
                self.queue.append(packet)
            return self._initiate(now) if self.handshake is None else []
        sends = [self._send(session.seal(packet))]
        if self.awaiting_reply_since is None:
            self.awaiting_reply_since = now
        if self.handshake is None and session.due_for_rekey(now, self.config):
            sends += self._initiate(now)
        return sends

    def datagram_received(self, data: bytes, addr: Address, now: float) -> Sequence[Send | Deliver]:
        if addr != self.server:
            self.stats.foreign += 1
            return []
        try:
            kind = secure_wire.message_type(data)
        except secure_wire.MalformedMessage:
            self.stats.malformed += 1
            return []
        if kind == secure_wire.DATA:
            return self._data(data, now)
        if kind == secure_wire.RESPONSE:
            return self._response(data, now)
        self.stats.unexpected += 1
        return []

    def expire(self, now: float) -> list[Send]:
        """Starts and retries handshakes; forgets the previous session after its grace."""
        if self.previous is not None and now >= self.previous_until:
            self.previous = None
        if self.handshake is not None:
            if now - self.handshake.sent_at >= self.config.handshake_retry_seconds:
                return self._initiate(now)
            return []
        session = self.current
        silent = self.awaiting_reply_since is not None and (
            now - self.awaiting_reply_since >= self.config.no_reply_seconds
        )
        if session is None or not session.usable(now, self.config) or silent:
            return self._initiate(now)
        return []

    def _send(self, datagram: bytes) -> Send:
        self.stats.sent += 1
        return Send(datagram, self.server)

    def _initiate(self, now: float) -> list[Send]:
        key = crypto.EphemeralKey(self.random(crypto.KEY_BYTES))
        index = _new_index(self.random, self._index_taken)
        hint = self.current.remote_index if self.current is not None else 0
        body = secure_wire.build_initiation(index, hint, key.public)
        message = body + crypto.handshake_mac(crypto.initiation_mac_key(self.psk), body)
        self.handshake = _Handshake(key, index, message, now)
        # A new handshake restarts the no-reply clock: its own answer is what we wait for.
        self.awaiting_reply_since = None
        self.stats.initiations_sent += 1
        return [self._send(message)]

    def _index_taken(self, index: int) -> bool:
        return any(s is not None and s.local_index == index for s in (self.current, self.previous))

    def _response(self, data: bytes, now: float) -> list[Send]:
        response = secure_wire.parse_response(data)
        handshake = self.handshake
        if handshake is None or response.receiver_index != handshake.index:
            self.stats.unknown_index += 1
            return []
        try:
            secret = handshake.key.shared_secret(response.ephemeral)
        except crypto.CryptoError:
            self.stats.unauthentic += 1
            return []
        ours = handshake.key.public
        keys = crypto.derive_session_keys(self.psk, secret, ours, response.ephemeral)
        if not crypto.mac_matches(keys.confirm, handshake.message + response.signed, response.mac):
            self.stats.unauthentic += 1
            return []
        session = Session(
            handshake.index,
            response.sender_index,
            keys.initiator_to_responder,
            keys.responder_to_initiator,
            now,
        )
        if self.current is not None:
            self.stats.rekeys += 1
            self.previous = self.current
            self.previous_until = now + self.config.previous_key_seconds
        self.current, self.handshake = session, None
        self.stats.handshakes += 1
        # What waited for the session goes now; with nothing waiting, a keepalive confirms
        # the session to the server, which only then starts using it.
        queued, self.queue = self.queue or [b""], []
        return [self._send(session.seal(packet)) for packet in queued]

    def _data(self, data: bytes, now: float) -> list[Send | Deliver]:
        index = int.from_bytes(data[4:8], "little")
        session = self.current
        if session is None or session.local_index != index:
            session = self.previous
            if session is None or session.local_index != index:
                self.stats.unknown_index += 1
                return []
        plaintext = session.open(data, now, self.config, self.stats)
        if plaintext is None:
            return []
        self.awaiting_reply_since = None
        actions: list[Send | Deliver] = []
        rekey = session is self.current and self.handshake is None
        if rekey and session.due_for_rekey(now, self.config):
            actions += self._initiate(now)
        if not plaintext:
            self.stats.keepalives += 1
            return actions
        if _inner_packet(plaintext, self.stats) is None:
            return actions
        self.stats.received += 1
        self.stats.delivered += 1
        actions.append(Deliver(plaintext))
        return actions


class _Peer:
    """A client as the server knows it: where it is, and its sessions."""

    __slots__ = (
        "addr",
        "current",
        "last_data_heard",
        "last_heard",
        "last_sent",
        "previous",
        "previous_until",
    )

    def __init__(self, addr: Address, now: float) -> None:
        self.addr = addr
        self.current: Session | None = None
        self.previous: Session | None = None
        self.previous_until = 0.0
        self.last_heard = now  # anything authentic
        self.last_data_heard = now  # a packet for the TUN
        self.last_sent = now


@dataclass
class _Pending:
    session: Session
    peer: _Peer | None  # the client that rekeys (from the peer hint); None: a new client


@dataclass
class SecureServer:
    """Many clients: sessions by index, clients by inner source address."""

    psk: bytes
    config: SecureConfig = field(default_factory=SecureConfig)
    random: Random = os.urandom
    stats: SecureStats = field(default_factory=SecureStats)
    # Local index -> session and its client, for confirmed sessions (current and previous).
    sessions: dict[int, tuple[Session, _Peer]] = field(default_factory=dict)
    pending: dict[int, _Pending] = field(default_factory=dict)
    routes: dict[IPAddress, _Peer] = field(default_factory=dict)
    peers: list[_Peer] = field(default_factory=list)
    _next_sweep: float = 0.0

    def __post_init__(self) -> None:
        self._initiation_key = crypto.initiation_mac_key(self.psk)

    def datagram_received(self, data: bytes, addr: Address, now: float) -> Sequence[Send | Deliver]:
        try:
            kind = secure_wire.message_type(data)
        except secure_wire.MalformedMessage:
            self.stats.malformed += 1
            return []
        if kind == secure_wire.DATA:
            return self._data(data, addr, now)
        if kind == secure_wire.INITIATION:
            return self._initiation(data, addr, now)
        self.stats.unexpected += 1
        return []

    def packet_from_tun(self, packet: bytes, now: float) -> list[Send]:
        self.stats.tun_packets += 1
        try:
            _, destination = inner_addresses(packet)
        except MalformedPacket:
            self.stats.malformed += 1
            return []
        peer = self.routes.get(destination)
        if peer is None:
            peer = self.peers[0] if len(self.peers) == 1 else None
            if peer is None:
                self.stats.no_route += 1
                return []
        session = peer.current
        if session is None or not session.usable(now, self.config):
            self.stats.no_session += 1
            return []
        self.stats.sent += 1
        peer.last_sent = now
        return [Send(session.seal(packet), peer.addr)]

    def expire(self, now: float) -> list[Send]:
        """Forgets idle clients, retired sessions and stale handshakes; sends keepalives
        to clients that sent data we have not answered (all once a second)."""
        if now < self._next_sweep:
            return []
        self._next_sweep = now + 1.0
        keepalives = []
        for peer in list(self.peers):
            if now - peer.last_heard > self.config.idle_timeout:
                self._forget(peer)
                continue
            if peer.previous is not None and now >= peer.previous_until:
                self.sessions.pop(peer.previous.local_index, None)
                peer.previous = None
            if (keepalive := self._keepalive(peer, now)) is not None:
                keepalives.append(keepalive)
        stale = now - self.config.pending_handshake_seconds
        for index in [i for i, p in self.pending.items() if p.session.created < stale]:
            del self.pending[index]
        return keepalives

    def _keepalive(self, peer: _Peer, now: float) -> Send | None:
        """An empty packet for a client whose data we have left unanswered for a while."""
        unanswered = peer.last_data_heard > peer.last_sent
        session = peer.current
        if not unanswered or now - peer.last_sent < self.config.keepalive_seconds:
            return None
        if session is None or not session.usable(now, self.config):
            return None
        peer.last_sent = now
        self.stats.sent += 1
        return Send(session.seal(b""), peer.addr)

    def _forget(self, peer: _Peer) -> None:
        self.peers.remove(peer)
        for session in (peer.current, peer.previous):
            if session is not None:
                self.sessions.pop(session.local_index, None)
        self.routes = {a: p for a, p in self.routes.items() if p is not peer}

    def _index_taken(self, index: int) -> bool:
        return index in self.sessions or index in self.pending

    def _initiation(self, data: bytes, addr: Address, now: float) -> list[Send]:
        initiation = secure_wire.parse_initiation(data)
        # The mac first: it costs a hash, the key agreement below an X25519.
        if not crypto.mac_matches(self._initiation_key, initiation.signed, initiation.mac):
            self.stats.unauthentic += 1
            return []
        key = crypto.EphemeralKey(self.random(crypto.KEY_BYTES))
        try:
            secret = key.shared_secret(initiation.ephemeral)
        except crypto.CryptoError:
            self.stats.unauthentic += 1
            return []
        keys = crypto.derive_session_keys(self.psk, secret, initiation.ephemeral, key.public)
        index = _new_index(self.random, self._index_taken)
        body = secure_wire.build_response(index, initiation.sender_index, key.public)
        response = body + crypto.handshake_mac(keys.confirm, data + body)
        session = Session(
            index,
            initiation.sender_index,
            keys.responder_to_initiator,
            keys.initiator_to_responder,
            now,
        )
        hinted = self.sessions.get(initiation.peer_hint)
        if len(self.pending) >= self.config.max_pending_handshakes:
            del self.pending[next(iter(self.pending))]  # the oldest
        self.pending[index] = _Pending(session, hinted[1] if hinted else None)
        self.stats.responses_sent += 1
        self.stats.sent += 1
        # To where the initiation came from; the client's known address moves only with data.
        return [Send(response, addr)]

    def _data(self, data: bytes, addr: Address, now: float) -> list[Deliver]:
        index = int.from_bytes(data[4:8], "little")
        known = self.sessions.get(index)
        pending = None if known is not None else self.pending.get(index)
        if known is not None:
            session: Session = known[0]
        elif pending is not None:
            session = pending.session
        else:
            self.stats.unknown_index += 1
            return []
        plaintext = session.open(data, now, self.config, self.stats)
        if plaintext is None:
            return []
        peer = known[1] if known is not None else self._confirm(index, now, addr)
        if peer.addr != addr:
            peer.addr = addr
            self.stats.roamed += 1
        peer.last_heard = now
        if not plaintext:
            self.stats.keepalives += 1
            return []
        source = _inner_packet(plaintext, self.stats)
        if source is None:
            return []
        if self.routes.get(source) is not peer:
            self.routes[source] = peer
        peer.last_data_heard = now
        self.stats.received += 1
        self.stats.delivered += 1
        return [Deliver(plaintext)]

    def _confirm(self, index: int, now: float, addr: Address) -> _Peer:
        """The client sent on a pending session: it becomes that client's current one."""
        pending = self.pending.pop(index)
        peer = pending.peer if pending.peer in self.peers else None
        if peer is None:
            peer = _Peer(addr, now)
            self.peers.append(peer)
        if peer.current is not None:
            self.stats.rekeys += 1
            if peer.previous is not None:
                self.sessions.pop(peer.previous.local_index, None)
            peer.previous = peer.current
            peer.previous_until = now + self.config.previous_key_seconds
        peer.current = pending.session
        self.sessions[index] = (pending.session, peer)
        self.stats.handshakes += 1
        return peer
