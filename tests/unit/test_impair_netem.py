"""The netem backend's translation (the kernel here has no netem: tests/lab/test_cli_impair.py
checks the error a user gets; this checks what would be asked of a kernel that has it)."""

from __future__ import annotations

import pytest

from vpnsim.errors import HarnessError
from vpnsim.impair import Event, GilbertElliott, Impairment
from vpnsim.impair.netem import netem_options


def test_rates_and_times_in_netems_units() -> None:
    impairment = Impairment(
        seed=3, loss=0.25, dup=0.01, reorder=0.1, corrupt=0.02, delay_ms=12.5, jitter_ms=2,
        rate=10_000_000, direction="out",
    )  # fmt: skip
    assert netem_options(impairment) == {
        "delay": 12500,
        "jitter": 2000,
        "loss": 25.0,
        "duplicate": 1.0,
        "prob_reorder": 10.0,
        "prob_corrupt": 2.0,
        "rate": "10000000bit",
    }


@pytest.mark.parametrize(
    ("impairment", "named"),
    [
        (Impairment(burst=GilbertElliott(0.1, 0.5)), "burst"),
        (Impairment(events=(Event(3, "drop"),)), "events"),
        (Impairment(mtu=1000), "mtu"),
        (Impairment(corrupt=0.1, corrupt_bytes=(20, 40), fix_checksums=True),
         "corrupt_bytes, fix_checksums"),
        (Impairment(loss=0.1, direction="in"), "direction=in"),
    ],
)  # fmt: skip
def test_what_netem_cannot_do_is_refused_by_name(impairment: Impairment, named: str) -> None:
    with pytest.raises(HarnessError) as caught:
        netem_options(impairment)
    assert str(caught.value) == f"netem cannot do {named}: use the seeded wire (the default)"
