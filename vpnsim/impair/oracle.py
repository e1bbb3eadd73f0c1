"""What a correct tunnel delivers through a wire: the test oracle of the loss properties, and
the one way they send datagrams through it.

Given the datagrams sent one way through the tunnel and the fates the wire's schedule gives
their outer packets (`schedule.predict`), the multiset of datagrams that must arrive: a lost
one never, a duplicated one twice, a corrupted one never if a checksum catches the damage,
else exactly as damaged. That is the plain SEED wire (one raw IP packet per datagram, what
student programs send); a `WireModel` says what another tunnel's datagrams look like and
promise: a replay-protected one delivers a duplicated datagram once, an authenticated one
never delivers a damaged one. `wire_model` derives it from the implementation under test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from vpnsim.errors import UsageError
from vpnsim.impair.spec import Fate, Impairment

if TYPE_CHECKING:
    from vpnsim.impair.link import ImpairedLink
    from vpnsim.impl import TunnelImpl
    from vpnsim.traffic.datagrams import Sink, Source

# Outer IPv4 (20) + UDP (8), then the inner IPv4 (20) + UDP (8): where a UDP tunnel's inner
# packet and its payload start on the plain wire.
OUTER_HEADERS = 28
INNER_IP_HEADER = 20
INNER_UDP_HEADER = 8
UDP_TUNNEL_INNER_AT = OUTER_HEADERS
UDP_TUNNEL_PAYLOAD_AT = OUTER_HEADERS + INNER_IP_HEADER + INNER_UDP_HEADER
LINK_MTU = 1500  # the lab's links: a bigger outer packet is fragmented, several on the wire

# The reference's AEAD and offload wires (tunnel.secure_wire, tunnel.crypto, tunnel.offload;
# tests/unit/test_impair_wire_model.py checks these copies): kept here so the oracle needs
# neither `cryptography` nor the tunnel's modules.
AEAD_DATA_HEADER = 16  # type, reserved, receiver index, counter
AEAD_TAG = 16
AEAD_HANDSHAKE = 60  # an initiation or a response
AEAD_REPLAY_WINDOW = 2048
VNET_TRAILER = 10  # the offload wire's virtio_net_hdr, after the inner packet


class Unpredictable(UsageError):
    """Asked for a fate whose outcome the model cannot tell (damage nothing checks)."""


@dataclass(frozen=True)
class WireModel:
    """What a tunnel puts on the wire around each inner packet, and what it promises.

    `header` and `trailer`: the tunnel's bytes before and after the inner packet in a data
    datagram (the AEAD mode's data header; its tag, the offload wire's vnet header).
    `replay_window`: the datagrams a receiver takes once each, in any order within that many
    (None: none, every copy is delivered). `authenticated`: any damaged byte of the datagram
    drops it. `inner_checksum_on_wire`: the inner UDP checksum is computed by the sender
    (False: checksum offload, the far end's kernel fills it in, so it checks nothing on the
    way). `control_lengths`: outer IP lengths of the tunnel's own messages (handshakes,
    keepalives), which take places in the wire's schedule between data packets.
    """

    name: str
    header: int = 0
    trailer: int = 0
    replay_window: int | None = None
    authenticated: bool = False
    inner_checksum_on_wire: bool = True
    control_lengths: frozenset[int] = frozenset()

    @property
    def replay_protected(self) -> bool:
        return self.replay_window is not None

    @property
    def inner_at(self) -> int:
        """Where the inner packet starts in the outer IP packet."""
        return OUTER_HEADERS + self.header

    @property
    def payload_at(self) -> int:
        """Where an inner UDP/IPv4 datagram's payload starts in the outer IP packet."""
        return self.inner_at + INNER_IP_HEADER + INNER_UDP_HEADER

    def outer_length(self, size: int) -> int:
        """The outer IP packet of an inner UDP/IPv4 datagram with `size` bytes of payload."""
        return self.payload_at + size + self.trailer

    @property
    def one_packet(self) -> int:
        """The largest UDP payload whose outer packet is one packet on the wire."""
        return LINK_MTU - self.payload_at - self.trailer


PLAIN = WireModel("plain")
_AEAD_CONTROL = frozenset(
    {OUTER_HEADERS + AEAD_HANDSHAKE, OUTER_HEADERS + AEAD_DATA_HEADER + AEAD_TAG}
)


def wire_model(impl: TunnelImpl) -> WireModel:
    """The model of `impl`'s wire: the reference variant's flags say; anything else (the
    plain reference, a SEED submission, commands) is the plain SEED wire."""
    flags = impl.reference_flags
    aead = any(f == "--wire" and v == "aead" for f, v in pairwise(flags))
    offload = "--offload" in flags
    if not aead and not offload:
        return PLAIN
    trailer = VNET_TRAILER if offload else 0
    if not aead:
        # TUN checksum offload: U's kernel leaves the inner UDP checksum to the far end.
        return WireModel("offload", trailer=trailer, inner_checksum_on_wire=False)
    return WireModel(
        "aead offload" if offload else "aead",
        header=AEAD_DATA_HEADER,
        trailer=trailer + AEAD_TAG,
        replay_window=AEAD_REPLAY_WINDOW,
        authenticated=True,
        inner_checksum_on_wire=not offload,
        control_lengths=_AEAD_CONTROL,
    )


