"""The wire's sans-IO core with a fake clock: forwarding, loss, duplication, delay, the rate
limit, reordering and its hold limit (after which a held packet still gets its delay, the
rate limit and the queue limit), the queue limit, frames that pass untouched, the fate
log, resetting with set(), and the stats a wire reports."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from vpnsim.impair.core import HOLD_LIMIT, QUEUE_LIMIT, Counters, LogEntry, WireCore
from vpnsim.impair.schedule import predict
from vpnsim.impair.spec import Event, Fate, GilbertElliott, Impairment

MACS: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
TEMPLATE = bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / bytes(32))
IP_LENGTH = 20 + 8 + 32
ARP_FRAME = bytes(Ether(**MACS) / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))


def frame(n: int, size: int = len(TEMPLATE)) -> bytes:
    """An IPv4/UDP frame of `size` bytes numbered `n` (in its last payload bytes)."""
    ip_length = size - 14
    head = bytearray(TEMPLATE[:42])
    struct.pack_into("!H", head, 16, ip_length)  # IP total length
    struct.pack_into("!H", head, 38, ip_length - 20)  # UDP length
    return bytes(head) + bytes(size - 42 - 4) + struct.pack("!I", n)


def numbers(out: Sequence[tuple[str, bytes]]) -> list[tuple[str, int]]:
    return [(direction, struct.unpack("!I", f[-4:])[0]) for direction, f in out]


def counts(core: WireCore, direction: str = "out", **expected: int) -> None:
    assert core.counters[direction] == Counters(**expected)  # type: ignore[index]


def test_a_clean_core_forwards_at_once_in_order() -> None:
    core = WireCore()
    got = [core.receive("out", frame(n), now=5.0) for n in (1, 2, 3)]
    assert got == [[("out", frame(1))], [("out", frame(2))], [("out", frame(3))]]
    assert core.receive("in", frame(9), now=5.0) == [("in", frame(9))]
    counts(core, "out", seen=3, delivered=3)
    counts(core, "in", seen=1, delivered=1)
    assert core.queued() == 0
    assert core.next_deadline() is None
    assert core.due(100.0) == []


def test_loss_drops_and_counts() -> None:
    core = WireCore(Impairment(loss=1.0))
    assert core.receive("out", frame(1), 0.0) == []
    counts(core, seen=1, dropped=1)
    assert core.queued() == 0


def test_loss_drops_exactly_the_predicted_packets() -> None:
    imp = Impairment(seed=21, loss=0.5, dup=0.2)
    core = WireCore(imp)
    delivered = [numbers(core.receive("out", frame(n), float(n))) for n in range(200)]
    fates = predict(imp, "out", [IP_LENGTH] * 200)
    expected = [[("out", n)] * f.copies if f.delivered else [] for n, f in enumerate(fates)]
    assert delivered == expected
    lost = sum(not fate.delivered for fate in fates)
    extra = sum(fate.copies - 1 for fate in fates if fate.delivered)
    counts(core, seen=200, delivered=200 - lost + extra, dropped=lost, duplicated=extra)
    assert 70 < lost < 130


def test_duplication_sends_two_frames() -> None:
    core = WireCore(Impairment(dup=1.0))
    assert core.receive("in", frame(1), 0.0) == [("in", frame(1)), ("in", frame(1))]
    counts(core, "in", seen=1, delivered=2, duplicated=1)


def test_delay_queues_until_now_plus_delay() -> None:
    core = WireCore(Impairment(delay_ms=50))
    assert core.receive("out", frame(1), 1.0) == []
    assert core.receive("out", frame(2), 1.01) == []
    assert core.queued() == 2
    assert core.next_deadline() == 1.0 + 50 / 1000
    assert core.due(1.0499) == []
    assert numbers(core.due(1.05)) == [("out", 1)]
    assert core.next_deadline() == 1.01 + 50 / 1000
    assert numbers(core.due(1.2)) == [("out", 2)]
    assert core.next_deadline() is None
    counts(core, seen=2, delivered=2, delayed=2)


def test_rate_limit_serialises() -> None:
    core = WireCore(Impairment(rate=1_000_000))  # a 1500-byte frame takes 12 ms
    for n in (1, 2, 3):
        assert core.receive("out", frame(n, 1500), 0.0) == []
    assert core.next_deadline() == pytest.approx(0.012, abs=1e-12)
    assert core.due(0.0119) == []
    assert numbers(core.due(0.0121)) == [("out", 1)]
    assert core.next_deadline() == pytest.approx(0.024, abs=1e-12)
    assert numbers(core.due(0.0241)) == [("out", 2)]
    assert core.next_deadline() == pytest.approx(0.036, abs=1e-12)
    assert numbers(core.due(0.0361)) == [("out", 3)]
    # An idle link starts afresh; the other direction has its own.
    core.receive("out", frame(4, 1500), 1.0)
    core.receive("in", frame(5, 750), 1.0)
    assert numbers(core.due(1.006)) == [("in", 5)]
    assert numbers(core.due(1.012)) == [("out", 4)]
    counts(core, seen=4, delivered=4, delayed=4)


def test_rate_and_delay_add_up() -> None:
    core = WireCore(Impairment(rate=1_000_000, delay_ms=100))
    core.receive("out", frame(1, 1500), 0.0)
    core.receive("out", frame(2, 1500), 0.0)
    assert core.next_deadline() == pytest.approx(0.112, abs=1e-12)
    assert numbers(core.due(0.1121)) == [("out", 1)]
    assert core.next_deadline() == pytest.approx(0.124, abs=1e-12)


def test_reorder_swaps_a_packet_with_the_next() -> None:
    core = WireCore(Impairment(events=(Event(2, "reorder"),)))
    assert numbers(core.receive("out", frame(1), 0.0)) == [("out", 1)]
    assert core.receive("out", frame(2), 0.001) == []
    assert core.receive("in", frame(7), 0.002) == [("in", frame(7))]  # another direction
    assert numbers(core.receive("out", frame(3), 0.003)) == [("out", 3), ("out", 2)]
    counts(core, seen=3, delivered=3, reordered=1)
    assert core.queued() == 0
    assert core.next_deadline() is None


def test_a_held_packet_waits_for_a_delivered_successor() -> None:
    core = WireCore(Impairment(events=(Event(1, "reorder"), Event(2, "drop"))))
    assert core.receive("out", frame(1), 0.0) == []
    assert core.receive("out", frame(2), 0.001) == []  # dropped: not a successor
    assert numbers(core.receive("out", frame(3), 0.002)) == [("out", 3), ("out", 1)]


def test_a_held_packet_with_no_successor_leaves_after_the_hold_limit() -> None:
    core = WireCore(Impairment(events=(Event(1, "reorder"), Event(1, "dup"))))
    assert core.receive("out", frame(1), 10.0) == []
    assert core.queued() == 2
    assert core.next_deadline() == 10.0 + HOLD_LIMIT
    assert core.due(10.0 + HOLD_LIMIT - 0.001) == []
    assert numbers(core.due(10.0 + HOLD_LIMIT)) == [("out", 1), ("out", 1)]
    assert core.queued() == 0
    counts(core, seen=1, delivered=2, duplicated=1, reordered=1)


def test_reordered_packets_follow_a_delayed_successor() -> None:
    core = WireCore(Impairment(delay_ms=20, events=(Event(1, "reorder"),)))
    assert core.receive("out", frame(1), 0.0) == []
    assert core.receive("out", frame(2), 0.01) == []
    assert core.next_deadline() == 0.01 + 20 / 1000
    assert numbers(core.due(0.03)) == [("out", 2), ("out", 1)]
    counts(core, seen=2, delivered=2, reordered=1, delayed=2)


def balanced(core: WireCore) -> None:
    """Every copy of every packet seen is delivered, dropped, overflowed or still queued."""
    c = core.counters["out"]
    assert c.seen + c.duplicated == (
        c.delivered + c.dropped + c.oversize + c.overflow + core.queued()
    ), c


def test_a_held_packet_released_by_the_hold_limit_still_gets_its_delay() -> None:
    core = WireCore(Impairment(events=(Event(1, "reorder"), Event(1, "delay", 20))))
    assert core.receive("out", frame(1), 10.0) == []
    assert core.next_deadline() == 10.0 + HOLD_LIMIT
    assert core.due(10.0 + HOLD_LIMIT) == []  # released from the hold into the queue
    assert core.queued() == 1
    leaves = 10.0 + HOLD_LIMIT + 20 / 1000
    assert core.next_deadline() == pytest.approx(leaves, abs=1e-12)
    assert core.due(leaves - 0.001) == []
    balanced(core)
    assert numbers(core.due(leaves + 1e-9)) == [("out", 1)]
    assert core.queued() == 0 and core.next_deadline() is None
    counts(core, seen=1, delivered=1, reordered=1, delayed=1)
    balanced(core)


def test_a_late_due_releases_and_sends_a_held_packet_whose_delay_has_passed() -> None:
    core = WireCore(Impairment(delay_ms=20, events=(Event(1, "reorder"), Event(1, "dup"))))
    assert core.receive("out", frame(1), 0.0) == []
    assert numbers(core.due(1.0)) == [("out", 1), ("out", 1)]  # released, queued and sent
    counts(core, seen=1, delivered=2, duplicated=1, reordered=1, delayed=2)
    assert core.queued() == 0


def test_a_held_packet_released_by_the_hold_limit_gets_its_jitter() -> None:
    imp = Impairment(seed=11, reorder=1.0, delay_ms=30, jitter_ms=20)
    core = WireCore(imp)
    assert core.receive("out", frame(1), 0.0) == []
    (fate,) = predict(imp, "out", [IP_LENGTH])
    assert fate.reorder and fate.delay_ms != 30  # a jittered delay
    assert core.log[0].fate == fate
    assert core.due(HOLD_LIMIT) == []
    assert core.next_deadline() == pytest.approx(HOLD_LIMIT + fate.delay_ms / 1000, abs=1e-12)
    assert numbers(core.due(HOLD_LIMIT + fate.delay_ms / 1000 + 1e-9)) == [("out", 1)]


def test_a_held_packet_released_by_the_hold_limit_waits_for_the_rate_limit() -> None:
    # 100 kbit/s: a 1500-byte frame takes 120 ms, longer than the hold limit.
    core = WireCore(Impairment(rate=100_000, events=(Event(2, "reorder"),)))
    assert core.receive("out", frame(1, 1500), 0.0) == []
    assert core.receive("out", frame(2, 1500), 0.001) == []  # held until 0.051
    assert core.due(0.001 + HOLD_LIMIT) == []  # the link is busy with frame 1 until 0.12
    assert core.queued() == 2
    assert core.next_deadline() == pytest.approx(0.12, abs=1e-12)
    assert numbers(core.due(0.1201)) == [("out", 1)]
    assert core.next_deadline() == pytest.approx(0.24, abs=1e-12)  # serialised after frame 1
    assert core.due(0.2399) == []
    assert numbers(core.due(0.2401)) == [("out", 2)]
    counts(core, seen=2, delivered=2, reordered=1, delayed=2)
    # An idle link: a released packet is serialised from its release, not from its arrival.
    core = WireCore(Impairment(rate=100_000, events=(Event(1, "reorder"),)))
    assert core.receive("out", frame(3, 1500), 1.0) == []
    assert core.due(1.0 + HOLD_LIMIT) == []
    assert core.next_deadline() == pytest.approx(1.0 + HOLD_LIMIT + 0.12, abs=1e-12)
    assert numbers(core.due(1.0 + HOLD_LIMIT + 0.1201)) == [("out", 3)]
    counts(core, seen=1, delivered=1, reordered=1, delayed=1)


def test_a_held_packet_released_by_the_hold_limit_respects_the_queue_limit() -> None:
    # Its two copies are released into a queue with room for one.
    held = QUEUE_LIMIT
    imp = Impairment(delay_ms=100, events=(Event(held, "reorder"), Event(held, "dup")))
    core = WireCore(imp)
    for n in range(1, held):
        assert core.receive("out", frame(n), 0.0) == []
    assert core.receive("out", frame(held), 0.0) == []
    assert core.queued() == QUEUE_LIMIT + 1  # QUEUE_LIMIT - 1 queued, two copies held
    balanced(core)
    assert core.due(HOLD_LIMIT) == []
    assert core.queued() == QUEUE_LIMIT
    counts(core, seen=held, duplicated=1, reordered=1, delayed=QUEUE_LIMIT, overflow=1)
    balanced(core)
    out = numbers(core.due(0.1))
    assert out == [("out", n) for n in range(1, held)]
    assert numbers(core.due(HOLD_LIMIT + 0.1)) == [("out", held)]
    counts(
        core, seen=held, delivered=QUEUE_LIMIT, duplicated=1, reordered=1,
        delayed=QUEUE_LIMIT, overflow=1,
    )  # fmt: skip
    balanced(core)


def test_counters_balance_at_every_step_of_a_busy_impaired_run() -> None:
    imp = Impairment(
        seed=8, loss=0.1, dup=0.2, reorder=0.3, delay_ms=5, jitter_ms=5, rate=2_000_000
    )
    core = WireCore(imp)
    now, sent = 0.0, 0
    for n in range(400):
        now += 0.0005 if n % 50 < 40 else 0.02  # bursts, then gaps longer than the hold limit
        sent += len(core.receive("out", frame(n, 200 + n % 7 * 100), now))
        balanced(core)
        sent += len(core.due(now))
        balanced(core)
    sent += len(core.due(now + 10.0))
    c = core.counters["out"]
    assert core.queued() == 0 and sent == c.delivered
    assert c.seen + c.duplicated == c.delivered + c.dropped + c.overflow
    assert c.reordered > 20 and c.dropped > 20 and c.duplicated > 20


def test_queue_overflow_is_counted() -> None:
    core = WireCore(Impairment(delay_ms=10))
    for n in range(QUEUE_LIMIT + 5):
        assert core.receive("out", frame(n), 0.0) == []
    assert core.queued() == QUEUE_LIMIT
    assert core.receive("in", frame(0), 0.0) == []  # each direction has its own limit
    out = core.due(0.01)
    assert numbers(out) == [("out", n) for n in range(QUEUE_LIMIT)] + [("in", 0)]
    counts(core, seen=QUEUE_LIMIT + 5, delivered=QUEUE_LIMIT, delayed=QUEUE_LIMIT, overflow=5)
    counts(core, "in", seen=1, delivered=1, delayed=1)


def test_the_mtu_clamp_counts_oversize_apart() -> None:
    core = WireCore(Impairment(mtu=100))
    assert core.receive("out", frame(1, 14 + 101), 0.0) == []
    assert numbers(core.receive("out", frame(2, 14 + 100), 0.0)) == [("out", 2)]
    counts(core, seen=2, delivered=1, oversize=1)
    assert [entry.fate for entry in core.log] == [Fate(drop="oversize"), Fate()]


def test_arp_passes_untouched_and_takes_no_schedule_position() -> None:
    core = WireCore(Impairment(delay_ms=50, events=(Event(1, "drop"),)))
    assert core.receive("out", ARP_FRAME, 0.0) == [("out", ARP_FRAME)]
    assert core.receive("out", frame(1), 0.0) == []  # the first impairable packet: dropped
    assert core.receive("out", frame(2), 0.0) == []  # delayed
    assert core.receive("out", ARP_FRAME, 0.01) == [("out", ARP_FRAME)]  # not queued
    assert core.schedules["out"].position == 2
    assert [entry.position for entry in core.log] == [1, 2]
    counts(core, seen=2, dropped=1, delayed=1, passed=2)


def test_corruption_flips_the_scheduled_byte() -> None:
    core = WireCore(Impairment(events=(Event(1, "corrupt", 30),)))
    ((direction, sent),) = core.receive("out", frame(1), 0.0)
    assert direction == "out"
    assert [i for i in range(len(sent)) if sent[i] != frame(1)[i]] == [14 + 30]
    assert sent[14 + 30] == frame(1)[14 + 30] ^ 0xFF
    counts(core, seen=1, delivered=1, corrupted=1)


def test_the_log_records_positions_and_fates() -> None:
    imp = Impairment(delay_ms=5, events=(Event(2, "drop"), Event(3, "corrupt", 30, "out")))
    core = WireCore(imp)
    for n in (1, 2, 3):
        core.receive("out", frame(n), 0.0)
    core.receive("in", frame(4, 100), 0.0)
    assert list(core.log) == [
        LogEntry("out", 1, IP_LENGTH, Fate(delay_ms=5)),
        LogEntry("out", 2, IP_LENGTH, Fate(drop="event")),
        LogEntry("out", 3, IP_LENGTH, Fate(delay_ms=5, corrupt_at=30, xor=0xFF)),
        LogEntry("in", 1, 86, Fate(delay_ms=5)),
    ]
    assert core.log[2].to_dict() == {
        "direction": "out",
        "position": 3,
        "length": IP_LENGTH,
        "drop": None,
        "copies": 1,
        "delay_ms": 5,
        "reorder": False,
        "corrupt_at": 30,
        "xor": 255,
    }
    assert [LogEntry.from_dict(entry.to_dict()) for entry in core.log] == list(core.log)


def test_set_resets_counters_log_and_schedules_but_keeps_queued_frames() -> None:
    imp = Impairment(seed=4, burst=GilbertElliott(0.2, 0.3), delay_ms=10)
    core = WireCore(imp)
    first = [numbers(core.receive("out", frame(n), 0.0) + core.due(1.0)) for n in range(50)]
    core.set(Impairment(delay_ms=10))
    assert core.receive("out", frame(100), 2.0) == []  # queued across the next set()
    core.set(imp)
    assert core.counters == {"out": Counters(), "in": Counters()}
    assert list(core.log) == []
    assert core.schedules["out"].position == 0
    assert core.queued() == 1
    assert numbers(core.due(2.01)) == [("out", 100)]
    again = [numbers(core.receive("out", frame(n), 3.0) + core.due(4.0)) for n in range(50)]
    assert again == first  # the same fates from the start
    assert any(x == [] for x in first)  # some were lost


def test_set_keeps_a_packet_held_for_reordering() -> None:
    core = WireCore(Impairment(events=(Event(1, "reorder"),)))
    core.receive("out", frame(1), 0.0)
    core.set(Impairment())
    assert core.queued() == 1
    assert numbers(core.receive("out", frame(2), 0.01)) == [("out", 2), ("out", 1)]


def test_one_direction_only() -> None:
    core = WireCore(Impairment(loss=1.0, direction="out"))
    assert core.receive("out", frame(1), 0.0) == []
    assert core.receive("in", frame(2), 0.0) == [("in", frame(2))]
    counts(core, "out", seen=1, dropped=1)
    counts(core, "in", seen=1, delivered=1)
    assert core.log[1] == LogEntry("in", 1, IP_LENGTH, Fate())


def test_stats_shape() -> None:
    core = WireCore(Impairment(seed=3, delay_ms=10, events=(Event(2, "drop"),)))
    core.receive("out", frame(1), 0.0)
    core.receive("out", frame(2), 0.0)
    core.receive("in", ARP_FRAME, 0.0)
    names = "seen delivered dropped oversize overflow duplicated corrupted reordered delayed"
    zero = dict.fromkeys([*names.split(), "passed", "send_errors"], 0)
    assert core.stats() == {
        "impairment": {"seed": 3, "delay_ms": 10, "events": ["2:drop"]},
        "queued": 1,
        "out": {**zero, "seen": 2, "dropped": 1, "delayed": 1},
        "in": {**zero, "passed": 1},
    }
