"""TLS mode's sans-IO client and server, talking to each other in memory (no socket, no TUN):
server and client authentication, many clients, and a server that survives bad peers."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from vpnsim import pki
from vpnsim.tunnel.shadow import read_shadow, shadow_line
from vpnsim.tunnel.tls_channel import server_context, verify_hostname_context
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
