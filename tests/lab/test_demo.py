"""`vpnsim demo`, the main job (`nox -s lab`): every step passes, and its seeded loss loses
exactly the echoes the schedule names, twice over."""

from __future__ import annotations

import pytest

from vpnsim.demo import LOSS_ECHOES, run_demo
from vpnsim.impair import Impairment
from vpnsim.impair.schedule import predict
from vpnsim.impl import REFERENCE
from vpnsim.leaks import leftovers

pytestmark = pytest.mark.lab

OUTER_ECHO = 20 + 8 + 20 + 8 + 6  # outer IPv4 + UDP around the ICMP echo of "vpnsim"


def echoes_lost_by(impairment: Impairment, count: int) -> list[int]:
    """Echo requests are the outer link's packets 1..count out; the replies to the delivered
    ones are its packets in, in the same order. An echo is lost when either is dropped."""
    out = predict(impairment, "out", [OUTER_ECHO] * count)
    delivered = [seq for seq, fate in enumerate(out, 1) if fate.delivered]
    back = predict(impairment, "in", [OUTER_ECHO] * len(delivered))
    answered = {seq for seq, fate in zip(delivered, back, strict=True) if fate.delivered}
    return [seq for seq in range(1, count + 1) if seq not in answered]


def test_demo_shows_every_step_passing_and_replays_the_same_losses() -> None:
    lines: list[str] = []

    assert run_demo(REFERENCE, out=lines.append) == 0, "\n".join(lines)

    verdicts = [line for line in lines if line.split(":")[0].startswith(("ICMP", "TCP"))]
    assert len(verdicts) == 4 and all(": ok (reply identical" in line for line in verdicts)
    lost = echoes_lost_by(Impairment(seed=7, loss=0.3), LOSS_ECHOES)
    assert 0 < len(lost) < LOSS_ECHOES
    numbered = " ".join(f"#{seq}" for seq in lost)
    assert f"  the same {len(lost)} lost both times: {numbered}" in lines
    assert lines.count(f"  {LOSS_ECHOES} echoes U -> V: {LOSS_ECHOES - len(lost)} answered") == 2
    assert lines[-1].endswith("5 namespaces removed, nothing left behind")
    assert leftovers([lines[0].split()[1].rstrip(":")]) == {}
