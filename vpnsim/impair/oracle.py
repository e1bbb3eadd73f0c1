"""What a correct tunnel delivers through a wire: the test oracle of the loss properties, and
the one way they send datagrams through it.

Given the datagrams sent one way through the tunnel and the fates the wire's schedule gives
their outer packets (`schedule.predict`), the multiset of datagrams that must arrive: a lost
one never, a duplicated one twice, a corrupted one never if a checksum catches the damage,
else exactly as damaged.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from vpnsim.impair.spec import Fate, Impairment

if TYPE_CHECKING:
    from vpnsim.impair.link import ImpairedLink
    from vpnsim.traffic.datagrams import Sink, Source

# Outer IPv4 (20) + UDP (8), then the inner IPv4 (20) + UDP (8): where a UDP tunnel's inner
# packet and its payload start on the wire.
UDP_TUNNEL_INNER_AT = 28
UDP_TUNNEL_PAYLOAD_AT = 56
INNER_UDP_HEADER = 8


def expected_arrivals(
    sent: list[bytes],
    fates: list[Fate],
    *,
    fix_checksums: bool = False,
    inner_checksum: bool = True,
    payload_at: int = UDP_TUNNEL_PAYLOAD_AT,
) -> Counter[bytes]:
    """The datagrams that must arrive, with how many times each (one outer packet each).

    Corruption must hit the inner packet (`corrupt_bytes` from its start). The outer UDP
    checksum drops it, unless the wire fixed the outer checksums. Then damage to the inner IP
    header is dropped by its header checksum (or, in the version nibble, by the TUN device);
    damage to the inner UDP header or payload by the inner UDP checksum, unless the datagram
    was sent without one: then a damaged payload arrives as damaged, and a damaged UDP header
    (another port, a shorter length) has no single outcome to predict.
    """
    expected: Counter[bytes] = Counter()
    for data, fate in zip(sent, fates, strict=True):
        if not fate.delivered:
            continue
        if fate.corrupt_at is None:
            expected[data] += fate.copies
            continue
        if fate.corrupt_at < payload_at - INNER_UDP_HEADER - 20:
            raise ValueError(f"corruption at byte {fate.corrupt_at}: outside the inner packet")
        caught = not fix_checksums or inner_checksum
        if caught or fate.corrupt_at < payload_at - INNER_UDP_HEADER:
            continue  # the outer checksum, the inner IP header's or the inner UDP checksum
        if fate.corrupt_at < payload_at:
            raise ValueError(
                f"corruption at byte {fate.corrupt_at}, in the inner UDP header of a datagram "
                "without a checksum: no single outcome to predict"
            )
        damaged = bytearray(data)
        damaged[fate.corrupt_at - payload_at] ^= fate.xor
        expected[bytes(damaged)] += fate.copies
    return expected


def send_through(
    wire: ImpairedLink,
    impairment: Impairment,
    source: Source,
    sink: Sink,
    datagrams: list[bytes],
    expected: int,
    *,
    timeout: float = 0.3,
    burst: int = 0,
) -> list[bytes]:
    """Set `impairment` on `wire`, send `datagrams` from `source`, and return what `sink`
    received: waiting for `expected` of them once the wire has nothing left queued.

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
    wire.wait_idle()
    return sink.collect(expected, timeout)
