"""Properties of the tunnel under seeded impairment of its outer link (U:eth0), one lab per
module and a new impairment per example.

(a) UDP datagrams U -> V arrive byte for byte, or not at all, never invented; the delivered
    multiset is exactly what the wire's seeded schedule allows (predicted independently with
    `vpnsim.impair.schedule.predict`) for what the tunnel under test promises (its
    `WireModel`: the plain SEED wire for the reference and for student programs; the
    reference's AEAD variants take a duplicated datagram once, a replay). Corruption on the
    outer link is caught by the outer UDP checksum, or, when the wire fixes the outer
    checksums, by the AEAD tag, else by the inner IP header's or UDP checksum; a datagram
    sent without a UDP checksum (or with one the far end fills in: checksum offload) arrives
    with exactly the payload byte the wire flipped. Both tunnel programs keep running, even
    when the inner packet they get is no IP packet at all (its version nibble damaged: the
    TUN device refuses it).
(b) A TCP stream over the tunnel delivers exactly the bytes sent, in order, under any schedule
    whose loss stays under 10%.
(c) Once the impairment is cleared and the wire has let go of what it held, the very next
    packet is forwarded: nothing of the impairment lingers in either program.

A failing example prints its Impairment (seed and schedule) and the `vpnsim lab impair` flags
that set it on a lab of your own; `@reproduce_failure` replays it here.
"""

from __future__ import annotations

import random
import shlex
from collections import Counter

import pytest
from hypothesis import Phase, given, note, reject, settings
from hypothesis import strategies as st

from vpnsim.impair import Impairment
from vpnsim.impair.link import ImpairedLink
from vpnsim.impair.oracle import (
    PLAIN,
    Unpredictable,
    WireModel,
    data_positions,
    expected_arrivals,
    send_through,
    wire_model,
)
from vpnsim.impair.oracle import UDP_TUNNEL_INNER_AT as INNER_AT
from vpnsim.impair.oracle import UDP_TUNNEL_PAYLOAD_AT as PAYLOAD_AT
from vpnsim.impair.schedule import predict
from vpnsim.strategies import events, impairments
from vpnsim.traffic.datagrams import Sink, Source
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
SINK_PORT = 5001
# The largest payload that stays one packet on the plain wire; a wire with more bytes around
# the inner packet takes less (`fitted`).
ONE_PACKET = PLAIN.one_packet
TRAFFIC = 50  # datagrams sent through an impairment before it is cleared
# Hypothesis' explain phase reruns a failing example hundreds of times to mark which values
# did not matter: ~0.4 s each through a lab, minutes in all. The shrunk example is enough.
LAB_PHASES = tuple(phase for phase in Phase if phase is not Phase.explain)
# And no per-example deadline, whatever the profile: an example's time is the machine's load.


@pytest.fixture(scope="module")
def sink(vpn_tunnel: RunningTunnel) -> Sink:
    found = Sink(vpn_tunnel.lab.ns("V"), V, SINK_PORT)
    yield found  # type: ignore[misc]
    found.close()


@pytest.fixture(scope="module")
def model(vpn_tunnel: RunningTunnel) -> WireModel:
    """What the tunnel under test puts on the wire and promises (`--vpn-impl`'s variant)."""
    return wire_model(vpn_tunnel.impl)


def new_example(tunnel: RunningTunnel, impairment: Impairment) -> None:
    """Every example starts with both programs running (one that an earlier example killed is
    started again), and notes how to set its impairment on a lab of your own."""
    tunnel.revive()
    flags = " ".join(shlex.quote(arg) for arg in impairment.cli_args())
    note(f"replay on a lab: vpnsim lab impair LAB U:eth0 {flags}")


def assert_both_ends_run(tunnel: RunningTunnel) -> None:
    """Once both programs have handled what reached them, neither may have exited."""
    ends = (tunnel.server, tunnel.client)
    for program in ends:
        program.wait_settled()
    assert [f"{p.label} exited with status {p.exit_code()}" for p in ends if not p.running()] == []


