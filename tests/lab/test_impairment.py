"""The seeded wire on real links: exact fates, measured loss, replay, and a clean removal.

Traffic is one-way UDP from U to V through the reference tunnel, each datagram numbered, so
every packet the wire on U:eth0 decides on in the "out" direction is a known datagram.
"""

from __future__ import annotations

import os
import struct
import time

import pytest

from vpnsim.impair import Event, Impairment
from vpnsim.impair.link import ImpairedLink, impair, wire_on, wired_links
from vpnsim.impair.oracle import send_through
from vpnsim.impair.schedule import predict
from vpnsim.leaks import leftovers
from vpnsim.net.ethtool import set_offloads
from vpnsim.seed import builtin_scenario
from vpnsim.topology import build_lab
from vpnsim.traffic.datagrams import Sink, Source
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
PORT = 5002
PAYLOAD_AT = 56  # outer IPv4 + UDP, inner IPv4 + UDP


@pytest.fixture(scope="module")
def sink(vpn_tunnel: RunningTunnel) -> Sink:
    found = Sink(vpn_tunnel.lab.ns("V"), V, PORT)
    yield found  # type: ignore[misc]
    found.close()


def numbered(count: int, size: int = 64) -> list[bytes]:
    return [struct.pack("!I", n) + bytes(size - 4) for n in range(1, count + 1)]


def numbers(got: list[bytes]) -> list[int]:
    return [struct.unpack_from("!I", data)[0] for data in got]


def run(
    tunnel: RunningTunnel, wire: ImpairedLink, sink: Sink, impairment: Impairment, count: int
) -> list[int]:
    """Send `count` numbered datagrams U -> V under `impairment`; the numbers that arrived."""
    with Source(tunnel.lab.ns("U"), V, PORT) as source:
        # In bursts of 50, each once the wire has seen the last: the TUN queue (500) never
        # overflows, however busy the machine (it did, in CI, with open-loop pacing).
        got = send_through(
            wire, impairment, source, sink, numbered(count), count, timeout=0.5, burst=50
        )
    return numbers(got)


def test_thirty_percent_loss_is_thirty_percent_and_replays_exactly(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, sink: Sink
) -> None:
    lossy = Impairment(seed=2026, loss=0.3)
    first = run(vpn_tunnel, tunnel_wire, sink, lossy, 1000)
    stats = tunnel_wire.stats()
    second = run(vpn_tunnel, tunnel_wire, sink, lossy, 1000)

    measured = 1 - len(first) / 1000
    assert 0.25 <= measured <= 0.35, f"measured loss {measured:.3f}"
    assert sorted(first) == sorted(second)  # same seed, same traffic: the same delivered set
    predicted = predict(lossy, "out", [PAYLOAD_AT + 64] * 1000)
    assert sorted(first) == [n for n, fate in enumerate(predicted, 1) if fate.delivered]
    assert (stats.out["seen"], stats.out["dropped"], stats.out["delivered"]) == (
        1000,
        1000 - len(first),
        len(first),
    )


def test_another_seed_loses_other_packets(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, sink: Sink
) -> None:
    one = run(vpn_tunnel, tunnel_wire, sink, Impairment(seed=1, loss=0.3), 200)
    two = run(vpn_tunnel, tunnel_wire, sink, Impairment(seed=2, loss=0.3), 200)
    assert sorted(one) != sorted(two)


def test_an_explicit_schedule_drops_duplicates_and_reorders_the_named_packets(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, sink: Sink
) -> None:
    schedule = (Event(3, "drop"), Event(7, "drop"), Event(5, "dup"), Event(8, "reorder"))
    got = run(vpn_tunnel, tunnel_wire, sink, Impairment(events=schedule), 10)
    assert got == [1, 2, 4, 5, 5, 6, 9, 8, 10]
    stats = tunnel_wire.stats()
    assert (stats.out["seen"], stats.out["dropped"], stats.out["duplicated"]) == (10, 2, 1)
    assert (stats.out["reordered"], stats.out["delivered"]) == (1, 9)
    assert [entry.position for entry in tunnel_wire.log() if not entry.fate.delivered] == [3, 7]


