"""`vpnsim lab probe --count`'s one line (`EchoSeries.line()`): what a series of echoes says,
without a lab."""

from __future__ import annotations

from vpnsim.traffic.errors import NoRoute, ProbeFailed
from vpnsim.traffic.icmp import EchoReply, EchoSeries

V = "192.168.60.5"


def series(
    sent: int,
    answered: dict[int, bytes],
    payload: bytes = b"vpnsim",
    errors: dict[int, ProbeFailed] | None = None,
    duplicates: int = 0,
) -> EchoSeries:
    replies = {seq: EchoReply(V, data, 63, seq / 1000) for seq, data in answered.items()}
    return EchoSeries(V, payload, sent, replies, errors or {}, duplicates)


def test_a_series_names_its_losses_duplicates_and_round_trips() -> None:
    seen = series(5, {1: b"vpnsim", 3: b"vpnsim", 4: b"vpnsim"}, duplicates=2)

    assert seen.lost == [2, 5] and seen.loss == 0.4 and seen.damaged == []
    assert seen.line() == (
        "5 sent, 3 answered, 40% lost (#2 #5), 2 duplicate replies; "
        "rtt min/avg/max 1.00/2.67/4.00 ms"
    )


def test_long_loss_lists_are_cut_after_twenty() -> None:
    line = series(30, {30: b"vpnsim"}).line()

    first_twenty = " ".join(f"#{seq}" for seq in range(1, 21))
    assert f"97% lost ({first_twenty} and 9 more)" in line


def test_a_damaged_reply_is_named() -> None:
    partly = series(2, {1: b"vpnsim", 2: b"vpnsIm"})
    assert partly.line().startswith("2 sent, 2 answered, 0% lost, 1 damaged (#2); rtt ")

    only_damaged = series(2, {2: b"vpnsIm"})
    assert only_damaged.line().startswith("2 sent, 1 answered, 50% lost (#1), 1 damaged (#2); rtt ")


def test_icmp_errors_count_as_lost_and_the_first_is_quoted() -> None:
    unreachable = NoRoute("ICMP echo of 6 bytes from U to 192.168.60.5: host unreachable")

    line = series(2, {}, errors={2: unreachable, 1: unreachable}).line()
    assert line == (
        "2 sent, 0 answered, 100% lost (#1 #2); 2 ICMP errors, first: "
        "ICMP echo of 6 bytes from U to 192.168.60.5: host unreachable"
    )
