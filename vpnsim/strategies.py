"""Hypothesis strategies for traffic through a tunnel: payload sizes, payloads, impairments.

Sizes mix the edges that break tunnels (1 byte, around the TUN and link MTUs, the largest UDP
payload) with anything in between, and shrink toward 1 byte. Payloads are built from a seed
rather than drawn byte by byte: Hypothesis' buffer cannot hold 65507 drawn bytes, and a seed
keeps a failing example short to print and exact to replay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from vpnsim.impair.spec import Action, Applies, Event, GilbertElliott, Impairment

MAX_UDP_PAYLOAD = 65507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
MAX_ICMP_PAYLOAD = 65507  # 65535 - 20 (IPv4 header) - 8 (ICMP echo header)
LINK_MTU = 1500
OUTER_OVERHEAD = 28  # outer IPv4 + UDP headers added by a UDP tunnel


def edge_sizes(mtu: int = LINK_MTU, header: int = 28) -> list[int]:
    """Payload sizes at the edges: a payload of `mtu - header` bytes exactly fills one packet."""
    fill = mtu - header
    inner_fill = mtu - OUTER_OVERHEAD - header  # fills a TUN sized so outer packets fit
    return sorted(
        {1, inner_fill, inner_fill + 1, fill - 1, fill, fill + 1, 2 * fill + 1, MAX_UDP_PAYLOAD}
    )


def payload_sizes(max_size: int = MAX_UDP_PAYLOAD) -> st.SearchStrategy[int]:
    """Sizes from 1 to `max_size`, edges first; shrinks toward 1."""
    edges = [size for size in edge_sizes() if size <= max_size]
    return st.one_of(st.integers(1, max_size), st.sampled_from(edges))


@dataclass(frozen=True)
class Payload:
    """A payload described by size and seed, so a failing example prints in one line."""

    size: int
    seed: int

    def data(self) -> bytes:
        return random.Random(self.seed).randbytes(self.size)

    def __repr__(self) -> str:
        return f"Payload(size={self.size}, seed={self.seed})"


def payloads(max_size: int = MAX_UDP_PAYLOAD) -> st.SearchStrategy[Payload]:
    return st.builds(Payload, size=payload_sizes(max_size), seed=st.integers(0, 2**32 - 1))


# Impairment schedules. Every kind of impairment is switched on by a boolean drawn first, so
# Hypothesis shrinks a failing schedule toward fewer kinds, then smaller probabilities and
# delays (whole percents and milliseconds: short to print), then fewer, earlier named events
# and seed 0.


def probabilities(at_most: float) -> st.SearchStrategy[float]:
    """0.01 steps from 0.01 to `at_most`; shrinks toward 0.01."""
    return st.integers(1, max(1, round(at_most * 100))).map(lambda percent: percent / 100)


def _maybe(enabled: bool, values: st.SearchStrategy[Any], off: Any) -> st.SearchStrategy[Any]:
    if not enabled:
        return st.just(off)
    return st.booleans().flatmap(lambda on: values if on else st.just(off))


def events(
    max_packet: int = 20,
    actions: tuple[Action, ...] = ("drop", "dup", "reorder", "delay"),
    max_events: int = 4,
) -> st.SearchStrategy[tuple[Event, ...]]:
    """Named packets' fates ("drop packet 3"); shrinks toward none, then packet 1, then drop."""
    event = st.builds(
        lambda packet, action, ms: Event(packet, action, ms if action == "delay" else 0),
        st.integers(1, max_packet),
        st.sampled_from(actions),
        st.integers(1, 30),
    )
    unique = st.lists(event, max_size=max_events, unique_by=lambda e: (e.packet, e.action))
    return unique.map(lambda found: tuple(sorted(found, key=lambda e: (e.packet, e.action))))


@st.composite
def impairments(
    draw: st.DrawFn,
    *,
    max_loss: float = 0.5,
    bursts: bool = True,
    max_dup: float = 0.2,
    max_reorder: float = 0.2,
    max_corrupt: float = 0.0,
    corrupt_bytes: tuple[int, int] | None = None,
    fix_checksums: bool | None = False,
    max_delay_ms: int = 20,
    max_jitter_ms: int = 10,
    named_events: st.SearchStrategy[tuple[Event, ...]] | None = None,
    direction: Applies = "both",
) -> Impairment:
    """Impairment schedules within the given bounds (0 switches a kind off).

    `fix_checksums=None` draws it; `named_events` defaults to `events()`. With `bursts`, loss
    is sometimes a Gilbert-Elliott model whose mean loss stays under `max_loss`.
    """
    loss, burst = 0.0, None
    if max_loss and draw(st.booleans()):
        if bursts and draw(st.booleans()):
            r = draw(st.integers(10, 90)) / 100
            # The mean loss p / (p + r) stays <= max_loss for p <= max_loss * r / (1 - max_loss).
            p_max = 1.0 if max_loss >= 1 else max_loss * r / (1 - max_loss)
            p = draw(probabilities(min(1.0, p_max)))
            burst = GilbertElliott(p=p, r=r)
        else:
            loss = draw(probabilities(max_loss))
    corrupt = draw(_maybe(bool(max_corrupt), probabilities(max_corrupt), 0.0))
    fix = draw(st.booleans()) if fix_checksums is None else fix_checksums
    return Impairment(
        seed=draw(st.integers(0, 2**32 - 1)),
        loss=loss,
        burst=burst,
        dup=draw(_maybe(bool(max_dup), probabilities(max_dup), 0.0)),
        reorder=draw(_maybe(bool(max_reorder), probabilities(max_reorder), 0.0)),
        corrupt=corrupt,
        corrupt_bytes=corrupt_bytes if corrupt else None,
        fix_checksums=fix if corrupt else False,
        delay_ms=draw(_maybe(bool(max_delay_ms), st.integers(1, max(1, max_delay_ms)), 0)),
        jitter_ms=draw(_maybe(bool(max_jitter_ms), st.integers(1, max(1, max_jitter_ms)), 0)),
        events=draw(named_events if named_events is not None else events()),
        direction=direction,
    )
