"""The driver running the AEAD endpoints over the in-memory doubles: it sends what the server
answers to a datagram (handshakes) and what the client's timers want, and moves only ciphertext."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from vpnsim.testing import MemoryNetwork, MemoryTun, ipv4_packet, pump
from vpnsim.tunnel import secure_wire
from vpnsim.tunnel.__main__ import parse_args
from vpnsim.tunnel.crypto import load_psk
from vpnsim.tunnel.driver import Driver
from vpnsim.tunnel.secure import SecureClient, SecureServer

SERVER = ("10.9.0.11", 9090)
CLIENT = ("10.9.0.5", 40000)
PSK = hashlib.sha256(b"driver test").digest()
REQUEST = ipv4_packet("192.168.53.99", "192.168.60.5", b"INNER-MARKER request")
REPLY = ipv4_packet("192.168.60.5", "192.168.53.99", b"INNER-MARKER reply")


def test_an_aead_tunnel_handshakes_on_its_first_tick_and_carries_packets_both_ways() -> None:
    net = MemoryNetwork()
    client_tun, server_tun = MemoryTun(), MemoryTun()
    client_udp, server_udp = net.transport(CLIENT), net.transport(SERVER)
    client = Driver(SecureClient(SERVER, PSK), client_tun, client_udp, clock=lambda: 0.0)
    server = Driver(SecureServer(PSK), server_tun, server_udp, clock=lambda: 0.0)

    client.timers()  # the initiation
    pump(client, server)  # the server's response, the client's confirming keepalive
    client_tun.inject(REQUEST)
    pump(client, server)
    server_tun.inject(REPLY)
    pump(client, server)

    assert (server_tun.written, client_tun.written) == ([REQUEST], [REPLY])
    kinds = [data[0] for data, _ in client_udp.sent], [data[0] for data, _ in server_udp.sent]
    initiation, response, data = secure_wire.INITIATION, secure_wire.RESPONSE, secure_wire.DATA
    assert kinds == ([initiation, data, data], [response, data])
    wire = [data for data, _ in client_udp.sent + server_udp.sent]
    assert not any(b"INNER-MARKER" in datagram for datagram in wire)
    assert (client.errors, server.errors) == (Counter(), Counter())


def test_a_server_with_another_psk_never_delivers_and_the_client_keeps_its_packets() -> None:
    net = MemoryNetwork()
    client_tun, server_tun = MemoryTun(), MemoryTun()
    endpoint = SecureClient(SERVER, PSK)
    client = Driver(endpoint, client_tun, net.transport(CLIENT), clock=lambda: 0.0)
    other = SecureServer(hashlib.sha256(b"other").digest())
    server = Driver(other, server_tun, net.transport(SERVER), clock=lambda: 0.0)

    client_tun.inject(REQUEST)
    pump(client, server)

    assert (server_tun.written, other.stats.unauthentic, endpoint.queue) == ([], 1, [REQUEST])


def test_the_endpoint_is_plain_by_default_and_aead_reads_its_psk_file(tmp_path: Path) -> None:
    psk_file = tmp_path / "lab.psk"
    psk_file.write_text("correct horse battery staple\n")
    plain = parse_args(["server", "--tun-address", "192.168.53.1/24"])
    aead = parse_args(
        [
            "server",
            "--tun-address",
            "192.168.53.1/24",
            "--wire",
            "aead",
            "--psk-file",
            str(psk_file),
        ]
    )
    assert (plain.wire, plain.psk_file) == ("plain", None)
    assert (aead.wire, aead.psk) == ("aead", load_psk(psk_file))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--wire", "aead"], "--wire aead needs --psk-file FILE, and --mode tun"),
        (["--wire", "aead", "--psk-file", "PSK", "--mode", "tap"], "and --mode tun"),
        (["--wire", "aead", "--psk-file", "SHORT"], "short.psk: 5 bytes of secret, need at least"),
        (["--wire", "aead", "--psk-file", "NONE"], "none.psk: No such file or directory"),
    ],
)
def test_a_bad_aead_command_line_is_a_usage_error_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    (tmp_path / "lab.psk").write_text("correct horse battery staple\n")
    (tmp_path / "short.psk").write_text("short\n")
    names = {"PSK": "lab.psk", "SHORT": "short.psk", "NONE": "none.psk"}
    extra = [str(tmp_path / names[a]) if a in names else a for a in extra]
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["server", "--tun-address", "192.168.53.1/24", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
