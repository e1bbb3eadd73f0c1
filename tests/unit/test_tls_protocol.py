"""TLS mode's sans-IO client and server, talking to each other in memory (no socket, no TUN):
server and client authentication, many clients, and a server that survives bad peers."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsim import pki
from vpnsim.tunnel.shadow import read_shadow, shadow_line
from vpnsim.tunnel.tls_channel import TlsChannel, server_context, verify_hostname_context
from vpnsim.tunnel.tls_protocol import (
    AddressPool,
    Credentials,
    TlsClientProtocol,
    TlsServerProtocol,
)

NAME = "vpnserver.lab"
NOW = 1000.0


def ipv4(src: str, dst: str, payload: bytes = b"x" * 8) -> bytes:
    total = 20 + len(payload)
    header = bytes([0x45, 0, total >> 8, total & 0xFF, 0, 0, 0, 0, 64, 17, 0, 0])
    return header + ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + payload


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    server = pki.issue(folder, NAME, ips=["10.0.2.8"])
    other = pki.issue(tmp_path_factory.mktemp("other-ca"), NAME)  # signed by another CA
    shadow = folder / "shadow"
    shadow.write_text(shadow_line("seed", "dees", salt="lab") + "\n")
    return {
        "ca": folder / "ca.crt",
        "cert": server.cert,
        "key": server.key,
        "impostor_cert": other.cert,
        "impostor_key": other.key,
        "shadow": shadow,
    }


def make_server(
    material: dict[str, Path], *, impostor: bool = False, **kw: object
) -> TlsServerProtocol:
    prefix = "impostor_" if impostor else ""
    context = server_context(str(material[f"{prefix}cert"]), str(material[f"{prefix}key"]))
    users = read_shadow(material["shadow"])
    pool = AddressPool("192.168.53.1/24", reserved=("192.168.53.1",))
    return TlsServerProtocol(context, users, pool, **kw)  # type: ignore[arg-type]


def make_client(
    material: dict[str, Path], name: str = NAME, password: str = "dees", user: str = "seed"
) -> TlsClientProtocol:
    context = verify_hostname_context(str(material["ca"]))
    client = TlsClientProtocol(context, name, Credentials(user, password))
    client.start()
    return client


def pump(client: TlsClientProtocol, server: TlsServerProtocol, conn: int) -> list[bytes]:
    """Move bytes both ways until neither side has any; returns packets the server delivered."""
    delivered = []
    while client.channel.out or (
        server.connections.get(conn, None) and server.connections[conn].channel.out
    ):
        if client.channel.out:
            data = bytes(client.channel.out)
            client.channel.sent(len(data))
            delivered += server.data_received(conn, data, NOW)
        c = server.connections.get(conn)
        if c is not None and c.channel.out:
            data = bytes(c.channel.out)
            c.channel.sent(len(data))
            client.data_received(data, NOW)
    return delivered


def test_client_logs_in_gets_an_address_and_carries_packets_both_ways(
    material: dict[str, Path],
) -> None:
    server = make_server(material)
    client = make_client(material)
    server.connection_made(1, "10.0.2.7:40000", NOW)
    pump(client, server, 1)
    assert client.state == "open"
    assert client.assigned == "192.168.53.2/24"
    packet = ipv4("192.168.53.2", "192.168.60.101")
    client.packet_from_tun(packet, NOW)
    assert pump(client, server, 1) == [packet]
    reply = ipv4("192.168.60.101", "192.168.53.2", b"pong" * 100)
    server.packet_from_tun(reply, NOW)
    got = []
    c = server.connections[1]
    got += client.data_received(bytes(c.channel.out), NOW)
    assert got == [reply]
    assert server.stats.logins == 1 and server.stats.sent == 1 and server.stats.received == 1


def connect(server: TlsServerProtocol, client: TlsClientProtocol, conn: int) -> None:
    server.connection_made(conn, f"10.0.2.{conn}:4000", NOW)
    pump(client, server, conn)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(1, 400), min_size=1, max_size=40),
    v6=st.booleans(),
)
def test_packets_come_out_whole_however_the_stream_is_cut(
    sizes: list[int], cuts: list[int], v6: bool
) -> None:
    packets = [ipv6(n) if v6 else ipv4("10.0.0.1", "10.0.0.2", b"p" * n) for n in sizes]
    stream = b"".join(packets)
    channel = TlsChannel(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), server_side=False)
    found, at = [], 0
    for cut in cuts * (len(stream) // max(sum(cuts), 1) + 1):
        channel._plain += stream[at : at + cut]
        at += cut
        found += channel.packets()
    assert found == packets


def ipv6(payload: int) -> bytes:
    return bytes([0x60, 0, 0, 0, payload >> 8, payload & 0xFF, 17, 64]) + bytes(32) + b"q" * payload


@pytest.mark.parametrize(
    ("name", "ca", "kind", "says"),
    [
        ("other.lab", "ca", "wrong-name", "is not valid for the name 'other.lab'"),
        (NAME, "impostor", "untrusted", "is not signed by a trusted CA"),
    ],
)
def test_the_client_refuses_a_server_and_says_which_way(
    material: dict[str, Path], name: str, ca: str, kind: str, says: str
) -> None:
    server = make_server(material, impostor=ca == "impostor")
    client = make_client(material, name=name)
    connect(server, client, 1)
    assert client.state == "closed" and client.closed_kind == kind
    assert says in (client.closed_reason or "")
    client.packet_from_tun(ipv4("192.168.53.2", "192.168.60.101"), NOW)
    assert client.channel.out == bytearray()  # nothing leaves a refused client
    assert server.stats.closed == {"tls": 1} and server.stats.logins == 0


def test_a_wrong_password_is_refused_with_a_message_on_both_sides(
    material: dict[str, Path],
) -> None:
    server = make_server(material)
    client = make_client(material, password="wrong")
    connect(server, client, 1)
    assert client.closed_reason == "the server refused the login: wrong user name or password"
    assert server.stats.closed == {"login": 1}
    assert "10.0.2.1:4000: closed (login): login refused for user 'seed'" in server.log
    assert server.routes == {} and server.pool is not None and server.pool.take() is not None


def test_garbage_ends_only_its_own_connection(material: dict[str, Path]) -> None:
    server = make_server(material)
    good, bad = make_client(material), make_client(material)
    connect(server, good, 1)
    connect(server, bad, 2)
    assert (good.assigned, bad.assigned) == ("192.168.53.2/24", "192.168.53.3/24")
    bad.channel.write(b"\xff" * 40)  # after login: not an IP packet
    pump(bad, server, 2)
    server.connection_made(3, "10.0.2.9:5000", NOW)
    assert server.data_received(3, b"GET / HTTP/1.0\r\n\r\n", NOW) == []  # plain TCP
    server.connection_made(4, "10.0.2.9:5001", NOW)
    assert server.data_received(4, b"\x16\x03\x01", NOW) == []  # a hello cut short: silence
    server.expire(NOW + 11)
    assert server.stats.closed == {"garbage": 1, "tls": 1, "timeout": 1}
    assert all(server.finished(k) for k in (2, 3, 4))  # the driver closes them now
    for conn in (2, 3, 4):
        server.connection_lost(conn)
    assert list(server.connections) == [1]
    packet = ipv4("192.168.53.2", "192.168.60.101")
    good.packet_from_tun(packet, NOW)
    assert pump(good, server, 1) == [packet]


def test_a_client_that_stops_reading_loses_packets_not_the_others(
    material: dict[str, Path],
) -> None:
    server = make_server(material, send_limit=10_000)
    reader, mute = make_client(material), make_client(material)
    connect(server, reader, 1)
    connect(server, mute, 2)
    got = []
    for _ in range(20):
        server.packet_from_tun(ipv4("192.168.60.101", "192.168.53.3", b"m" * 1000), NOW)
        server.packet_from_tun(ipv4("192.168.60.101", "192.168.53.2", b"r" * 1000), NOW)
        out = server.connections[1].channel.out
        got += reader.data_received(bytes(out), NOW)
        server.connections[1].channel.sent(len(out))
    # A record of a 1020-byte packet is 1042 bytes: the 10th passes the 10 000 mark.
    assert server.stats.send_buffer_full == 10
    assert server.log[-1] == "10.0.2.2:4000: not reading, 10420 bytes queued: dropping its packets"
    assert len(server.connections[2].channel.out) == 10 * 1042
    assert len(got) == 20


def test_a_client_cannot_take_another_clients_address(material: dict[str, Path]) -> None:
    server = make_server(material)
    first, second = make_client(material), make_client(material)
    connect(server, first, 1)
    connect(server, second, 2)
    second.packet_from_tun(ipv4("192.168.53.2", "192.168.60.101"), NOW)  # first's address
    assert pump(second, server, 2) == []
    assert server.stats.spoofed == 1 and server.routes[ipaddress.ip_address("192.168.53.2")] == 1


def test_the_pool_running_dry_refuses_with_a_reason(material: dict[str, Path]) -> None:
    server = make_server(material)
    server.pool = AddressPool("192.168.53.0/30", reserved=("192.168.53.1",))
    first, second = make_client(material), make_client(material)
    connect(server, first, 1)
    connect(server, second, 2)
    assert first.state == "open" and first.assigned == "192.168.53.2/30"
    assert second.closed_reason == "the server refused the login: no free TUN address"


def test_without_a_user_file_no_login_is_asked(material: dict[str, Path]) -> None:
    context = server_context(str(material["cert"]), str(material["key"]))
    server = TlsServerProtocol(context)
    client = TlsClientProtocol(verify_hostname_context(str(material["ca"])), NAME)
    client.start()
    connect(server, client, 1)
    assert client.state == "open" and client.assigned is None
    packet = ipv4("192.168.53.5", "192.168.60.101")
    client.packet_from_tun(packet, NOW)
    assert pump(client, server, 1) == [packet]
    reply = ipv4("192.168.60.101", "192.168.53.5")
    server.packet_from_tun(reply, NOW)  # learnt from the source address
    assert client.data_received(bytes(server.connections[1].channel.out), NOW) == [reply]


def test_tls_1_2_is_enough(material: dict[str, Path]) -> None:
    server = make_server(material)
    server.context.maximum_version = ssl.TLSVersion.TLSv1_2
    client = make_client(material)
    connect(server, client, 1)
    assert client.state == "open" and client.channel.tls.version() == "TLSv1.2"


def test_an_address_a_client_chose_itself_is_not_handed_out(material: dict[str, Path]) -> None:
    server = make_server(material)
    own = make_client(material)
    connect(server, own, 1)  # assigned .2, but configured with .5 (--tun-address)
    own.packet_from_tun(ipv4("192.168.53.5", "192.168.60.101"), NOW)
    pump(own, server, 1)
    later = [make_client(material) for _ in range(4)]
    for conn, client in enumerate(later, 2):
        connect(server, client, conn)
    assert [c.assigned for c in later] == [f"192.168.53.{n}/24" for n in (3, 4, 6, 7)]


def test_a_server_that_closes_in_the_handshake_is_a_lost_connection(
    material: dict[str, Path],
) -> None:
    # A plain TCP server (a student's TLS-less submission) closes after the ClientHello.
    client = make_client(material)
    assert client.channel.out  # the ClientHello
    client.data_received(b"", NOW)
    assert (client.state, client.closed_kind) == ("closed", "eof")
    assert client.closed_reason == "the peer closed the connection in the handshake"


class _HandshakeEndsWith:
    """An SSLObject whose handshake meets the given error (which one a build raises varies)."""

    def __init__(self, error: ssl.SSLError) -> None:
        self.error = error

    def do_handshake(self) -> None:
        raise self.error

    def unwrap(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
        ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)"),
    ],
    ids=["eof-error", "zero-return"],
)
def test_either_eof_error_in_the_handshake_means_the_same(
    material: dict[str, Path], error: ssl.SSLError
) -> None:
    client = make_client(material)
    client.channel.tls = _HandshakeEndsWith(error)  # type: ignore[assignment]
    client.data_received(b"", NOW)
    assert (client.closed_kind, client.closed_reason) == (
        "eof",
        "the peer closed the connection in the handshake",
    )
