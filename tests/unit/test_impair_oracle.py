"""The loss properties' oracle: which datagrams a correct tunnel delivers through a wire."""

from __future__ import annotations

from collections import Counter

import pytest

from vpnsim.impair.oracle import (
    UDP_TUNNEL_INNER_AT as INNER_AT,
)
from vpnsim.impair.oracle import (
    UDP_TUNNEL_PAYLOAD_AT as PAYLOAD_AT,
)
from vpnsim.impair.oracle import expected_arrivals
from vpnsim.impair.spec import Fate

A, B, C = b"first", b"second", b"third"


def test_lost_datagrams_never_arrive_and_copies_arrive_as_often_as_made() -> None:
    fates = [Fate(drop="loss"), Fate(copies=2), Fate(copies=1, delay_ms=5.0, reorder=True)]

    assert expected_arrivals([A, B, C], fates) == Counter({B: 2, C: 1})


@pytest.mark.parametrize("inner_checksum", [True, False])
def test_without_fixed_outer_checksums_every_corrupted_datagram_is_dropped(
    inner_checksum: bool,
) -> None:
    fates = [Fate(corrupt_at=PAYLOAD_AT, xor=1), Fate(corrupt_at=INNER_AT, xor=0xFF), Fate()]

    assert expected_arrivals([A, B, C], fates, inner_checksum=inner_checksum) == Counter({C: 1})


@pytest.mark.parametrize("inner_checksum", [True, False])
@pytest.mark.parametrize("at", [INNER_AT, INNER_AT + 9, PAYLOAD_AT - 9])
def test_damage_to_the_inner_ip_header_is_dropped_even_past_fixed_outer_checksums(
    at: int, inner_checksum: bool
) -> None:
    fates = [Fate(corrupt_at=at, xor=0x40, copies=2)]

    assert expected_arrivals([A], fates, fix_checksums=True, inner_checksum=inner_checksum) == (
        Counter()
    )


def test_damaged_payload_arrives_damaged_only_without_an_inner_checksum() -> None:
    fates = [Fate(corrupt_at=PAYLOAD_AT + 2, xor=0x01, copies=2)]

    assert expected_arrivals([A], fates, fix_checksums=True) == Counter()
    assert expected_arrivals([A], fates, fix_checksums=True, inner_checksum=False) == Counter(
        {b"fisst": 2}
    )


def test_damage_outside_the_inner_packet_or_in_an_unchecked_udp_header_has_no_prediction() -> None:
    with pytest.raises(ValueError, match="byte 27: outside the inner packet"):
        expected_arrivals([A], [Fate(corrupt_at=INNER_AT - 1, xor=1)])
    with pytest.raises(ValueError, match="byte 50, in the inner UDP header"):
        expected_arrivals(
            [A], [Fate(corrupt_at=PAYLOAD_AT - 6, xor=1)], fix_checksums=True, inner_checksum=False
        )
    # With the inner checksum on, the same damage is simply dropped.
    assert expected_arrivals([A], [Fate(corrupt_at=PAYLOAD_AT - 6, xor=1)], fix_checksums=True) == (
        Counter()
    )
