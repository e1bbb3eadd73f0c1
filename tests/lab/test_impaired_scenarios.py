"""Impaired links in scenario runs: the file's `[[impairments]]` are on their wires before the
tunnel starts, a check's `impair` setup changes them, and the wire's counters show it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vpnsim.errors import HarnessError
from vpnsim.impair.link import ImpairedLink, wire_on
from vpnsim.impair.spec import Event, Impairment
from vpnsim.leaks import leftovers
from vpnsim.scenario import load
from vpnsim.scenario.runner import ScenarioRun, Verdict
from vpnsim.topology import Lab, build_lab

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).parents[2] / "vpnsim" / "scenarios" / "example-lossy-link.toml"

LAN = """\
[scenario]
name = "lan-wire"

[networks]
lan = { subnet = "10.0.0.0/24" }

[hosts.A]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.2/24" }]

[hosts.B]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.3/24" }]

[[checks]]
name = "clearing-a-clean-link-changes-nothing"
type = "reach"
from = "A"
to = "10.0.0.3"
setup = [{ clear_impairment = "A:eth0" }]

[[checks]]
name = "the-first-echo-request-is-dropped"
type = "unreachable"
from = "A"
to = "10.0.0.3"
setup = [{ impair = { link = "A:eth0", events = ["1:drop@out"] } }]

[[checks]]
name = "the-second-one-is-not"
type = "reach"
from = "A"
to = "10.0.0.3"
"""


@pytest.fixture
def scenario_run(tmp_path: Path) -> Iterator[ScenarioRun]:
    """A run of the example (a test may set `.loaded` before its first check); torn down and
    leak-checked after."""
    run = ScenarioRun(load(EXAMPLE), tmp_path, owner_pid=os.getpid())
    yield run
    name = run.lab.name if run.lab is not None else None
    run.close()
    if name is not None:
        assert leftovers([name]) == {}


def wire(run: ScenarioRun, link: str) -> ImpairedLink:
    assert run.lab is not None
    found = wire_on(run.lab, link)
    assert found is not None, f"no wire on {link}"
    return found


def passed(verdict: Verdict) -> None:
    assert verdict.passed, "\n".join(verdict.lines())


def test_the_lossy_link_example_passes_and_its_wire_counts_the_drops(
    scenario_run: ScenarioRun,
) -> None:
    run = scenario_run
    before_tunnel, tcp, cut, clean = run.loaded.checks

    passed(run.check(before_tunnel))
    assert run.tunnel is None
    u_eth0 = wire(run, "U:eth0")
    assert u_eth0.stats().impairment == Impairment(seed=1, loss=0.2, delay_ms=5.0)

    passed(run.check(tcp))  # the tunnel started through the wire; TCP retransmitted
    stats = u_eth0.stats()
    assert stats.out["dropped"] > 0 and stats.into["dropped"] > 0, stats.lines()
    assert stats.out["delivered"] > stats.out["dropped"], stats.lines()

    passed(run.check(cut))
    stats = u_eth0.stats()
    assert stats.impairment == Impairment(loss=1.0)
    assert stats.out["dropped"] >= 1 and stats.out["delivered"] == 0, stats.lines()

    passed(run.check(clean))
    stats = u_eth0.stats()
    assert stats.impairment == Impairment()
    assert stats.out["dropped"] == 0 and stats.out["delivered"] > 0, stats.lines()
    u_eth0.close()


def test_a_check_puts_a_wire_in_only_when_it_impairs_and_events_name_single_packets(
    scenario_run: ScenarioRun, tmp_path: Path
) -> None:
    path = tmp_path / "lan.toml"
    path.write_text(LAN)
    run = scenario_run
    run.loaded = load(path)
    clear, drop_first, second = run.loaded.checks

    passed(run.check(clear))
    assert run.lab is not None and wire_on(run.lab, "A:eth0") is None  # no wire was needed

    passed(run.check(drop_first))
    a_eth0 = wire(run, "A:eth0")
    stats = a_eth0.stats()
    assert stats.impairment == Impairment(events=(Event(1, "drop", direction="out"),))
    assert (stats.out["seen"], stats.out["dropped"]) == (1, 1), stats.lines()

    passed(run.check(second))  # the impairment stays: packet 2 is not named, so it goes
    assert a_eth0.stats().out["dropped"] == 1
    a_eth0.close()


def test_a_wire_that_cannot_start_fails_the_run_and_leaves_no_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Lab] = []

    def build(*args: Any, **kwargs: Any) -> Lab:
        built.append(build_lab(*args, **kwargs))
        return built[-1]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise HarnessError("the wire on U:eth0 did not start")

    monkeypatch.setattr("vpnsim.scenario.bringup.build_lab", build)
    monkeypatch.setattr("vpnsim.impair.link.impair", refuse)  # bring_up imports it when used
    run = ScenarioRun(load(EXAMPLE), tmp_path, owner_pid=os.getpid())
    with pytest.raises(HarnessError, match="did not start"):
        run.check(run.loaded.checks[0])
    (lab,) = built
    assert run.lab is None  # so a next check builds a new lab rather than use a broken one
    assert leftovers([lab.name]) == {}