def datagrams_of(sizes: list[int], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for size in sizes]


def fitted(model: WireModel, sizes: list[int]) -> list[int]:
    """The drawn sizes, each cut to what stays one packet on the tunnel's wire (a fragmented
    datagram is several packets on the wire, each with a fate of its own)."""
    sizes_sent = [min(size, model.one_packet) for size in sizes]
    if sizes_sent != sizes:
        note(f"sizes sent on the {model.name} wire (one packet each): {sizes_sent}")
    return sizes_sent


def send_and_collect(
    tunnel: RunningTunnel,
    wire: ImpairedLink,
    sink: Sink,
    model: WireModel,
    impairment: Impairment,
    sent: list[bytes],
    inner_checksum: bool = True,
) -> tuple[list[bytes], Counter[bytes]]:
    """Send `sent` through the impaired wire: what arrived, and what must have.

    The prediction comes once the wire is idle, from the outer packets it saw: the sent
    datagrams' and any of the tunnel's own messages (an AEAD rekey or keepalive) between
    them, which take places in the schedule too. The wire's log must show, packet by packet,
    the fates `predict` gives those packets independently."""
    expected: Counter[bytes] = Counter()

    def predicted() -> int:
        while True:  # until the wire has seen every datagram, besides the tunnel's messages
            seen = [entry for entry in wire.log() if entry.direction == "out"]
            own = sum(1 for entry in seen if entry.length in model.control_lengths)
            if len(seen) - own >= len(sent) or wire.wait_seen(len(sent) + own) == len(seen):
                break
            wire.wait_idle()
        fates = predict(impairment, "out", [entry.length for entry in seen])
        assert [entry.fate for entry in seen] == fates
        at = data_positions(model, [entry.length for entry in seen], [len(d) for d in sent])
        expected.update(
            expected_arrivals(
                sent,
                [fates[i] for i in at],
                model=model,
                fix_checksums=impairment.fix_checksums,
                inner_checksum=inner_checksum,
            )
        )
        return expected.total()

    with Source(tunnel.lab.ns("U"), V, SINK_PORT, checksum=inner_checksum) as source:
        got = send_through(wire, impairment, source, sink, sent, predicted)
    assert_both_ends_run(tunnel)
    return got, expected


