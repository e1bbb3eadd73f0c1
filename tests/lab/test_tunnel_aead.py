"""The reference tunnel's AEAD mode (`--wire aead --psk-file FILE`) in the SEED lab: traffic
from U reaches V, and the outer links carry only ciphertext.

```
  U 10.9.0.5 [TUN 192.168.53.99] ---- 10.9.0.11 [server, TUN 192.168.53.1] 192.168.60.11
      ^ capture: no inner payload in clear                                  V 192.168.60.5
```
"""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.impl import TunnelImpl, reference_argv
from vpnsim.net import namespace
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.capture import Capture
from vpnsim.traffic.evidence import outer_interface
from vpnsim.traffic.probes import Probes
from vpnsim.tunnel import secure_wire
from vpnsim.vpn import RunningTunnel, start_tunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
MARKER = b"INNER-PAYLOAD-MARKER-7f3a"
AEAD_OVERHEAD = secure_wire.DATA_HEADER_BYTES + 16  # header + GCM tag


def aead_impl(psk_file: Path) -> TunnelImpl:
    spec = seed_tunnel().tunnel
    assert spec is not None
    flags = ("--wire", "aead", "--psk-file", str(psk_file))
    return TunnelImpl(
        label="reference-aead",
        client_argv=(*reference_argv("client", spec), *flags),
        server_argv=(*reference_argv("server", spec), *flags),
    )


def start_aead_lab(log_dir: Path, tag: str) -> tuple[Lab, RunningTunnel]:
    psk_file = log_dir / "lab.psk"
    psk_file.write_text(secrets.token_hex(32) + "\n")
    psk_file.chmod(0o600)
    lab = build_lab(seed_tunnel(), name=new_lab_name(tag), log_dir=log_dir, owner_pid=os.getpid())
    try:
        return lab, start_tunnel(lab, aead_impl(psk_file), timeout=20)
    except BaseException:
        lab.teardown()
        raise


@pytest.fixture(scope="module")
def aead_tunnel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTunnel]:
    lab, tunnel = start_aead_lab(tmp_path_factory.mktemp("aead"), "ae")
    try:
        yield tunnel
    finally:
        lab.teardown()


@pytest.fixture(scope="module")
def aead_probes(aead_tunnel: RunningTunnel) -> Iterator[Probes]:
    probes = Probes(aead_tunnel.lab, aead_tunnel)
    assert probes.ping("U", V, b"warm-up").payload == b"warm-up"  # the handshake is done
    yield probes
    probes.close()


def client_link_capture(lab: Lab) -> Capture:
    """Every frame on U's outer link (toward the server), whatever its protocol."""
    return Capture(lab.ns("U"), outer_interface(lab, "U", "10.9.0.5"))


def test_an_icmp_echo_crosses_as_one_aead_datagram_each_way_with_no_payload_in_clear(
    aead_tunnel: RunningTunnel, aead_probes: Probes
) -> None:
    payload = MARKER * 4
    with client_link_capture(aead_tunnel.lab) as capture, aead_probes.evidence() as rec:
        reply = aead_probes.ping("U", V, payload)
    assert (reply.source, reply.payload) == (V, payload)
    ev = rec.result
    inner = 20 + 8 + len(payload)
    assert [(d.src, d.dport, d.length) for d in ev.to_server] == [
        ("10.9.0.5", 9090, inner + AEAD_OVERHEAD)
    ]
    assert [(d.sport, d.dst, d.length) for d in ev.from_server] == [
        (9090, "10.9.0.5", inner + AEAD_OVERHEAD)
    ]
    assert [d.payload[0] for d in ev.to_server + ev.from_server] == [secure_wire.DATA] * 2
    assert (ev.client.tx_packets, ev.client.rx_packets, ev.client.tx_bytes) == (1, 1, inner)
    frames = capture.frames
    assert len(frames) >= 2
    assert not [f for f in frames if MARKER in f.data]


