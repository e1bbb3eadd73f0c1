"""The oracle's wire models: what each tunnel puts around an inner packet and what it promises
(a duplicate taken once, damage always dropped), derived from the implementation under test."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from vpnsim.impair import oracle
from vpnsim.impair.oracle import (
    PLAIN,
    Unpredictable,
    WireModel,
    data_positions,
    expected_arrivals,
    wire_model,
)
from vpnsim.impair.spec import Fate
from vpnsim.impl import VARIANTS, TunnelImpl
from vpnsim.tunnel import crypto, offload, secure_wire
from vpnsim.tunnel.secure import Session

AEAD = wire_model(VARIANTS["reference-aead"])
OFFLOAD = wire_model(VARIANTS["reference-offload"])
AEAD_OFFLOAD = wire_model(VARIANTS["reference-aead-offload"])
A, B, C = b"first", b"second", b"third"


def test_the_oracles_copies_of_the_tunnels_sizes_are_the_tunnels() -> None:
    assert oracle.AEAD_DATA_HEADER == secure_wire.DATA_HEADER_BYTES
    assert oracle.AEAD_TAG == crypto.TAG_BYTES
    assert oracle.AEAD_HANDSHAKE == secure_wire.HANDSHAKE_BYTES
    assert oracle.AEAD_REPLAY_WINDOW == crypto.REPLAY_WINDOW
    assert oracle.VNET_TRAILER == offload.VNET_HDR_BYTES


def test_the_reference_and_anything_not_a_reference_variant_is_the_plain_seed_wire(
    tmp_path: Path,
) -> None:
    (tmp_path / "tun_client.py").write_text("")
    (tmp_path / "tun_server.py").write_text("")

    assert wire_model(VARIANTS["reference"]) == PLAIN
    assert wire_model(TunnelImpl.parse([str(tmp_path)])) == PLAIN
    assert wire_model(TunnelImpl.parse(["client=./my_client --wire aead"])) == PLAIN
    assert WireModel("plain", header=0, trailer=0, replay_window=None) == PLAIN
    assert (PLAIN.inner_at, PLAIN.payload_at, PLAIN.one_packet) == (28, 56, 1444)


def test_the_variants_models_say_what_their_flags_make() -> None:
    assert wire_model(VARIANTS["reference-aead"]) == WireModel(
        "aead",
        header=16,
        trailer=16,
        replay_window=2048,
        authenticated=True,
        control_lengths=frozenset({60, 88}),
    )
    assert wire_model(VARIANTS["reference-offload"]) == WireModel(
        "offload", trailer=10, inner_checksum_on_wire=False
    )
    assert wire_model(VARIANTS["reference-aead-offload"]) == WireModel(
        "aead offload",
        header=16,
        trailer=26,
        replay_window=2048,
        authenticated=True,
        inner_checksum_on_wire=False,
        control_lengths=frozenset({60, 88}),
    )
    assert [m.one_packet for m in (AEAD, OFFLOAD, AEAD_OFFLOAD)] == [1412, 1434, 1402]


@pytest.mark.parametrize("model", [AEAD, AEAD_OFFLOAD], ids=["aead", "aead-offload"])
@pytest.mark.parametrize("size", [1, 1000])
def test_an_aead_data_packet_is_as_long_as_the_model_says(model: WireModel, size: int) -> None:
    inner = bytes(28 + size)
    trailer = bytes(offload.VNET_HDR_BYTES) if "offload" in model.name else b""
    session = Session(1, 2, bytes(32), bytes(32), now=0.0)

    datagram = session.seal(inner + trailer)

    assert oracle.OUTER_HEADERS + len(datagram) == model.outer_length(size)
    assert datagram[model.header : model.header + len(inner)] != inner  # ciphertext there
    # The tunnel's own messages: a keepalive (empty data) and a handshake message.
    keepalive = oracle.OUTER_HEADERS + len(session.seal(b""))
    handshake = oracle.OUTER_HEADERS + secure_wire.HANDSHAKE_BYTES
    assert model.control_lengths == {keepalive, handshake}


def test_with_replay_protection_every_delivered_datagram_arrives_once() -> None:
    fates = [Fate(copies=2), Fate(copies=3, reorder=True), Fate(drop="loss"), Fate(delay_ms=4)]

    assert expected_arrivals([A, B, C, A], fates, model=AEAD) == Counter({A: 2, B: 1})
    assert expected_arrivals([A, B, C, A], fates, model=OFFLOAD) == Counter({A: 3, B: 3})
    assert expected_arrivals([A, B, C, A], fates) == Counter({A: 3, B: 3})


@pytest.mark.parametrize("model", [AEAD, AEAD_OFFLOAD], ids=["aead", "aead-offload"])
@pytest.mark.parametrize("fix_checksums", [True, False])
@pytest.mark.parametrize("inner_checksum", [True, False])
def test_an_authenticated_wire_drops_damage_to_any_byte_of_its_datagram(
    model: WireModel, fix_checksums: bool, inner_checksum: bool
) -> None:
    end = model.outer_length(len(A))
    fates = [Fate(corrupt_at=at, xor=0x01, copies=2) for at in range(28, end)]

    got = expected_arrivals(
        [A] * len(fates),
        fates,
        model=model,
        fix_checksums=fix_checksums,
        inner_checksum=inner_checksum,
    )

    assert got == Counter()
    # Damage to the outer headers past fixed checksums (another source port): authentic
    # still, delivered from elsewhere; nothing this oracle predicts.
    with pytest.raises(Unpredictable, match="byte 27: outside the inner packet"):
        expected_arrivals([A], [Fate(corrupt_at=27, xor=1)], model=model)


def test_checksum_offload_delivers_payload_damage_whatever_the_inner_checksum() -> None:
    at = OFFLOAD.payload_at + 1  # the offload wire's inner packet starts where plain's does
    fates = [Fate(corrupt_at=at, xor=0x01, copies=2)]

    for inner_checksum in (True, False):
        assert expected_arrivals(
            [A], fates, model=OFFLOAD, fix_checksums=True, inner_checksum=inner_checksum
        ) == Counter({b"fhrst": 2})
    assert expected_arrivals([A], fates, fix_checksums=True) == Counter()  # plain: caught
    assert expected_arrivals([A], fates, model=OFFLOAD) == Counter()  # outer checksum


def test_damage_to_an_unauthenticated_trailer_past_fixed_checksums_has_no_prediction() -> None:
    trailer = Fate(corrupt_at=OFFLOAD.payload_at + len(A), xor=1)

    with pytest.raises(Unpredictable, match="byte 61, in the tunnel's trailer"):
        expected_arrivals([A], [trailer], model=OFFLOAD, fix_checksums=True)
    assert expected_arrivals([A], [trailer], model=OFFLOAD) == Counter()


def test_more_datagrams_than_the_replay_window_have_no_prediction() -> None:
    small = WireModel("tiny window", replay_window=2)

    with pytest.raises(Unpredictable, match="3 datagrams: reordering may reach past"):
        expected_arrivals([A, B, C], [Fate()] * 3, model=small)
    assert expected_arrivals([A], [Fate(copies=2)], model=small) == Counter({A: 1})


def test_data_positions_skip_the_tunnels_own_messages_and_nothing_else() -> None:
    sizes = [1, 5]
    data = [AEAD.outer_length(size) for size in sizes]

    assert data_positions(AEAD, [88, data[0], 60, 60, data[1], 88], sizes) == [1, 4]
    assert data_positions(PLAIN, [57, 61], sizes) == [0, 1]
    with pytest.raises(ValueError, match=r"saw data packets of lengths \[89\], the datagrams"):
        data_positions(AEAD, [data[0], 88], sizes)
    with pytest.raises(ValueError, match=r"lengths \[88, 57, 61\]"):
        data_positions(PLAIN, [88, 57, 61], sizes)  # plain has no messages of its own
    with pytest.raises(ValueError, match=r"outer length \[88\] look like its own messages"):
        data_positions(AEAD, [88], [0])