@settings(max_examples=60, deadline=None, phases=LAB_PHASES)
@given(
    impairment=impairments(max_loss=0.5, named_events=events(max_packet=12)),
    sizes=st.lists(st.integers(1, ONE_PACKET), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
)
def test_datagrams_arrive_intact_exactly_as_the_schedule_allows(
    vpn_tunnel: RunningTunnel,
    tunnel_wire: ImpairedLink,
    sink: Sink,
    model: WireModel,
    impairment: Impairment,
    sizes: list[int],
    seed: int,
) -> None:
    new_example(vpn_tunnel, impairment)
    sent = datagrams_of(fitted(model, sizes), seed)
    got, expected = send_and_collect(vpn_tunnel, tunnel_wire, sink, model, impairment, sent)
    assert Counter(got) == expected


# Where the wire may flip a byte, on the plain wire: the inner packet's first byte (a version
# other than 4 or 6 makes the TUN device refuse the packet: EINVAL for a program that writes
# it), the rest of the inner IP header (its checksum must stop the damage), or the inner
# payload. On an AEAD wire the same bytes are the message type, the data header (index and
# counter) and the ciphertext and tag: the tag must stop every one.
INNER_VERSION = (INNER_AT, INNER_AT + 1)
INNER_IP_HEADER = (INNER_AT, INNER_AT + 20)
INNER_PAYLOAD = (PAYLOAD_AT, 65535)


@settings(max_examples=60, deadline=None, phases=LAB_PHASES)
@given(
    impairment=st.sampled_from([INNER_PAYLOAD, INNER_IP_HEADER, INNER_VERSION]).flatmap(
        lambda where: impairments(
            max_loss=0.2,
            max_dup=0.2,
            max_reorder=0.0,
            max_corrupt=1.0,
            corrupt_bytes=where,
            fix_checksums=None,
            max_delay_ms=0,
            max_jitter_ms=0,
            named_events=st.just(()),
        )
    ),
    sizes=st.lists(st.integers(1, ONE_PACKET), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
    inner_checksum=st.booleans(),
)
def test_corruption_is_dropped_or_delivered_exactly_as_the_inner_checksum_allows(
    vpn_tunnel: RunningTunnel,
    tunnel_wire: ImpairedLink,
    sink: Sink,
    model: WireModel,
    impairment: Impairment,
    sizes: list[int],
    seed: int,
    inner_checksum: bool,
) -> None:
    sent = datagrams_of(fitted(model, sizes), seed)
    skip_unpredictable(model, impairment, sent, inner_checksum)
    new_example(vpn_tunnel, impairment)
    got, expected = send_and_collect(
        vpn_tunnel, tunnel_wire, sink, model, impairment, sent, inner_checksum
    )
    assert Counter(got) == expected


def skip_unpredictable(
    model: WireModel, impairment: Impairment, sent: list[bytes], inner_checksum: bool
) -> None:
    """Rejects an example whose damage has no single outcome on this wire: past fixed outer
    checksums, in the offload wire's unauthenticated trailer (INNER_PAYLOAD reaches it).
    Such a wire has no messages of its own, so the fates are known before sending."""
    if model.control_lengths:
        return  # an authenticated wire: every damaged datagram is dropped
    fates = predict(impairment, "out", [model.outer_length(len(data)) for data in sent])
    try:
        expected_arrivals(
            sent,
            fates,
            model=model,
            fix_checksums=impairment.fix_checksums,
            inner_checksum=inner_checksum,
        )
    except Unpredictable as exc:
        note(f"rejected: {exc}")
        reject()


@settings(
    max_examples=20, deadline=None, phases=LAB_PHASES
)  # a lost SYN costs TCP a 1 s retransmission
@given(
    impairment=impairments(max_loss=0.1, max_dup=0.1, max_reorder=0.1, max_delay_ms=10),
    size=st.integers(1, 64 * 1024),
    seed=st.integers(0, 2**32 - 1),
)
def test_tcp_stream_delivers_exactly_the_bytes_sent_in_order(
    vpn_tunnel: RunningTunnel,
    tunnel_wire: ImpairedLink,
    probes: Probes,
    impairment: Impairment,
    size: int,
    seed: int,
) -> None:
    new_example(vpn_tunnel, impairment)
    data = random.Random(seed).randbytes(size)
    tunnel_wire.set(impairment)
    try:
        assert probes.tcp("U", V, data, timeout=30.0) == data
    finally:
        tunnel_wire.clear()
    assert_both_ends_run(vpn_tunnel)


@settings(max_examples=20, deadline=None, phases=LAB_PHASES)
@given(impairment=impairments(max_loss=1.0, max_delay_ms=50, max_jitter_ms=20))
def test_forwarding_recovers_once_the_impairment_is_cleared(
    vpn_tunnel: RunningTunnel,
    tunnel_wire: ImpairedLink,
    sink: Sink,
    probes: Probes,
    impairment: Impairment,
) -> None:
    new_example(vpn_tunnel, impairment)
    tunnel_wire.set(impairment)
    with Source(vpn_tunnel.lab.ns("U"), V, SINK_PORT) as source:  # to the sink: no ICMP errors
        source.send([bytes(100)] * TRAFFIC)
    # Every datagram met the impairment; then a clean wire, and whatever it still held
    # (delayed, jittered, reordered) has left it.
    assert tunnel_wire.wait_seen(TRAFFIC) == TRAFFIC
    tunnel_wire.clear()
    tunnel_wire.wait_idle()
    assert probes.ping("U", V, b"are you back?").payload == b"are you back?"
    assert_both_ends_run(vpn_tunnel)