def test_tcp_crosses_the_aead_tunnel_and_no_segment_shows_in_clear(
    aead_tunnel: RunningTunnel, aead_probes: Probes
) -> None:
    data = MARKER * 2000  # 50 kB: many full-size segments
    with client_link_capture(aead_tunnel.lab) as capture, aead_probes.evidence() as rec:
        assert aead_probes.tcp("U", V, data) == data
    assert rec.result.through_tunnel
    assert sum(len(f.data) for f in capture.frames) > 2 * len(data)  # there and echoed back
    assert not [f for f in capture.frames if MARKER[:12] in f.data]


def test_replayed_forged_and_garbage_datagrams_are_dropped_and_counted(tmp_path: Path) -> None:
    lab, tunnel = start_aead_lab(tmp_path, "ar")
    try:
        probes = Probes(lab, tunnel)
        assert probes.ping("U", V, b"first").payload == b"first"
        with probes.evidence() as rec:
            assert probes.ping("U", V, b"second").payload == b"second"
        [sealed] = [d.payload for d in rec.result.to_server]
        # A fresh counter (an old one would be caught as a replay before any decryption).
        forged = sealed[:8] + (2**40).to_bytes(8, "little") + sealed[16:]
        made_up_index = sealed[:4] + b"\xff\xff\xff\xff" + sealed[8:]
        # From a new port on U: a replay must neither deliver nor move the client's address.
        with namespace.socket_in(lab.ns("U"), socket.AF_INET, socket.SOCK_DGRAM) as s:
            for datagram in (sealed, forged, made_up_index, b"not a message at all"):
                s.sendto(datagram, ("10.9.0.11", 9090))
        assert probes.ping("U", V, b"third").payload == b"third"  # handled after the four
        probes.close()
        assert (tunnel.stop_client(), tunnel.server.stop()) == (0, 0)
        client = json.loads(tunnel.client.stdout().splitlines()[-1])
        server = json.loads(tunnel.server.stdout().splitlines()[-1])
    finally:
        lab.teardown()
    drops = ("replayed", "unauthentic", "unknown_index", "malformed", "roamed", "errors")
    assert {k: server[k] for k in drops} == {
        "replayed": 1,
        "unauthentic": 1,
        "unknown_index": 1,
        "malformed": 1,
        "roamed": 0,
        "errors": {},
    }
    assert (server["delivered"], client["tun_packets"], client["delivered"]) == (3, 3, 3)
    assert client["handshakes"] == server["handshakes"] >= 1
    assert client["unauthentic"] == client["replayed"] == 0