def test_a_burst_model_loses_packets_in_runs(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, sink: Sink
) -> None:
    from vpnsim.impair import GilbertElliott

    bursty = Impairment(seed=5, burst=GilbertElliott(p=0.05, r=0.25))
    got = set(run(vpn_tunnel, tunnel_wire, sink, bursty, 1000))
    lost = [n for n in range(1, 1001) if n not in got]
    runs = sum(1 for n in lost if n - 1 not in lost)
    assert lost and len(lost) / runs >= 2.5  # mean burst 1/r = 4 packets, not 1 as in Bernoulli
    predicted = predict(bursty, "out", [PAYLOAD_AT + 64] * 1000)
    assert lost == [n for n, fate in enumerate(predicted, 1) if not fate.delivered]


def test_the_mtu_clamp_drops_longer_packets_and_counts_them(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, sink: Sink
) -> None:
    sink.drain()
    tunnel_wire.set(Impairment(mtu=1000))
    sizes = [100, 944, 945, 1400, 10]  # 944 + 56 = 1000 bytes on the wire: the largest kept
    with Source(vpn_tunnel.lab.ns("U"), V, PORT) as source:
        source.send([bytes([n]) * size for n, size in enumerate(sizes)])
    tunnel_wire.wait_idle()
    got = sink.collect(3, timeout=0.5)
    assert [len(data) for data in got] == [100, 944, 10]
    assert tunnel_wire.stats().out["oversize"] == 2


def test_delay_and_rate_hold_packets_back(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, probes: Probes
) -> None:
    tunnel_wire.set(Impairment(delay_ms=40, direction="out"))
    start = time.monotonic()
    probes.ping("U", V)
    assert time.monotonic() - start >= 0.040  # a lower bound: slowness cannot fail it
    assert tunnel_wire.stats().out["delayed"] >= 1

    # 1 Mbit/s: 100 kB takes at least 0.8 s to cross, however fast the machine is.
    tunnel_wire.set(Impairment(rate=1_000_000))
    data = bytes(range(256)) * 400
    start = time.monotonic()
    assert probes.tcp("U", V, data, timeout=20) == data
    assert time.monotonic() - start >= 0.8
    tunnel_wire.clear()


def test_a_clean_wire_changes_nothing_the_host_sees(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, probes: Probes
) -> None:
    tunnel_wire.clear()
    lab = vpn_tunnel.lab
    link = lab.rtnl("U").link("eth0")
    assert (link.up, link.addresses) == (True, ("10.9.0.5/24",))
    data = bytes(range(256)) * 4096  # 1 MiB each way
    assert probes.tcp("U", V, data, timeout=20) == data
    stats = tunnel_wire.stats()
    assert stats.out["seen"] > 0 and stats.out["delivered"] == stats.out["seen"]
    assert stats.out["dropped"] == stats.into["dropped"] == 0


def test_any_link_can_be_impaired_and_removing_the_wire_restores_it() -> None:
    lab = build_lab(builtin_scenario("seed-tunnel"), owner_pid=os.getpid())
    try:
        probes = Probes(lab, None, 0.5)
        fabric = lab.rtnl("_fabric")
        port = next(link for link in fabric.links() if link.alias == "V:eth0")
        wire = impair(lab, "V:eth0", Impairment(loss=1.0))
        assert wired_links(lab) == ["V:eth0"]
        assert fabric.link(port.name).master is None  # off the bridge, behind the wire
        with pytest.raises(ProbeFailed):
            probes.ping("V2", V)
        wire.clear()
        assert probes.ping("V2", V).source == V
        offloads = set_offloads(lab.ns("V"), "eth0", False)
        assert offloads == []  # off while the wire is in

        pid = wire.stats().pid
        wire.remove()
        assert wire_on(lab, "V:eth0") is None and wired_links(lab) == []
        assert fabric.link(port.name).master == port.master
        assert not [link.name for link in fabric.links() if link.name.startswith(("w", "x"))]
        assert not any(p == pid for p in lab.pids())
        assert "tx-checksum-ip-generic" in set_offloads(lab.ns("V"), "eth0", False)
        assert probes.ping("V2", V).source == V
    finally:
        name = lab.name
        lab.teardown()
    assert leftovers([name]) == {}


