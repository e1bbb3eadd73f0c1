"""Packet fates without root: seeded and replayable per direction, random draws independent of
what is switched on, rates and bursts as asked, named events exact, corruption ranges, the MTU
clamp, one-direction impairments."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsim.impair.schedule import Schedule, predict
from vpnsim.impair.spec import Event, Fate, GilbertElliott, Impairment


def drops(fates: list[Fate]) -> list[bool]:
    return [fate.drop is not None for fate in fates]


def burst_lengths(lost: list[bool]) -> list[int]:
    return [len(list(run)) for is_lost, run in itertools.groupby(lost) if is_lost]


MIXED = Impairment(seed=11, loss=0.2, dup=0.2, reorder=0.2, corrupt=0.2, delay_ms=5, jitter_ms=5)


def test_same_seed_same_fates_and_another_seed_others() -> None:
    lengths = [60 + (i * 37) % 1400 for i in range(500)]
    first = predict(MIXED, "out", lengths)
    assert predict(MIXED, "out", lengths) == first
    other = predict(replace(MIXED, seed=12), "out", lengths)
    assert drops(other) != drops(first)


def test_directions_draw_independent_streams() -> None:
    imp = Impairment(seed=5, loss=0.5)
    out = drops(predict(imp, "out", [100] * 4000))
    back = drops(predict(imp, "in", [100] * 4000))
    assert out != back
    agreement = sum(a == b for a, b in zip(out, back, strict=True)) / 4000
    assert 0.45 <= agreement <= 0.55  # what two independent fair coins give


def test_a_fate_depends_only_on_the_packets_before_it() -> None:
    early = predict(MIXED, "out", [100] * 50 + [1500] * 50)
    late = predict(MIXED, "out", [100] * 50 + [80] * 50)
    assert early[:50] == late[:50]
    assert drops(early) == drops(late)  # sizes only move corruption, never loss


@st.composite
def loss_models(draw: st.DrawFn) -> Impairment:
    seed = draw(st.integers(0, 2**64 - 1))
    if draw(st.booleans()):
        p, r = draw(st.floats(0, 1)), draw(st.floats(0, 1))
        return Impairment(seed=seed, burst=GilbertElliott(p, r, draw(st.floats(0, 1))))
    return Impairment(seed=seed, loss=draw(st.floats(0, 1)))


@settings(max_examples=100, deadline=None)
@given(
    loss_models(),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 100),
    st.lists(st.integers(20, 1500), min_size=1, max_size=60),
)
def test_switching_on_more_never_changes_which_packets_are_lost(
    base: Impairment,
    dup: float,
    corrupt: float,
    reorder: float,
    jitter: float,
    lengths: list[int],
) -> None:
    more = replace(base, dup=dup, corrupt=corrupt, reorder=reorder, jitter_ms=jitter)
    lost = predict(base, "out", lengths)
    assert drops(predict(more, "out", lengths)) == drops(lost)
    # ...and loss does not change which packets are duplicated.
    dup_only = predict(Impairment(seed=base.seed, dup=dup), "out", lengths)
    for with_loss, without in zip(predict(more, "out", lengths), dup_only, strict=True):
        if with_loss.delivered:
            assert with_loss.copies == without.copies


def test_loss_rate() -> None:
    lost = sum(drops(predict(Impairment(seed=1, loss=0.3), "out", [100] * 10_000)))
    assert 2800 <= lost <= 3200
    reasons = {f.drop for f in predict(Impairment(seed=1, loss=0.3), "in", [100] * 100)}
    assert reasons == {None, "loss"}


def test_gilbert_elliott_loses_in_bursts_at_its_mean_rate() -> None:
    ge = GilbertElliott(p=0.05, r=0.25)  # mean loss 1/6, mean burst 4 packets
    fates = predict(Impairment(seed=0, burst=ge), "out", [100] * 20_000)
    lost = drops(fates)
    assert abs(sum(lost) / 20_000 - ge.mean_loss()) <= 0.025
    bursts = burst_lengths(lost)
    assert 3.5 <= sum(bursts) / len(bursts) <= 4.5
    assert {f.drop for f in fates} == {None, "burst"}
    # Independent losses at the same rate come in runs of 1.2 on average.
    plain = burst_lengths(drops(predict(Impairment(loss=ge.mean_loss()), "out", [100] * 20_000)))
    assert sum(plain) / len(plain) < 1.5


def test_gilbert_elliott_state_losses() -> None:
    never_bad = Impairment(burst=GilbertElliott(0.0, 0.5, loss_bad=1.0, loss_good=0.0))
    assert not any(drops(predict(never_bad, "out", [100] * 1000)))
    always_bad = Impairment(burst=GilbertElliott(1.0, 0.0))
    assert drops(predict(always_bad, "out", [100] * 5)) == [False, True, True, True, True]


def test_events_apply_exactly() -> None:
    imp = Impairment(
        delay_ms=10,
        events=(
            Event(3, "drop"),
            Event(7, "drop"),
            Event(5, "dup"),
            Event(2, "corrupt", 40),
            Event(4, "delay", 30),
            Event(6, "reorder"),
            Event(8, "dup"),
            Event(8, "dup"),
            Event(9, "corrupt", 40),
        ),
    )
    assert predict(imp, "out", [100] * 8 + [40, 100]) == [
        Fate(delay_ms=10),
        Fate(delay_ms=10, corrupt_at=40, xor=0xFF),
        Fate(drop="event"),
        Fate(delay_ms=40),
        Fate(delay_ms=10, copies=2),
        Fate(delay_ms=10, reorder=True),
        Fate(drop="event"),
        Fate(delay_ms=10, copies=3),
        Fate(delay_ms=10),  # a 40-byte packet has no byte 40
        Fate(delay_ms=10),
    ]


def test_events_of_one_direction() -> None:
    imp = Impairment(events=(Event(2, "drop", direction="in"), Event(1, "dup", direction="out")))
    assert predict(imp, "out", [100, 100]) == [Fate(copies=2), Fate()]
    assert predict(imp, "in", [100, 100]) == [Fate(), Fate(drop="event")]


def test_corrupt_bytes_range_is_respected() -> None:
    imp = Impairment(seed=3, corrupt=1.0, corrupt_bytes=(20, 28))
    lengths = [10 + i % 40 for i in range(2000)]  # 10..49 bytes
    fates = predict(imp, "out", lengths)
    at: set[int] = set()
    for length, fate in zip(lengths, fates, strict=True):
        if length <= 20:  # too short to have byte 20
            assert fate == Fate()
        else:
            assert fate.corrupt_at is not None
            assert 20 <= fate.corrupt_at < min(28, length)
            assert 1 <= fate.xor <= 255
            at.add(fate.corrupt_at)
    assert at == set(range(20, 28))


def test_corrupt_anywhere_in_the_packet() -> None:
    fates = predict(Impairment(seed=4, corrupt=1.0), "out", [30] * 3000)
    assert {f.corrupt_at for f in fates} == set(range(30))
    assert {f.xor for f in fates} == set(range(1, 256))


def test_mtu_clamp_drops_oversize_packets() -> None:
    imp = Impairment(mtu=1000, dup=1.0, events=(Event(3, "drop"),))
    assert predict(imp, "out", [1000, 1001, 1400, 68]) == [
        Fate(copies=2),
        Fate(drop="oversize"),
        Fate(drop="oversize"),  # the clamp wins over the scheduled drop
        Fate(copies=2),
    ]


def test_jitter_spreads_delay_and_never_goes_negative() -> None:
    delays = [
        f.delay_ms for f in predict(Impairment(delay_ms=50, jitter_ms=10), "out", [99] * 2000)
    ]
    assert 40 <= min(delays) < 41
    assert 59 < max(delays) <= 60
    clamped = [f.delay_ms for f in predict(Impairment(delay_ms=5, jitter_ms=10), "out", [99] * 200)]
    assert min(clamped) == 0.0
    assert max(clamped) <= 15


def test_one_direction_leaves_the_other_clean() -> None:
    imp = Impairment(loss=1.0, delay_ms=100, events=(Event(1, "dup"),), direction="out")
    assert predict(imp, "out", [100, 100]) == [Fate(drop="loss"), Fate(drop="loss")]
    schedule = Schedule(imp, "in")
    assert not schedule.active
    assert [schedule.next(100) for _ in range(3)] == [Fate()] * 3
    assert schedule.position == 3


def test_predict_equals_stepping_a_schedule() -> None:
    lengths = [40 + (i * 53) % 1460 for i in range(300)]
    imp = Impairment(seed=9, burst=GilbertElliott(0.1, 0.3), dup=0.1, corrupt=0.3, jitter_ms=3)
    for direction in ("out", "in"):
        schedule = Schedule(imp, direction)
        stepped = [schedule.next(length) for length in lengths]
        assert stepped == predict(imp, direction, lengths)
        assert schedule.position == 300
