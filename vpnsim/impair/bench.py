"""Figures of the wire for `vpnsim bench`: what a clean wire costs against a plain link, and
how fast the loss property runs through the live tunnel.

Measured side by side in one lab, alternating plain and wired rounds so both see the same
machine state: TCP throughput U -> server over U:eth0, ICMP round trip U -> server, and
Hypothesis examples per second of the datagram property under random impairments.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from vpnsim.impair.link import ImpairedLink, impair
from vpnsim.impair.oracle import UDP_TUNNEL_PAYLOAD_AT, expected_arrivals, send_through
from vpnsim.impair.schedule import predict
from vpnsim.impair.spec import Impairment
from vpnsim.net import namespace
from vpnsim.traffic.datagrams import Sink, Source
from vpnsim.traffic.icmp import ping

if TYPE_CHECKING:
    from vpnsim.topology import Lab

SERVER = "10.9.0.11"
V = "192.168.60.5"
BULK_BYTES = 32 << 20
PINGS = 200


def tcp_throughput(lab: Lab, nbytes: int = BULK_BYTES) -> float:
    """MB/s of one TCP connection U -> server carrying `nbytes`."""
    listener = namespace.socket_in(lab.ns("server"), socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((SERVER, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    received = [0]

    def sink() -> None:
        conn, _ = listener.accept()
        with conn:
            while chunk := conn.recv(1 << 20):
                received[0] += len(chunk)

    thread = threading.Thread(target=sink)
    thread.start()
    sender = namespace.socket_in(lab.ns("U"), socket.AF_INET, socket.SOCK_STREAM)
    block = bytes(1 << 20)
    started = time.perf_counter()
    sender.connect((SERVER, port))
    for _ in range(nbytes // len(block)):
        sender.sendall(block)
    sender.close()
    thread.join()
    elapsed = time.perf_counter() - started
    listener.close()
    assert received[0] == nbytes, f"sent {nbytes}, received {received[0]}"
    return nbytes / elapsed / 1e6


def rtt_ms(lab: Lab, count: int = PINGS) -> float:
    """Median ICMP round trip U -> server, in milliseconds."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        ping(lab.ns("U"), SERVER, b"rtt", timeout=1.0)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def plain_vs_wire(lab: Lab, rounds: int) -> dict[str, list[float]]:
    """Throughput and round trip over U:eth0, plain (offloads on, then off, as the wire has
    them) and through a clean wire, alternating."""
    from vpnsim.net.ethtool import set_offloads

    found: dict[str, list[float]] = {"plain_mbps": [], "wire_mbps": [], "plain_rtt": [],
                                     "wire_rtt": [], "no_offload_mbps": []}  # fmt: skip
    for _ in range(rounds):
        found["plain_mbps"].append(tcp_throughput(lab))
        found["plain_rtt"].append(rtt_ms(lab))
        changed = set_offloads(lab.ns("U"), "eth0", False)
        found["no_offload_mbps"].append(tcp_throughput(lab))
        set_offloads(lab.ns("U"), "eth0", True, changed)
        wire = impair(lab, "U:eth0")
        found["wire_mbps"].append(tcp_throughput(lab))
        found["wire_rtt"].append(rtt_ms(lab))
        wire.remove()
    return found


def loss_examples_per_second(lab: Lab, wire: ImpairedLink, examples: int) -> float:
    """The datagram property (a) of tests/properties under random impairments; examples/s."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from vpnsim.strategies import events, impairments

    sink = Sink(lab.ns("V"), V, 5003)
    source = Source(lab.ns("U"), V, 5003)

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(
        impairment=impairments(max_loss=0.5, named_events=events(max_packet=12)),
        sizes=st.lists(st.integers(1, 1500 - UDP_TUNNEL_PAYLOAD_AT), min_size=1, max_size=12),
    )
    def prop(impairment: Impairment, sizes: list[int]) -> None:
        sent = [bytes([n % 256]) * size for n, size in enumerate(sizes)]
        fates = predict(impairment, "out", [UDP_TUNNEL_PAYLOAD_AT + s for s in sizes])
        expected = expected_arrivals(sent, fates)
        got = send_through(wire, impairment, source, sink, sent, expected.total())
        assert Counter(got) == expected

    started = time.perf_counter()
    try:
        prop()
    finally:
        sink.close()
        source.close()
    return examples / (time.perf_counter() - started)
