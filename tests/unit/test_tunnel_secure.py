"""The AEAD mode's client and server talking in memory: handshake, data, rekeys, replays,
tampering, roaming, many clients; and a fuzz property over both ends."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsim.testing import ipv4_packet
from vpnsim.tunnel import secure_wire
from vpnsim.tunnel.crypto import REJECT_AFTER_MESSAGES
from vpnsim.tunnel.protocol import Address, Deliver, Send
from vpnsim.tunnel.secure import SecureClient, SecureConfig, SecureServer

SERVER: Address = ("10.9.0.11", 9090)
CLIENT: Address = ("10.9.0.5", 40000)
ROAMED: Address = ("10.9.0.5", 40001)
PSK = hashlib.sha256(b"lab psk").digest()
U_TUN, V = "192.168.53.99", "192.168.60.5"


class SeededRandom:
    """Deterministic bytes for keys and indices: one SHA-256 block per call."""

    def __init__(self, seed: str) -> None:
        self.seed = seed.encode()
        self.calls = itertools.count()

    def __call__(self, n: int) -> bytes:
        return hashlib.sha256(self.seed + str(next(self.calls)).encode()).digest()[:n]


def make_pair(
    config: SecureConfig | None = None, client_psk: bytes = PSK
) -> tuple[SecureClient, SecureServer]:
    config = config or SecureConfig()
    client = SecureClient(SERVER, client_psk, config, SeededRandom("client"))
    server = SecureServer(PSK, config, SeededRandom("server"))
    return client, server


def sends(actions: Sequence[Send | Deliver]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def delivered(actions: Sequence[Send | Deliver]) -> list[bytes]:
    return [a.packet for a in actions if isinstance(a, Deliver)]


def handshake(
    client: SecureClient, server: SecureServer, now: float = 0.0, addr: Address = CLIENT
) -> None:
    """The client's first expire starts the handshake; run it to the server's confirmation."""
    [initiation] = client.expire(now)
    [response] = server.datagram_received(initiation.datagram, addr, now)
    assert isinstance(response, Send) and response.addr == addr
    [confirm] = client.datagram_received(response.datagram, SERVER, now)
    assert isinstance(confirm, Send)
    assert server.datagram_received(confirm.datagram, addr, now) == []


def to_server(client: SecureClient, packet: bytes, now: float = 0.0) -> Send:
    [datagram] = sends(client.packet_from_tun(packet, now))
    return datagram


def to_client(server: SecureServer, packet: bytes, now: float = 0.0) -> Send:
    [datagram] = server.packet_from_tun(packet, now)
    return datagram


def u_to_v(n: int) -> bytes:
    return ipv4_packet(U_TUN, V, b"u->v %d" % n)


def v_to_u(n: int) -> bytes:
    return ipv4_packet(V, U_TUN, b"v->u %d" % n)


def test_the_handshake_is_two_60_byte_messages_and_a_keepalive() -> None:
    client, server = make_pair()
    [initiation] = client.expire(0.0)
    assert (len(initiation.datagram), initiation.datagram[0], initiation.addr) == (60, 1, SERVER)
    [response] = server.datagram_received(initiation.datagram, CLIENT, 0.0)
    assert isinstance(response, Send)
    assert (len(response.datagram), response.datagram[0], response.addr) == (60, 2, CLIENT)
    [keepalive] = client.datagram_received(response.datagram, SERVER, 0.0)
    assert isinstance(keepalive, Send)
    assert (len(keepalive.datagram), keepalive.datagram[0]) == (16 + 16, 4)
    assert server.datagram_received(keepalive.datagram, CLIENT, 0.0) == []
    assert (client.stats.handshakes, server.stats.handshakes, server.stats.keepalives) == (1, 1, 1)
    assert len(server.peers) == 1 and server.peers[0].addr == CLIENT
    assert client.expire(0.5) == [] and server.expire(0.5) == []


def test_data_crosses_both_ways_encrypted_and_the_server_learns_the_route() -> None:
    client, server = make_pair()
    handshake(client, server)
    datagram = to_server(client, u_to_v(1))
    assert b"u->v 1" not in datagram.datagram
    assert len(datagram.datagram) == len(u_to_v(1)) + 32
    assert server.datagram_received(datagram.datagram, CLIENT, 0.1) == [Deliver(u_to_v(1))]
    reply = to_client(server, v_to_u(1), 0.1)
    assert reply.addr == CLIENT and b"v->u 1" not in reply.datagram
    assert client.datagram_received(reply.datagram, SERVER, 0.1) == [Deliver(v_to_u(1))]
    assert set(server.routes) == {IPv4Address(U_TUN)}
    assert (client.stats.sent, client.stats.received, client.stats.delivered) == (3, 1, 1)
    assert (server.stats.sent, server.stats.received, server.stats.delivered) == (2, 1, 1)


def test_packets_read_before_the_handshake_wait_for_it_and_then_go_in_order() -> None:
    client, server = make_pair()
    [initiation] = client.packet_from_tun(u_to_v(0), 0.0)
    assert initiation.datagram[0] == secure_wire.INITIATION
    assert client.packet_from_tun(u_to_v(1), 0.0) == []  # one handshake in flight is enough
    [response] = server.datagram_received(initiation.datagram, CLIENT, 0.0)
    assert isinstance(response, Send)
    queued = sends(client.datagram_received(response.datagram, SERVER, 0.0))
    got = [p for s in queued for p in delivered(server.datagram_received(s.datagram, CLIENT, 0))]
    assert got == [u_to_v(0), u_to_v(1)]


def test_a_replayed_data_packet_is_dropped_and_counted() -> None:
    client, server = make_pair()
    handshake(client, server)
    datagram = to_server(client, u_to_v(1)).datagram
    assert delivered(server.datagram_received(datagram, CLIENT, 0.0)) == [u_to_v(1)]
    assert server.datagram_received(datagram, CLIENT, 0.0) == []
    assert server.datagram_received(datagram, ROAMED, 0.0) == []
    assert (server.stats.replayed, server.stats.delivered, server.stats.roamed) == (2, 1, 0)


def test_reordered_packets_within_the_window_are_all_delivered() -> None:
    client, server = make_pair()
    handshake(client, server)
    datagrams = [to_server(client, u_to_v(n)).datagram for n in range(5)]
    order = [4, 0, 3, 1, 2]
    got = [delivered(server.datagram_received(datagrams[i], CLIENT, 0.0)) for i in order]
    assert got == [[u_to_v(i)] for i in order]


def test_every_single_byte_change_of_a_data_packet_is_dropped() -> None:
    client, server = make_pair()
    handshake(client, server)
    datagram = to_server(client, u_to_v(1)).datagram
    for position in range(len(datagram)):
        tampered = bytearray(datagram)
        tampered[position] ^= 0x01
        assert server.datagram_received(bytes(tampered), CLIENT, 0.0) == []
    stats = server.stats
    # Type/reserved bytes: malformed; index: names no session; counter 1 -> 0: the keepalive's,
    # seen; any other counter, body or tag byte: forged.
    assert (stats.malformed, stats.unknown_index, stats.replayed, stats.unauthentic) == (
        4,
        4,
        1,
        len(datagram) - 9,
    )
    assert delivered(server.datagram_received(datagram, CLIENT, 0.0)) == [u_to_v(1)]


def test_a_client_with_another_psk_gets_no_answer() -> None:
    client, server = make_pair(client_psk=hashlib.sha256(b"another").digest())
    [initiation] = client.expire(0.0)
    assert server.datagram_received(initiation.datagram, CLIENT, 0.0) == []
    assert (server.stats.unauthentic, server.stats.responses_sent, len(server.pending)) == (1, 0, 0)


def test_a_forged_response_is_refused_by_the_client() -> None:
    client, _ = make_pair()
    other = SecureServer(hashlib.sha256(b"impostor").digest(), random=SeededRandom("x"))
    [initiation] = client.expire(0.0)
    # The impostor cannot even check the initiation; a response built with the client's index
    # but the wrong PSK fails the confirm mac.
    index = int.from_bytes(initiation.datagram[4:8], "little")
    body = secure_wire.build_response(77, index, bytes([9]) * 32)
    assert client.datagram_received(body + bytes(16), SERVER, 0.0) == []
    assert other.datagram_received(initiation.datagram, CLIENT, 0.0) == []
    assert (client.stats.unauthentic, client.current) == (1, None)


def test_a_rekey_mid_stream_loses_no_packet_in_flight_either_way() -> None:
    client, server = make_pair(SecureConfig(rekey_after_packets=4))
    handshake(client, server)  # the confirming keepalive is the session's first packet
    up = [to_server(client, u_to_v(n)).datagram for n in range(2)]
    [last_old, initiation] = client.packet_from_tun(u_to_v(2), 0.0)  # the 4th starts a rekey
    assert initiation.datagram[0] == secure_wire.INITIATION
    [response] = server.datagram_received(initiation.datagram, CLIENT, 0.0)
    assert isinstance(response, Send)
    down_old = to_client(server, v_to_u(0)).datagram  # still the old session: unconfirmed
    [first_new] = client.datagram_received(response.datagram, SERVER, 0.0)  # keepalive, new keys
    assert isinstance(first_new, Send)
    up_new = to_server(client, u_to_v(3)).datagram
    # The server sees the new session first, then the old one's packets still in flight.
    assert server.datagram_received(first_new.datagram, CLIENT, 0.0) == []
    got = [server.datagram_received(d, CLIENT, 0.0) for d in (up_new, *up, last_old.datagram)]
    assert [delivered(g) for g in got] == [[u_to_v(3)], [u_to_v(0)], [u_to_v(1)], [u_to_v(2)]]
    down_new = to_client(server, v_to_u(1)).datagram
    assert delivered(client.datagram_received(down_new, SERVER, 0.0)) == [v_to_u(1)]
    assert delivered(client.datagram_received(down_old, SERVER, 0.0)) == [v_to_u(0)]
    assert (client.stats.rekeys, server.stats.rekeys, len(server.peers)) == (1, 1, 1)
    assert down_new[4:8] != down_old[4:8]  # a new session index


def test_the_previous_session_is_forgotten_after_its_grace() -> None:
    config = SecureConfig(rekey_after_seconds=5.0, previous_key_seconds=2.0)
    client, server = make_pair(config)
    handshake(client, server)
    old = to_server(client, u_to_v(0), 1.0).datagram
    [_, initiation] = client.packet_from_tun(u_to_v(1), 5.0)  # old enough: rekey
    [response] = server.datagram_received(initiation.datagram, CLIENT, 5.0)
    assert isinstance(response, Send)
    [confirm] = sends(client.datagram_received(response.datagram, SERVER, 5.0))
    server.datagram_received(confirm.datagram, CLIENT, 5.0)
    assert server.expire(7.5) == []
    assert server.datagram_received(old, CLIENT, 7.5) == []
    assert server.stats.unknown_index == 1


def test_a_replayed_initiation_displaces_no_session() -> None:
    client, server = make_pair()
    [initiation] = client.expire(0.0)
    [response] = server.datagram_received(initiation.datagram, CLIENT, 0.0)
    assert isinstance(response, Send)
    [confirm] = client.datagram_received(response.datagram, SERVER, 0.0)
    assert isinstance(confirm, Send)
    server.datagram_received(confirm.datagram, CLIENT, 0.0)
    # An eavesdropper replays the initiation: the server answers, but nobody can confirm.
    [again] = server.datagram_received(initiation.datagram, ("10.9.0.66", 5), 1.0)
    assert isinstance(again, Send)
    assert client.datagram_received(again.datagram, SERVER, 1.0) == []  # no handshake pending
    datagram = to_server(client, u_to_v(1), 1.0).datagram
    assert delivered(server.datagram_received(datagram, CLIENT, 1.0)) == [u_to_v(1)]
    assert to_client(server, v_to_u(1), 1.0).addr == CLIENT
    assert (server.stats.handshakes, len(server.pending)) == (1, 1)
    server.expire(40.0)
    assert server.pending == {}


def test_the_server_follows_a_client_that_roams_once_it_sends_authentic_data() -> None:
    client, server = make_pair()
    handshake(client, server)
    assert delivered(server.datagram_received(to_server(client, u_to_v(1)).datagram, ROAMED, 1))
    assert (server.peers[0].addr, server.stats.roamed) == (ROAMED, 1)
    assert to_client(server, v_to_u(1), 1.0).addr == ROAMED
    # Garbage and forgeries from a third address move nothing.
    forged = bytearray(to_server(client, u_to_v(2)).datagram)
    forged[-1] ^= 0x80
    assert server.datagram_received(bytes(forged), ("10.9.0.66", 7), 2.0) == []
    assert server.datagram_received(b"\x04" + bytes(40), ("10.9.0.66", 7), 2.0) == []
    assert (server.peers[0].addr, server.stats.roamed) == (ROAMED, 1)


def test_the_client_drops_datagrams_from_anyone_but_its_server() -> None:
    client, server = make_pair()
    handshake(client, server)
    reply = to_client(server, v_to_u(1)).datagram
    assert client.datagram_received(reply, ("10.9.0.66", 9090), 0.0) == []
    assert client.stats.foreign == 1
    assert delivered(client.datagram_received(reply, SERVER, 0.0)) == [v_to_u(1)]


def test_many_clients_are_routed_by_their_inner_address() -> None:
    server = SecureServer(PSK, random=SeededRandom("server"))
    clients = {}
    for n, (tun_address, addr) in enumerate(
        [("192.168.53.5", ("10.9.0.5", 1000)), ("192.168.53.6", ("10.9.0.6", 2000))]
    ):
        client = SecureClient(SERVER, PSK, random=SeededRandom(f"client {n}"))
        handshake(client, server, addr=addr)
        hello = to_server(client, ipv4_packet(tun_address, V, b"hello")).datagram
        assert delivered(server.datagram_received(hello, addr, 0.0))
        clients[tun_address] = (client, addr)
    for tun_address, (client, addr) in clients.items():
        packet = ipv4_packet(V, tun_address, b"to " + tun_address.encode())
        reply = to_client(server, packet)
        assert reply.addr == addr
        assert delivered(client.datagram_received(reply.datagram, SERVER, 0.0)) == [packet]
    assert server.packet_from_tun(ipv4_packet(V, "192.168.53.7"), 0.0) == []
    assert (server.stats.no_route, len(server.peers)) == (1, 2)


def test_a_restarted_client_takes_its_routes_and_the_silent_one_is_forgotten() -> None:
    config = SecureConfig(idle_timeout=30.0)
    server = SecureServer(PSK, config, SeededRandom("server"))
    first = SecureClient(SERVER, PSK, config, SeededRandom("first"))
    handshake(first, server)
    server.datagram_received(to_server(first, u_to_v(1)).datagram, CLIENT, 0.0)
    second = SecureClient(SERVER, PSK, config, SeededRandom("second"))  # restarted, new port
    handshake(second, server, now=10.0, addr=ROAMED)
    server.datagram_received(to_server(second, u_to_v(2), 10.0).datagram, ROAMED, 10.0)
    assert to_client(server, v_to_u(1), 10.0).addr == ROAMED
    server.expire(35.0)
    assert (len(server.peers), server.peers[0].addr, len(server.sessions)) == (1, ROAMED, 1)


def test_a_lost_response_is_retried_with_a_new_initiation_and_the_late_one_ignored() -> None:
    client, server = make_pair()
    [first] = client.expire(0.0)
    [lost] = server.datagram_received(first.datagram, CLIENT, 0.0)
    assert client.expire(0.5) == []
    [retry] = client.expire(1.0)
    assert retry.datagram != first.datagram
    [response] = server.datagram_received(retry.datagram, CLIENT, 1.0)
    assert isinstance(lost, Send) and isinstance(response, Send)
    assert client.datagram_received(lost.datagram, SERVER, 1.1) == []
    assert client.stats.unknown_index == 1
    assert sends(client.datagram_received(response.datagram, SERVER, 1.1))
    assert (client.stats.initiations_sent, client.stats.handshakes) == (2, 1)


def test_a_client_that_hears_nothing_after_sending_handshakes_again() -> None:
    client, server = make_pair(SecureConfig(no_reply_seconds=10.0))
    handshake(client, server)
    to_server(client, u_to_v(1), 1.0)  # the server restarted: nobody answers
    assert client.expire(10.9) == []
    [initiation] = client.expire(11.0)
    assert initiation.datagram[0] == secure_wire.INITIATION


def test_one_way_traffic_gets_server_keepalives_and_no_needless_handshake() -> None:
    client, server = make_pair(SecureConfig(keepalive_seconds=5.0, no_reply_seconds=10.0))
    handshake(client, server)
    keepalives = []
    for second in range(1, 31):  # a UDP stream U -> V that V never answers
        now = float(second)
        datagram = to_server(client, u_to_v(second), now).datagram
        assert delivered(server.datagram_received(datagram, CLIENT, now)) == [u_to_v(second)]
        for send in server.expire(now):
            keepalives.append(second)
            assert client.datagram_received(send.datagram, SERVER, now) == []
        assert client.expire(now) == []
    assert keepalives == [5, 10, 15, 20, 25, 30]
    assert (client.stats.keepalives, client.stats.initiations_sent) == (6, 1)


def test_the_server_sends_no_keepalive_to_a_client_it_answers() -> None:
    client, server = make_pair(SecureConfig(keepalive_seconds=5.0))
    handshake(client, server)
    for second in range(1, 31):
        now = float(second)
        server.datagram_received(to_server(client, u_to_v(second), now).datagram, CLIENT, now)
        to_client(server, v_to_u(second), now)
        assert server.expire(now) == []


def test_an_expired_session_sends_nothing_and_receives_nothing() -> None:
    client, server = make_pair(SecureConfig(rekey_after_seconds=900.0, reject_after_seconds=180.0))
    handshake(client, server)
    late = to_server(client, u_to_v(1), 179.0).datagram
    assert server.datagram_received(late, CLIENT, 180.0) == []
    assert server.packet_from_tun(v_to_u(1), 180.0) == []
    assert (server.stats.expired, server.stats.no_session) == (1, 1)


def test_each_data_packet_of_a_session_has_the_next_counter_so_no_nonce_repeats() -> None:
    client, server = make_pair()
    handshake(client, server)  # the keepalive had counter 0
    datagrams = [to_server(client, u_to_v(n)).datagram for n in range(100)]
    headers = [secure_wire.parse_data_header(d) for d in datagrams]
    assert [h.counter for h in headers] == list(range(1, 101))
    assert len({h.receiver_index for h in headers}) == 1


def test_a_session_that_used_up_its_counters_is_never_used_again() -> None:
    client, server = make_pair()
    handshake(client, server)
    assert client.current is not None
    client.current.sent = REJECT_AFTER_MESSAGES
    [initiation] = client.packet_from_tun(u_to_v(1), 0.0)  # queued; a new session is asked for
    assert (initiation.datagram[0], client.queue) == (secure_wire.INITIATION, [u_to_v(1)])


def test_an_authentic_packet_that_is_not_ip_is_dropped_as_malformed() -> None:
    client, server = make_pair()
    handshake(client, server)
    assert server.datagram_received(to_server(client, b"\x99 not ip").datagram, CLIENT, 0) == []
    assert (server.stats.malformed, server.stats.delivered) == (1, 0)


# The fuzz property: whatever the outer network does, both ends deliver only what the other
# side's TUN gave it, each packet at most once, and never raise.


@dataclass
class Wire:
    """Both ends and what is between them: datagrams in flight (which the fuzzer delivers,
    reorders or drops) and every datagram ever sent (which it replays, cuts or corrupts)."""

    client: SecureClient
    server: SecureServer
    in_flight: list[Send] = field(default_factory=list)
    seen: list[Send] = field(default_factory=list)
    sent_by_client: set[bytes] = field(default_factory=set)
    sent_by_server: set[bytes] = field(default_factory=set)
    got_by_client: list[bytes] = field(default_factory=list)
    got_by_server: list[bytes] = field(default_factory=list)

    def sent(self, actions: Sequence[Send | Deliver]) -> None:
        self.in_flight += sends(actions)
        self.seen += sends(actions)

    def arrive(self, data: bytes, to_server: bool, addr: Address, now: float) -> None:
        if to_server:
            actions = self.server.datagram_received(data, addr, now)
            self.got_by_server += delivered(actions)
        else:
            actions = self.client.datagram_received(data, SERVER, now)
            self.got_by_client += delivered(actions)
        self.sent(actions)


operation = st.one_of(
    st.tuples(st.just("client tun")),
    st.tuples(st.just("server tun")),
    st.tuples(st.just("deliver"), st.integers(0, 3)),  # 0: in order; more: reordered
    st.tuples(st.just("drop"), st.integers(0, 3)),
    st.tuples(st.just("replay"), st.integers(0, 10**6), st.booleans()),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.integers(0, 100)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("random"), st.binary(max_size=120), st.booleans()),
    # Well-framed messages with random contents: each type, the length it must have.
    st.tuples(st.just("shaped"), st.sampled_from([1, 2, 4]), st.binary(min_size=56, max_size=56)),
    st.tuples(st.just("time"), st.floats(0.0, 30.0)),
    st.tuples(st.just("timers")),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.tuples(operation, st.booleans()), min_size=5, max_size=80))
def test_fuzzed_datagrams_never_raise_nor_deliver_anything_unauthentic(
    ops: list[tuple[tuple[object, ...], bool]],
) -> None:
    client, server = make_pair(SecureConfig(rekey_after_packets=4, rekey_after_seconds=20.0))
    wire = Wire(client, server)
    now, serial = 0.0, itertools.count()
    wire.sent(client.expire(now))
    for op, settle in ops:
        kind, args = op[0], op[1:]
        if kind == "client tun":
            packet = ipv4_packet(U_TUN, V, b"%d" % next(serial))
            wire.sent_by_client.add(packet)
            wire.sent(client.packet_from_tun(packet, now))
        elif kind == "server tun":
            packet = ipv4_packet(V, U_TUN, b"%d" % next(serial))
            wire.sent_by_server.add(packet)
            wire.sent(server.packet_from_tun(packet, now))
        elif kind == "time":
            now += float(args[0])  # type: ignore[arg-type]
        elif kind == "timers":
            wire.sent(client.expire(now) + server.expire(now))
        elif kind == "random":
            data, at_server = args
            assert isinstance(data, bytes)
            wire.arrive(data, bool(at_server), CLIENT, now)
        elif kind == "shaped":
            message_type, body = args
            assert isinstance(message_type, int) and isinstance(body, bytes)
            for to_server in (True, False):
                wire.arrive(bytes([message_type, 0, 0, 0]) + body, to_server, CLIENT, now)
        elif kind in ("deliver", "drop") and wire.in_flight:
            send = wire.in_flight.pop(int(args[0]) % len(wire.in_flight))  # type: ignore[call-overload]
            if kind == "deliver":
                wire.arrive(send.datagram, send.addr == SERVER, CLIENT, now)
        elif kind in ("replay", "truncate", "flip") and wire.seen:
            send = wire.seen[int(args[0]) % len(wire.seen)]  # type: ignore[call-overload]
            data = send.datagram
            if kind == "truncate":
                data = data[: int(args[1]) % len(data)]  # type: ignore[call-overload]
            elif kind == "flip":
                at = int(args[1]) % len(data)  # type: ignore[call-overload]
                data = data[:at] + bytes([data[at] ^ int(args[2])]) + data[at + 1 :]  # type: ignore[call-overload]
            roamed = kind == "replay" and bool(args[1])
            wire.arrive(data, send.addr == SERVER, ROAMED if roamed else CLIENT, now)
        # A quiet network for a moment: what is in flight arrives in order (and the answers).
        for _ in range(20 if settle else 0):
            if not wire.in_flight:
                break
            send = wire.in_flight.pop(0)
            wire.arrive(send.datagram, send.addr == SERVER, CLIENT, now)
    assert set(wire.got_by_server) <= wire.sent_by_client
    assert set(wire.got_by_client) <= wire.sent_by_server
    assert len(set(wire.got_by_server)) == len(wire.got_by_server)  # no packet twice
    assert len(set(wire.got_by_client)) == len(wire.got_by_client)
    assert server.stats.delivered == len(wire.got_by_server)
