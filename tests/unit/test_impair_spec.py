"""Impairment specs without root: validation names the field, dict and command-line round
trips, event and rate parsing, the one-line repr and description, Gilbert-Elliott mean loss."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsim.cli.main import build_parser
from vpnsim.impair.spec import (
    ACTIONS,
    Event,
    GilbertElliott,
    Impairment,
    ImpairmentError,
    format_rate,
    parse_events,
    parse_rate,
)

# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"loss": 1.5}, "loss: expected a probability from 0 to 1, got 1.5"),
        ({"loss": -0.1}, "loss: expected a probability from 0 to 1, got -0.1"),
        ({"dup": float("nan")}, "dup: expected a probability from 0 to 1, got nan"),
        ({"reorder": "0.5"}, "reorder: expected a probability from 0 to 1, got '0.5'"),
        ({"corrupt": 2}, "corrupt: expected a probability from 0 to 1, got 2"),
        (
            {"loss": 0.1, "burst": GilbertElliott(0.1, 0.5)},
            "loss and burst: give one loss model, not both",
        ),
        (
            {"burst": GilbertElliott(1.2, 0.5)},
            "burst.p: expected a probability from 0 to 1, got 1.2",
        ),
        (
            {"burst": GilbertElliott(0.1, 0.5, loss_good=-1.0)},
            "burst.loss_good: expected a probability from 0 to 1, got -1.0",
        ),
        ({"burst": 0.5}, "burst: expected a GilbertElliott, got 0.5"),
        ({"seed": -1}, "seed: expected an integer from 0 to 2**64-1, got -1"),
        ({"seed": 2**64}, f"seed: expected an integer from 0 to 2**64-1, got {2**64}"),
        ({"seed": 1.0}, "seed: expected an integer from 0 to 2**64-1, got 1.0"),
        ({"delay_ms": -1}, "delay_ms: expected milliseconds from 0 to 10000, got -1"),
        ({"jitter_ms": 10_001}, "jitter_ms: expected milliseconds from 0 to 10000, got 10001"),
        ({"rate": 7999}, "rate: expected at least 8000 bit/s, got 7999"),
        ({"rate": 1e6}, "rate: expected at least 8000 bit/s, got 1000000.0"),
        ({"mtu": 67}, "mtu: expected 68 to 65535 bytes, got 67"),
        ({"mtu": 65536}, "mtu: expected 68 to 65535 bytes, got 65536"),
        (
            {"corrupt_bytes": (40, 40)},
            "corrupt_bytes: expected [start, end) with 0 <= start < end, got (40, 40)",
        ),
        (
            {"corrupt_bytes": (0, 65536)},
            "corrupt_bytes: expected [start, end) with 0 <= start < end, got (0, 65536)",
        ),
        (
            {"corrupt_bytes": (1, 2, 3)},
            "corrupt_bytes: expected [start, end) with 0 <= start < end, got (1, 2, 3)",
        ),
        ({"direction": "up"}, "direction: expected both, out or in, got 'up'"),
        (
            {"events": (Event(0, "drop"),)},
            "events: Event(0, 'drop'): packets count from 1; "
            "actions: drop, dup, corrupt, reorder, delay",
        ),
        (
            {"events": (Event(2, "explode"),)},  # type: ignore[arg-type]
            "events: Event(2, 'explode'): packets count from 1; "
            "actions: drop, dup, corrupt, reorder, delay",
        ),
        (
            {"events": (Event(2, "delay", 10_001),)},
            "events: Event(2, 'delay', value=10001): at most 10000 ms",
        ),
    ],
)
def test_validation_names_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ImpairmentError) as info:
        Impairment(**fields)
    assert str(info.value) == message


def test_limits_themselves_are_valid() -> None:
    edge = Impairment(
        seed=2**64 - 1,
        loss=1.0,
        delay_ms=10_000,
        jitter_ms=0,
        rate=8000,
        mtu=68,
        corrupt_bytes=(0, 65535),
        events=(Event(1, "delay", 10_000),),
    )
    assert edge.mtu == 68
    assert Impairment(mtu=65535).mtu == 65535


def test_clean_ignores_the_seed_only() -> None:
    assert Impairment().clean
    assert Impairment(seed=99).clean
    assert not Impairment(mtu=1500).clean
    assert not Impairment(direction="out").clean


# --- dictionaries -----------------------------------------------------------------------------


def test_to_dict_leaves_defaults_out_and_spells_nested_values_plainly() -> None:
    imp = Impairment(
        seed=3,
        burst=GilbertElliott(0.01, 0.25),
        corrupt=0.5,
        corrupt_bytes=(20, 40),
        rate=2_000_000,
        events=(Event(3, "drop"), Event(2, "delay", 30, "out")),
    )
    assert imp.to_dict() == {
        "seed": 3,
        "burst": {"p": 0.01, "r": 0.25, "loss_bad": 1.0, "loss_good": 0.0},
        "corrupt": 0.5,
        "corrupt_bytes": [20, 40],
        "rate": 2_000_000,
        "events": ["3:drop", "2:delay=30@out"],
    }
    assert Impairment().to_dict() == {}


def test_from_dict_accepts_the_friendly_spellings() -> None:
    imp = Impairment.from_dict(
        {"rate": "10mbit", "events": "3:drop,5:dup", "corrupt_bytes": [1, 9]}
    )
    assert imp == Impairment(
        rate=10_000_000, events=(Event(3, "drop"), Event(5, "dup")), corrupt_bytes=(1, 9)
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"loss": 0.1, "lost": 0.2, "a": 1},
            "unknown key(s) a, lost; known: burst, corrupt, corrupt_bytes, delay_ms, direction, "
            "dup, events, fix_checksums, jitter_ms, loss, mtu, rate, reorder, seed",
        ),
        ({"loss": 3}, "loss: expected a probability from 0 to 1, got 3"),
        ({"rate": "fast"}, "rate 'fast': expected a number with an optional unit"),
        ({"events": ["3:boom"]}, "schedule item '3:boom': expected PACKET:ACTION"),
        ({"burst": {"p": 0.1}}, "burst: GilbertElliott.__init__() missing 1 required"),
        ({"burst": {"p": 0.1, "r": 0.2, "q": 1}}, "burst: GilbertElliott.__init__() got an"),
        ({"burst": 0.3}, "burst: expected a GilbertElliott, got 0.3"),
        ({"corrupt_bytes": [4]}, "corrupt_bytes: expected [start, end) with 0 <= start < end"),
    ],
)
def test_from_dict_rejects_with_impairment_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ImpairmentError) as info:
        Impairment.from_dict(data)
    assert str(info.value).startswith(message)


probabilities = st.floats(min_value=0.0, max_value=1.0)
milliseconds = st.floats(min_value=0.0, max_value=10_000.0)
events = st.builds(
    Event,
    packet=st.integers(1, 10**6),
    action=st.sampled_from(ACTIONS),
    value=st.integers(0, 10_000),
    direction=st.sampled_from(["both", "out", "in"]),
)


@st.composite
def corrupt_ranges(draw: st.DrawFn) -> tuple[int, int]:
    start = draw(st.integers(0, 65534))
    return start, draw(st.integers(start + 1, 65535))


@st.composite
def impairments(draw: st.DrawFn) -> Impairment:
    burst = draw(st.none() | st.builds(GilbertElliott, *[probabilities] * 4))
    loss = 0.0 if burst is not None else draw(probabilities)
    direction = draw(st.sampled_from(["both", "out", "in"]))
    named = draw(st.lists(events, max_size=4))
    return Impairment(
        seed=draw(st.integers(0, 2**64 - 1)),
        loss=loss,
        burst=burst,
        dup=draw(probabilities),
        reorder=draw(probabilities),
        corrupt=draw(probabilities),
        corrupt_bytes=draw(st.none() | corrupt_ranges()),
        fix_checksums=draw(st.booleans()),
        delay_ms=draw(milliseconds),
        jitter_ms=draw(milliseconds),
        rate=draw(st.none() | st.integers(8000, 10**11)),
        mtu=draw(st.none() | st.integers(68, 65535)),
        # An event's own direction must lie within the impairment's.
        events=tuple(e for e in named if direction == "both" or e.direction in ("both", direction)),
        direction=direction,
    )


@settings(max_examples=200, deadline=None)
@given(impairments())
def test_dict_round_trip_through_json(imp: Impairment) -> None:
    data = json.loads(json.dumps(imp.to_dict()))
    assert Impairment.from_dict(data) == imp


# --- the command line -------------------------------------------------------------------------

PARSER = build_parser()


def through_cli(imp: Impairment) -> Impairment:
    """What `vpnsim lab impair L U:eth0 *imp.cli_args()` would set."""
    args: argparse.Namespace = PARSER.parse_args(["lab", "impair", "L", "U:eth0", *imp.cli_args()])
    return Impairment.from_cli(args) or Impairment(seed=args.seed)


@pytest.mark.parametrize(
    ("imp", "args"),
    [
        (Impairment(), ["--seed", "0"]),
        (
            Impairment(seed=7, loss=0.3, delay_ms=10, jitter_ms=2.5),
            ["--seed", "7", "--loss", "0.3", "--delay", "10", "--jitter", "2.5"],
        ),
        (
            Impairment(burst=GilbertElliott(0.01, 0.25), direction="in"),
            ["--seed", "0", "--burst", "0.01,0.25,1,0", "--direction", "in"],
        ),
        (
            Impairment(
                corrupt=0.5,
                corrupt_bytes=(20, 40),
                fix_checksums=True,
                rate=1_500_000,
                mtu=1400,
                events=(Event(3, "drop"), Event(5, "corrupt", 40, "out")),
            ),
            [
                "--seed",
                "0",
                "--corrupt",
                "0.5",
                "--corrupt-bytes",
                "20-39",
                "--fix-checksums",
                "--rate",
                "1500kbit",
                "--mtu",
                "1400",
                "--schedule",
                "3:drop,5:corrupt=40@out",
            ],
        ),
        (Impairment(loss=0.1234567891), ["--seed", "0", "--loss", "0.1234567891"]),
    ],
)
def test_cli_args(imp: Impairment, args: list[str]) -> None:
    assert imp.cli_args() == args
    assert through_cli(imp) == imp


@settings(max_examples=200, deadline=None)
@given(impairments())
def test_cli_args_set_exactly_this_impairment(imp: Impairment) -> None:
    assert through_cli(imp) == imp


# --- events and rates -------------------------------------------------------------------------


def test_parse_events() -> None:
    assert parse_events(" 3:drop, 7:drop ,5:dup,,9:corrupt=40,2:delay=30@out,4:reorder@both") == (
        Event(3, "drop"),
        Event(7, "drop"),
        Event(5, "dup"),
        Event(9, "corrupt", 40),
        Event(2, "delay", 30, "out"),
        Event(4, "reorder"),
    )
    assert parse_events("") == ()
    assert parse_events("1:dup@in") == (Event(1, "dup", 0, "in"),)


@pytest.mark.parametrize(
    "item", ["3", "drop", "3:", "3:explode", "3:DROP", "-1:drop", "3:drop=x", "3:drop@up", "x:dup"]
)
def test_parse_events_rejects_naming_the_item(item: str) -> None:
    with pytest.raises(ImpairmentError) as info:
        parse_events(f"1:drop,{item}")
    assert str(info.value) == (
        f"schedule item {item!r}: expected PACKET:ACTION[=VALUE][@out|in], "
        "ACTION one of drop, dup, corrupt, reorder, delay (e.g. 3:drop,5:dup,7:corrupt=40)"
    )


def test_event_text_round_trips() -> None:
    for text in ("3:drop", "5:corrupt=40", "2:delay=30@out", "1:reorder@in"):
        (event,) = parse_events(text)
        assert event.text() == text


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("10mbit", 10_000_000),
        ("512kbit", 512_000),
        ("1000000", 1_000_000),
        ("1.5Mbit", 1_500_000),
        (" 2 gbit ", 2_000_000_000),
        ("8000bit", 8000),
    ],
)
def test_parse_rate(text: str, bps: int) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize("text", ["", "mbit", "10 mbps", "-5mbit", "1e6", "10m bit"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ImpairmentError) as info:
        parse_rate(text)
    assert str(info.value) == (
        f"rate {text!r}: expected a number with an optional unit (bit, kbit, mbit, gbit), "
        "e.g. 10mbit"
    )


def test_format_rate_picks_the_largest_exact_unit() -> None:
    assert [format_rate(b) for b in (2 * 10**9, 10**7, 1_500_000, 8001)] == [
        "2gbit",
        "10mbit",
        "1500kbit",
        "8001bit",
    ]


# --- for people -------------------------------------------------------------------------------


def test_repr_shows_only_what_differs_from_clean() -> None:
    assert repr(Impairment()) == "Impairment()"
    assert repr(Impairment(seed=7, loss=0.3)) == "Impairment(seed=7, loss=0.3)"
    assert (
        repr(Impairment(burst=GilbertElliott(0.01, 0.25), events=(Event(3, "drop"),)))
        == "Impairment(burst=GilbertElliott(p=0.01, r=0.25), events=(Event(3, 'drop'),))"
    )
    assert (
        repr(Impairment(burst=GilbertElliott(0.1, 0.5, 0.8, 0.01), direction="in"))
        == "Impairment(burst=GilbertElliott(p=0.1, r=0.5, loss_bad=0.8, loss_good=0.01), "
        "direction='in')"
    )
    assert repr(Event(5, "corrupt", 40, "out")) == "Event(5, 'corrupt', value=40, direction='out')"


def test_describe() -> None:
    assert Impairment().describe() == "clean (forwarding only) (seed 0, both directions)"
    assert (
        Impairment(seed=7, loss=0.3, delay_ms=10, jitter_ms=2).describe()
        == "loss 30%, delay 10±2 ms (seed 7, both directions)"
    )
    assert (
        Impairment(burst=GilbertElliott(0.01, 0.25), direction="out").describe()
        == "burst loss GilbertElliott(p=0.01, r=0.25) (mean 3.85%) (seed 0, out only)"
    )
    assert Impairment(
        dup=0.05,
        corrupt=0.02,
        corrupt_bytes=(20, 40),
        fix_checksums=True,
        rate=10_000_000,
        mtu=1400,
        events=(Event(3, "drop"),),
        direction="in",
    ).describe() == (
        "dup 5%, corrupt 2%, corrupting bytes 20-39, checksums fixed after corruption, "
        "rate 10mbit, mtu 1400, schedule 3:drop (seed 0, in only)"
    )


def test_gilbert_elliott_mean_loss() -> None:
    assert GilbertElliott(0.1, 0.3).mean_loss() == 0.25
    assert GilbertElliott(0.5, 0.5, loss_bad=0.5, loss_good=0.0).mean_loss() == 0.25
    assert GilbertElliott(0.25, 0.75, loss_bad=1.0, loss_good=0.5).mean_loss() == 0.625
    assert GilbertElliott(0.0, 0.0, loss_good=0.125).mean_loss() == 0.125  # stays good
    assert GilbertElliott(1.0, 0.0).mean_loss() == 1.0  # goes bad and stays


def test_an_event_outside_the_impairments_direction_is_refused() -> None:
    with pytest.raises(ImpairmentError) as caught:
        Impairment(direction="in", events=(Event(1, "drop", direction="out"),))
    assert str(caught.value) == (
        "events: 1:drop@out is for out, but the impairment applies to in only"
    )


def test_a_boolean_is_not_a_probability() -> None:
    with pytest.raises(ImpairmentError) as caught:
        Impairment(loss=True)
    assert str(caught.value) == "loss: expected a probability from 0 to 1, got True"
