"""The AEAD mode's primitives: replay window, key schedule, packet cipher, PSK files."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpnsim.tunnel.crypto import (
    REJECT_AFTER_MESSAGES,
    REPLAY_WINDOW,
    CryptoError,
    EphemeralKey,
    PacketCipher,
    PskFileError,
    ReplayWindow,
    derive_session_keys,
    handshake_mac,
    load_psk,
    mac_matches,
)


def accepted(window: ReplayWindow, counters: list[int]) -> list[bool]:
    return [window.accept(c) for c in counters]


def test_the_window_is_2048_counters() -> None:
    assert ReplayWindow().size == REPLAY_WINDOW == 2048


def test_counters_in_order_are_accepted_once_each() -> None:
    window = ReplayWindow()
    assert accepted(window, [0, 1, 2, 3]) == [True] * 4
    assert accepted(window, [0, 1, 2, 3]) == [False] * 4
    assert window.highest == 3


def test_a_duplicate_is_rejected_wherever_it_falls() -> None:
    window = ReplayWindow()
    assert accepted(window, [5, 5, 9, 5, 9]) == [True, False, True, False, False]


def test_out_of_order_within_the_window_is_accepted_once() -> None:
    window = ReplayWindow()
    assert accepted(window, [3000, 2999, 953, 2000, 953, 2999]) == [
        True,
        True,
        True,  # 3000 - 953 = 2047: the oldest counter the window still holds
        True,
        False,
        False,
    ]


def test_a_counter_a_whole_window_behind_the_highest_is_too_old() -> None:
    window = ReplayWindow()
    assert window.accept(3000)
    assert not window.fresh(3000 - REPLAY_WINDOW)  # 952: one past the window
    assert window.fresh(3000 - REPLAY_WINDOW + 1)
    assert not window.accept(0)


def test_sliding_forward_keeps_what_stays_in_the_window_and_drops_the_rest() -> None:
    window = ReplayWindow()
    assert accepted(window, [10, 12]) == [True, True]
    assert window.accept(12 + REPLAY_WINDOW - 1)  # 2059: 12 is the window's oldest now
    assert not window.fresh(12)  # still remembered as seen
    assert window.fresh(13)
    assert not window.fresh(11)  # fell out of the window: too old, though never seen
    assert window.accept(10**15)  # a jump past the whole window
    assert (window.highest, window.fresh(10**15 - 1), window.fresh(2059)) == (10**15, True, False)


def test_asking_whether_fresh_marks_nothing() -> None:
    window = ReplayWindow()
    assert window.fresh(7) and window.fresh(7)
    assert window.highest == -1


def test_counters_at_the_reject_limit_are_never_fresh() -> None:
    window = ReplayWindow()
    assert not window.fresh(REJECT_AFTER_MESSAGES)
    assert not window.accept(2**64 - 1)
    assert window.accept(REJECT_AFTER_MESSAGES - 1)


def test_both_ends_derive_the_same_keys_and_a_different_psk_derives_others() -> None:
    client, server = EphemeralKey(bytes([1]) * 32), EphemeralKey(bytes([2]) * 32)
    psk = bytes(32)
    ours = derive_session_keys(
        psk, client.shared_secret(server.public), client.public, server.public
    )
    theirs = derive_session_keys(
        psk, server.shared_secret(client.public), client.public, server.public
    )
    assert ours == theirs
    assert len({ours.confirm, ours.initiator_to_responder, ours.responder_to_initiator}) == 3
    other = derive_session_keys(
        bytes([9]) * 32, client.shared_secret(server.public), client.public, server.public
    )
    assert other.initiator_to_responder != ours.initiator_to_responder


def test_a_low_order_public_key_is_refused() -> None:
    with pytest.raises(CryptoError):
        EphemeralKey(bytes([1]) * 32).shared_secret(bytes(32))


def test_the_packet_cipher_authenticates_counter_header_and_body() -> None:
    sender, receiver = PacketCipher(bytes(range(32))), PacketCipher(bytes(range(32)))
    sealed = sender.seal(7, b"header", b"inner packet")
    assert len(sealed) == len(b"inner packet") + 16
    assert receiver.open(7, b"header", sealed) == b"inner packet"
    assert receiver.open(8, b"header", sealed) is None
    assert receiver.open(7, b"headeR", sealed) is None
    assert receiver.open(7, b"header", bytes([sealed[0] ^ 1]) + sealed[1:]) is None
    assert receiver.open(7, b"header", sealed[:-1]) is None


def test_handshake_macs_are_16_bytes_and_keyed() -> None:
    mac = handshake_mac(b"k" * 32, b"message")
    assert len(mac) == 16
    assert mac_matches(b"k" * 32, b"message", mac)
    assert not mac_matches(b"K" * 32, b"message", mac)
    assert not mac_matches(b"k" * 32, b"messagE", mac)


def test_a_psk_file_is_hashed_to_32_bytes_ignoring_surrounding_whitespace(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"correct horse battery staple\n")
    (tmp_path / "b").write_bytes(b"  correct horse battery staple")
    (tmp_path / "c").write_bytes(b"correct horse battery stapler")
    keys = [load_psk(tmp_path / name) for name in "abc"]
    assert len(keys[0]) == 32
    assert keys[0] == keys[1] != keys[2]


def test_a_short_or_missing_psk_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    short = tmp_path / "short.psk"
    short.write_bytes(b"0123456789abcde\n")
    with pytest.raises(PskFileError, match=r"short\.psk: 15 bytes of secret, need at least 16"):
        load_psk(short)
    with pytest.raises(PskFileError, match=r"missing\.psk: No such file"):
        load_psk(tmp_path / "missing.psk")
