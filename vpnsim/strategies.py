"""Hypothesis strategies for traffic through a tunnel: payload sizes and payloads.

Sizes mix the edges that break tunnels (1 byte, around the TUN and link MTUs, the largest UDP
payload) with anything in between, and shrink toward 1 byte. Payloads are built from a seed
rather than drawn byte by byte: Hypothesis' buffer cannot hold 65507 drawn bytes, and a seed
keeps a failing example short to print and exact to replay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import strategies as st

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