def mutations(seeds: list[bytes], rng: random.Random, count: int) -> Iterator[bytes]:
    """Random, truncated, replayed, bit-flipped and re-countered versions of real datagrams."""
    for _ in range(count):
        seed = rng.choice(seeds)
        kind = rng.randrange(6)
        if kind == 0:
            yield rng.randbytes(rng.randrange(1500))
        elif kind == 1:
            yield seed[: rng.randrange(len(seed))]
        elif kind == 2:
            yield seed
        elif kind == 3:
            flipped = bytearray(seed)
            for _ in range(rng.randrange(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= rng.randrange(1, 256)
            yield bytes(flipped)
        elif kind == 4:
            yield seed[:8] + rng.randbytes(8) + seed[16:]
        else:
            yield seed[:16] + rng.randbytes(rng.randrange(1500))


def test_fuzzed_datagrams_at_both_ends_while_tcp_flows_crash_nothing(tmp_path: Path) -> None:
    lab, tunnel = start_aead_lab(tmp_path, "af")
    try:
        probes = Probes(lab, tunnel)
        server_link = outer_interface(lab, "server", "10.9.0.11")
        with Capture(lab.ns("server"), server_link) as capture:
            assert probes.tcp("U", V, bytes(range(256)) * 64) == bytes(range(256)) * 64
        seen = [d for d in capture.udp(9090) if len(d.payload) == d.length]  # whole ones
        client_port = next(d.sport for d in seen if d.dport == 9090)
        seeds = [d.payload for d in seen]
        sent = {"server": 0, "client": 0}

        def flood() -> None:
            rng = random.Random(15)
            # To the server from a new port on U; to the client as if from the server
            # (a raw socket writes our own UDP header: source port 9090).
            with (
                namespace.socket_in(lab.ns("U"), socket.AF_INET, socket.SOCK_DGRAM) as to_server,
                namespace.socket_in(
                    lab.ns("server"), socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP
                ) as to_client,
            ):
                for n, datagram in enumerate(mutations(seeds, rng, 8000)):
                    if n % 2:
                        to_server.sendto(datagram, ("10.9.0.11", 9090))
                        sent["server"] += 1
                    else:
                        udp = struct.pack("!HHHH", 9090, client_port, 8 + len(datagram), 0)
                        to_client.sendto(udp + datagram, ("10.9.0.5", 0))
                        sent["client"] += 1

        thread = threading.Thread(target=flood)
        data = os.urandom(100_000)
        thread.start()
        transfers = 0
        try:
            while thread.is_alive() or not transfers:  # real traffic for as long as the storm
                assert probes.tcp("U", V, data, timeout=60) == data
                transfers += 1
        finally:
            thread.join()
        assert probes.ping("U", V, b"after the storm").payload == b"after the storm"
        probes.close()
        assert (tunnel.stop_client(), tunnel.server.stop()) == (0, 0)
        client = json.loads(tunnel.client.stdout().splitlines()[-1])
        server = json.loads(tunnel.server.stdout().splitlines()[-1])
    finally:
        lab.teardown()
    drops = ("malformed", "unauthentic", "replayed", "unknown_index", "unexpected", "foreign")
    assert sent == {"server": 4000, "client": 4000}
    # Each end dropped and counted what reached it (the kernel may drop some in a burst).
    assert 0 < sum(server[k] for k in drops) <= 4000
    assert 0 < sum(client[k] for k in drops) <= 4000
    assert (client["errors"], server["errors"], server["roamed"]) == ({}, {}, 0)


def test_a_restarted_client_handshakes_again_and_a_tcp_session_resumes(
    aead_tunnel: RunningTunnel, aead_probes: Probes
) -> None:
    with aead_probes.tcp_session("U", V) as session:
        session.send(b"typed before\n")
        assert session.receive(13) == b"typed before\n"
        aead_tunnel.restart_client()  # a new process: new keys, a new source port
        session.send(b"typed after the restart\n")
        assert session.receive(24, timeout=10) == b"typed after the restart\n"


def test_after_a_server_restart_the_client_handshakes_again_when_it_hears_nothing(
    aead_tunnel: RunningTunnel, aead_probes: Probes
) -> None:
    aead_tunnel.stop_server()
    aead_tunnel.start_server()
    # The new server knows none of the client's sessions; the client notices that nothing
    # comes back (SecureConfig.no_reply_seconds, 10 s) and makes a new one.
    deadline = time.monotonic() + 30
    while not aead_probes.reaches("U", V, timeout=1.0):
        assert time.monotonic() < deadline, "no echo through the tunnel 30 s after the restart"
    server = aead_tunnel.server
    assert server.running() and aead_tunnel.client.running()


def test_the_server_follows_the_client_to_a_new_address(tmp_path: Path) -> None:
    lab, tunnel = start_aead_lab(tmp_path, "am")
    try:
        probes = Probes(lab, tunnel)
        assert probes.ping("U", V, b"from 10.9.0.5").payload == b"from 10.9.0.5"
        # U moves: a second address, and the way to the server now leaves from it.
        rtnl = lab.rtnl("U")
        outer = outer_interface(lab, "U", "10.9.0.5")
        rtnl.add_address(outer, "10.9.0.6/24")
        rtnl.raw.route(
            "add", dst="10.9.0.11/32", oif=rtnl.index_of(outer), prefsrc="10.9.0.6", scope=253
        )
        with probes.evidence() as rec:
            assert probes.ping("U", V, b"from 10.9.0.6").payload == b"from 10.9.0.6"
        assert [d.src for d in rec.result.to_server] == ["10.9.0.6"]
        assert [d.dst for d in rec.result.from_server] == ["10.9.0.6"]  # followed at once
        probes.close()
        assert (tunnel.stop_client(), tunnel.server.stop()) == (0, 0)
        server = json.loads(tunnel.server.stdout().splitlines()[-1])
    finally:
        lab.teardown()
    assert (server["roamed"], server["delivered"], server["handshakes"]) == (1, 2, 1)