def test_teardown_with_wires_running_leaves_nothing() -> None:
    lab = build_lab(builtin_scenario("seed-tunnel"), owner_pid=os.getpid())
    name = lab.name
    impair(lab, "U:eth0", Impairment(seed=3, loss=0.5, delay_ms=5))
    impair(lab, "server:eth1", Impairment(dup=0.5))
    report = lab.teardown()
    assert len(report.killed) == 2  # the two wires
    assert leftovers([name]) == {}


def test_a_ring_capture_keeps_only_the_newest_frames(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, sink: Sink
) -> None:
    from vpnsim.traffic.capture import Capture

    tunnel_wire.clear()
    capture = Capture(vpn_tunnel.lab.ns("U"), "tun0", keep=5)
    run(vpn_tunnel, tunnel_wire, sink, Impairment(), 23)
    frames = capture.stop()
    # Raw IP on the TUN: the datagram's number is the first 4 bytes after IPv4 + UDP headers.
    assert [struct.unpack_from("!I", f.data, 28)[0] for f in frames] == [19, 20, 21, 22, 23]


def test_a_bad_control_request_is_answered_and_the_wire_carries_on(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, probes: Probes
) -> None:
    import json
    import socket

    from vpnsim.impair.control import address
    from vpnsim.net import namespace

    client = namespace.socket_in(vpn_tunnel.lab.fabric_ns, socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(address("U:eth0"))
    client.sendall(b"not json\n[1, 2]\n" + json.dumps({"op": "explode"}).encode() + b"\n")
    replies = b""
    while replies.count(b"\n") < 3:
        replies += client.recv(4096)
    client.close()
    errors = [json.loads(line)["error"] for line in replies.splitlines()]
    assert errors[0].startswith("bad request: Expecting value")
    assert errors[1:] == ["bad request: expected a JSON object", "unknown request 'explode'"]
    tunnel_wire.clear()
    assert probes.ping("U", V).source == V


def test_a_control_client_that_never_reads_its_replies_holds_up_neither_forwarding_nor_others(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, sink: Sink, probes: Probes
) -> None:
    import json
    import socket

    from vpnsim.impair.control import WireClient, address
    from vpnsim.net import namespace

    with Source(vpn_tunnel.lab.ns("U"), V, PORT) as source:
        send_through(tunnel_wire, Impairment(), source, sink, numbered(5000), 0, burst=50)
    sink.drain()
    pid = tunnel_wire.stats().pid
    log = [entry.to_dict() for entry in tunnel_wire.log()]
    assert len(log) >= 5000
    reply_size = len(json.dumps({"ok": True, "log": log}))

    fabric = vpn_tunnel.lab.fabric_ns
    rogue = namespace.socket_in(fabric, socket.AF_UNIX, socket.SOCK_STREAM)
    other: WireClient | None = None
    try:
        rogue.settimeout(5)
        rogue.connect(address(tunnel_wire.link))
        # Each reply is several times what a Unix socket buffers: a wire that waited for the
        # rogue to read would wait forever on the first.
        assert reply_size > 3 * rogue.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        rogue.sendall(b'{"op": "log"}\n' * 200)
        # Accepted after the rogue, so served after the wire took the rogue's first request.
        other = WireClient(fabric, tunnel_wire.link)
        stats = other.request("stats")
        assert (stats["pid"], stats["paused"]) == (pid, False)
        assert rogue.recv(1, socket.MSG_PEEK) == b"{"  # it was answered

        assert probes.ping("U", V).source == V  # within the probe's usual timeout
        assert run(vpn_tunnel, tunnel_wire, sink, Impairment(), 100) == list(range(1, 101))
        assert other.request("stats")["out"]["delivered"] == 100

        # The reply the rogue left waiting is whole when it does read it.
        buffer = b""
        while b"\n" not in buffer:
            chunk = rogue.recv(1 << 20)
            assert chunk, "the wire closed the rogue client"
            buffer += chunk
        first = json.loads(buffer.partition(b"\n")[0])
        assert first["ok"] and first["log"][: len(log)] == log
    finally:
        rogue.close()
        if other is not None:
            other.close()
    # The rogue's leaving (with replies still pending) leaves the wire serving.
    assert tunnel_wire.stats().pid == pid
    assert probes.ping("U", V).source == V
