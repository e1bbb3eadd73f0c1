"""Properties of the tunnel under seeded impairment of its outer link (U:eth0), one lab per
module and a new impairment per example.

(a) UDP datagrams U -> V arrive byte for byte, or not at all, never invented; the delivered
    multiset is exactly what the wire's seeded schedule allows (predicted independently with
    `vpnsim.impair.schedule.predict`). Corruption on the outer link is caught by the outer UDP
    checksum, or, when the wire fixes the outer checksums, by the inner one; a datagram sent
    without a checksum arrives with exactly the byte the wire flipped.
(b) A TCP stream over the tunnel delivers exactly the bytes sent, in order, under any schedule
    whose loss stays under 10%.
(c) Once the impairment is cleared, forwarding comes back within RECOVERY_BOUND seconds.

A failing example prints its Impairment (seed and schedule) and the `vpnsim lab impair` flags
that set it on a lab of your own; `@reproduce_failure` replays it here.
"""

from __future__ import annotations

import random
import shlex
import time
from collections import Counter

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from vpnsim.impair import Impairment
from vpnsim.impair.link import ImpairedLink
from vpnsim.impair.oracle import UDP_TUNNEL_PAYLOAD_AT as PAYLOAD_AT
from vpnsim.impair.oracle import expected_arrivals, send_through
from vpnsim.impair.schedule import predict
from vpnsim.strategies import events, impairments
from vpnsim.traffic.datagrams import Sink, Source
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
SINK_PORT = 5001
ONE_PACKET = 1500 - PAYLOAD_AT  # the largest payload that stays one packet on the wire
RECOVERY_BOUND = 2.0


@pytest.fixture(scope="module")
def sink(vpn_tunnel: RunningTunnel) -> Sink:
    found = Sink(vpn_tunnel.lab.ns("V"), V, SINK_PORT)
    yield found  # type: ignore[misc]
    found.close()


def replay_note(impairment: Impairment) -> None:
    flags = " ".join(shlex.quote(arg) for arg in impairment.cli_args())
    note(f"replay on a lab: vpnsim lab impair LAB U:eth0 {flags}")


def datagrams_of(sizes: list[int], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for size in sizes]


def send_and_collect(
    tunnel: RunningTunnel,
    wire: ImpairedLink,
    sink: Sink,
    impairment: Impairment,
    sent: list[bytes],
    expected: int,
    inner_checksum: bool = True,
) -> list[bytes]:
    with Source(tunnel.lab.ns("U"), V, SINK_PORT, checksum=inner_checksum) as source:
        got = send_through(wire, impairment, source, sink, sent, expected)
    assert tunnel.client.running() and tunnel.server.running()
    return got


@settings(max_examples=60)
@given(
    impairment=impairments(max_loss=0.5, named_events=events(max_packet=12)),
    sizes=st.lists(st.integers(1, ONE_PACKET), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
)
def test_datagrams_arrive_intact_exactly_as_the_schedule_allows(
    vpn_tunnel: RunningTunnel,
    tunnel_wire: ImpairedLink,
    sink: Sink,
    impairment: Impairment,
    sizes: list[int],
    seed: int,
) -> None:
    replay_note(impairment)
    sent = datagrams_of(sizes, seed)
    fates = predict(impairment, "out", [PAYLOAD_AT + size for size in sizes])
    expected = expected_arrivals(sent, fates)
    got = send_and_collect(vpn_tunnel, tunnel_wire, sink, impairment, sent, expected.total())
    assert Counter(got) == expected
    # The wire decided what the independent prediction says, packet by packet.
    assert [entry.fate for entry in tunnel_wire.log() if entry.direction == "out"] == fates


@settings(max_examples=60)
@given(
    impairment=impairments(
        max_loss=0.2,
        max_dup=0.2,
        max_reorder=0.0,
        max_corrupt=1.0,
        corrupt_bytes=(PAYLOAD_AT, 65535),
        fix_checksums=None,
        max_delay_ms=0,
        max_jitter_ms=0,
        named_events=st.just(()),
    ),
    sizes=st.lists(st.integers(1, ONE_PACKET), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
    inner_checksum=st.booleans(),
)
def test_corruption_is_dropped_or_delivered_exactly_as_the_inner_checksum_allows(
    vpn_tunnel: RunningTunnel,
    tunnel_wire: ImpairedLink,
    sink: Sink,
    impairment: Impairment,
    sizes: list[int],
    seed: int,
    inner_checksum: bool,
) -> None:
    replay_note(impairment)
    sent = datagrams_of(sizes, seed)
    fates = predict(impairment, "out", [PAYLOAD_AT + size for size in sizes])
    expected = expected_arrivals(
        sent, fates, fix_checksums=impairment.fix_checksums, inner_checksum=inner_checksum
    )
    got = send_and_collect(
        vpn_tunnel, tunnel_wire, sink, impairment, sent, expected.total(), inner_checksum
    )
    assert Counter(got) == expected


@settings(max_examples=20, deadline=None)  # a lost SYN costs TCP a 1 s retransmission
@given(
    impairment=impairments(max_loss=0.1, max_dup=0.1, max_reorder=0.1, max_delay_ms=10),
    size=st.integers(1, 64 * 1024),
    seed=st.integers(0, 2**32 - 1),
)
def test_tcp_stream_delivers_exactly_the_bytes_sent_in_order(
    tunnel_wire: ImpairedLink, probes: Probes, impairment: Impairment, size: int, seed: int
) -> None:
    replay_note(impairment)
    data = random.Random(seed).randbytes(size)
    tunnel_wire.set(impairment)
    try:
        assert probes.tcp("U", V, data, timeout=30.0) == data
    finally:
        tunnel_wire.clear()


@settings(max_examples=20)
@given(impairment=impairments(max_loss=1.0, max_delay_ms=50, max_jitter_ms=20))
def test_forwarding_recovers_once_the_impairment_is_cleared(
    vpn_tunnel: RunningTunnel, tunnel_wire: ImpairedLink, probes: Probes, impairment: Impairment
) -> None:
    replay_note(impairment)
    tunnel_wire.set(impairment)
    with Source(vpn_tunnel.lab.ns("U"), V, SINK_PORT) as source:
        source.send([bytes(100)] * 50, gap=0.001)
    tunnel_wire.clear()
    start = time.monotonic()
    while True:
        try:
            probes.ping("U", V, b"are you back?", timeout=0.2)
            break
        except ProbeFailed:
            assert time.monotonic() - start < RECOVERY_BOUND, "forwarding did not come back"
    note(f"recovered in {time.monotonic() - start:.3f} s")