def data_positions(model: WireModel, seen: list[int], sizes: list[int]) -> list[int]:
    """Where the sent datagrams' packets are among the packets the wire saw one way (their
    outer lengths, in order): every other one must be one of the tunnel's own messages.

    Raises ValueError naming the difference otherwise, or if a sent datagram could be taken
    for a control message (its length is one of theirs)."""
    wanted = [model.outer_length(size) for size in sizes]
    clash = sorted(set(wanted) & model.control_lengths)
    if clash:
        raise ValueError(
            f"{model.name} wire: datagrams of outer length {clash} look like its own messages"
        )
    positions = [i for i, length in enumerate(seen) if length not in model.control_lengths]
    found = [seen[i] for i in positions]
    if found != wanted:
        raise ValueError(
            f"{model.name} wire: the wire saw data packets of lengths {found}, "
            f"the datagrams sent make {wanted}"
        )
    return positions


def expected_arrivals(
    sent: list[bytes],
    fates: list[Fate],
    *,
    model: WireModel = PLAIN,
    fix_checksums: bool = False,
    inner_checksum: bool = True,
) -> Counter[bytes]:
    """The datagrams that must arrive, with how many times each (one outer packet each).

    Copies arrive as often as made, or once through a replay-protected tunnel (each datagram
    is within its window of the others: an example sends fewer). Corruption must hit the
    tunnel's datagram (`corrupt_bytes` from byte 28 on; on the plain wire, the inner packet).
    The outer UDP checksum drops it, unless the wire fixed the outer checksums; an
    authenticated tunnel drops it anyway. Then damage to the inner IP header is dropped by its
    header checksum (or, in the version nibble, by the TUN device); damage to the inner UDP
    header or payload by the inner UDP checksum, unless the datagram was sent without one (or
    the far end fills it in: checksum offload): then a damaged payload arrives as damaged, and
    a damaged UDP header (another port, a shorter length) or trailer has no single outcome to
    predict (`Unpredictable`).
    """
    window = model.replay_window
    if window is not None and len(sent) >= window:
        raise Unpredictable(f"{len(sent)} datagrams: reordering may reach past the replay window")
    expected: Counter[bytes] = Counter()
    for data, fate in zip(sent, fates, strict=True):
        if not fate.delivered:
            continue
        copies = 1 if model.replay_protected else fate.copies
        at = fate.corrupt_at
        if at is None:
            expected[data] += copies
            continue
        if at < (OUTER_HEADERS if model.authenticated else model.inner_at):
            raise Unpredictable(f"corruption at byte {at}: outside the inner packet")
        if not fix_checksums or model.authenticated:
            continue  # the outer UDP checksum, or the AEAD tag
        inner = at - model.inner_at
        if inner < INNER_IP_HEADER:
            continue  # the inner IP header's checksum
        if inner >= INNER_IP_HEADER + INNER_UDP_HEADER + len(data):
            raise Unpredictable(
                f"corruption at byte {at}, in the tunnel's trailer past fixed outer checksums: "
                "no single outcome to predict"
            )
        checked = inner_checksum and model.inner_checksum_on_wire
        if checked:
            continue  # the inner UDP checksum
        if inner < INNER_IP_HEADER + INNER_UDP_HEADER:
            raise Unpredictable(
                f"corruption at byte {at}, in the inner UDP header of a datagram "
                "without a checksum: no single outcome to predict"
            )
        damaged = bytearray(data)
        damaged[at - model.payload_at] ^= fate.xor
        expected[bytes(damaged)] += copies
    return expected


def send_through(
    wire: ImpairedLink,
    impairment: Impairment,
    source: Source,
    sink: Sink,
    datagrams: list[bytes],
    expected: int | Callable[[], int],
    *,
    timeout: float = 0.3,
    burst: int = 0,
) -> list[bytes]:
    """Set `impairment` on `wire`, send `datagrams` from `source`, and return what `sink`
    received: waiting for `expected` of them once the wire has seen as many packets as
    datagrams and has nothing left queued (a function: called then, so it may read what the
    wire saw, e.g. a tunnel's own messages, and wait for more).

    With `burst`, datagrams go `burst` at a time, each burst once the wire has seen the last:
    however busy the machine, the queues on the way (the client's TUN holds 500 packets)
    never overflow, so every datagram meets the wire and its fate is the schedule's."""
    sink.drain()  # stale arrivals of an earlier run are not this run's
    wire.set(impairment)
    step = burst or len(datagrams)
    for start in range(0, len(datagrams), step):
        if start:
            wire.wait_seen(start)
        source.send(datagrams[start : start + step])
    wire.wait_seen(len(datagrams))  # one outer packet each: none still on its way to the wire
    wire.wait_idle()
    return sink.collect(expected if isinstance(expected, int) else expected(), timeout)
