"""The plugin's fixtures: labs of any scenario, the tunnel under test, probes and a wire.

`vpnsim_scenario` (module scope) says which scenario the other fixtures run on: a shipped name
or a path to a .toml file, the SEED tunneling lab by default. Override it in a conftest.py or a
test module, as pytest-httpserver's `httpserver_listen_address`:

    @pytest.fixture(scope="module")
    def vpnsim_scenario():
        return Path(__file__).parent / "office.toml"

Every lab is built by `bring_up` (the path `lab up` and `vpnsim run` take) and registered for
the session's leak check. The lab side (pyroute2) loads only when a lab fixture is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vpnsim.errors import HarnessError, UsageError
from vpnsim.model import ScenarioError
from vpnsim.proc import ProgramFailed
from vpnsim.pytest.settings import lab_registry, settings_of
from vpnsim.seed import DEFAULT_SCENARIO

if TYPE_CHECKING:
    from vpnsim.impair.link import ImpairedLink
    from vpnsim.impl import TunnelImpl
    from vpnsim.model import Scenario
    from vpnsim.scenario.bringup import ScenarioLab
    from vpnsim.scenario.loaded import LoadedScenario
    from vpnsim.topology import Lab
    from vpnsim.traffic.probes import Probes
    from vpnsim.vpn import RunningTunnel

LAB_FIXTURES = {"vpnsim_labs", "lab", "seed_lab", "vpn_tunnel", "probes", "tunnel_wire"}


class LabFactory:
    """Brings labs up for tests and tears every one of them down, with logs under tmp."""

    def __init__(self, base: Path, registry: list[str]) -> None:
        self._base = base
        self._registry = registry
        self._labs: list[ScenarioLab] = []

    def bring_up(
        self,
        scenario: str | Path | Scenario | LoadedScenario = DEFAULT_SCENARIO,
        impl: TunnelImpl | None = None,
        *,
        confined: frozenset[str] = frozenset(),
    ) -> ScenarioLab:
        """A lab of `scenario` (name, path or Scenario) with its wires and programs, and the
        tunnel `impl` if given. A scenario, option or harness problem (an `impl` the
        scenario's tunnel cannot run is refused before anything is built), or a program that
        fails to start, fails the test that asked (no traceback: the message says it all)."""
        from vpnsim.scenario.bringup import bring_up
        from vpnsim.topology import new_lab_name

        name = new_lab_name("pt")
        self._registry.append(name)
        try:
            up = bring_up(
                scenario, impl, name=name, log_dir=self._base / name, owner_pid=os.getpid(),
                confined=confined,
            )  # fmt: skip
        except (HarnessError, UsageError, ProgramFailed) as exc:  # ScenarioError too
            failure = str(exc)
        else:
            self._labs.append(up)
            return up
        # Failed outside the except: pytest would print the error it handles above its own.
        pytest.fail(failure, pytrace=False)

    def build(
        self,
        scenario: str | Path | Scenario = DEFAULT_SCENARIO,
        confined: frozenset[str] = frozenset(),
    ) -> Lab:
        """A lab of `scenario` with no tunnel; `confined` hosts as `build_lab` makes them."""
        return self.bring_up(scenario, confined=confined).lab

    def teardown_all(self) -> None:
        while self._labs:
            self._labs.pop().close()


@pytest.fixture(scope="module")
def vpnsim_scenario() -> str | Path | Scenario:
    """The scenario the lab fixtures run on: a shipped name or a .toml path (override me)."""
    return DEFAULT_SCENARIO


@pytest.fixture(scope="session")
def vpnsim_labs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabFactory]:
    """Session-wide lab builder; its labs' logs and captures are kept under pytest's tmp."""
    factory = LabFactory(tmp_path_factory.mktemp("vpnsim"), lab_registry(request.config))
    yield factory
    factory.teardown_all()


def _module_lab(labs: LabFactory, scenario: str | Path | Scenario) -> Iterator[Lab]:
    up = labs.bring_up(scenario)
    yield up.lab
    up.close()


@pytest.fixture(scope="module")
def lab(vpnsim_labs: LabFactory, vpnsim_scenario: str | Path | Scenario) -> Iterator[Lab]:
    """A lab of `vpnsim_scenario` (its wires and programs, no tunnel running)."""
    yield from _module_lab(vpnsim_labs, vpnsim_scenario)


@pytest.fixture(scope="module")
def seed_lab(vpnsim_labs: LabFactory, vpnsim_scenario: str | Path | Scenario) -> Iterator[Lab]:
    """The old name of `lab` (the SEED lab unless `vpnsim_scenario` says otherwise)."""
    yield from _module_lab(vpnsim_labs, vpnsim_scenario)


@pytest.fixture(scope="module")
def vpn_tunnel(
    request: pytest.FixtureRequest,
    vpnsim_labs: LabFactory,
    vpnsim_scenario: str | Path | Scenario,
) -> Iterator[RunningTunnel]:
    """A lab of its own with the implementation under test running on the scenario's
    client and server (U and server in the SEED lab)."""
    from vpnsim.scenario.shipped import resolve

    failure: str | None = None
    try:
        loaded = resolve(vpnsim_scenario)
    except ScenarioError as exc:
        failure = str(exc)
    if failure is not None:  # outside the except, as in `LabFactory.bring_up`
        pytest.fail(failure, pytrace=False)
    if loaded.scenario.tunnel is None:
        pytest.fail(f"scenario {loaded.label} has no [tunnel]: vpn_tunnel needs one", pytrace=False)
    up = vpnsim_labs.bring_up(loaded, settings_of(request.config).impl)
    try:
        if up.tunnel is None:
            raise HarnessError(f"scenario {loaded.label}: no tunnel was started")
        yield up.tunnel
    finally:
        up.close()


@pytest.fixture(scope="module")
def probes(request: pytest.FixtureRequest, vpn_tunnel: RunningTunnel) -> Iterator[Probes]:
    """Probes (ICMP, UDP, TCP, evidence) on the `vpn_tunnel` lab's hosts, by host name."""
    from vpnsim.traffic.probes import Probes

    found = Probes(vpn_tunnel.lab, vpn_tunnel, settings_of(request.config).probe_timeout)
    yield found
    found.close()


@pytest.fixture(scope="module")
def tunnel_wire(vpn_tunnel: RunningTunnel) -> Iterator[ImpairedLink]:
    """A seeded wire (clean to start with) on the client's outer link of the `vpn_tunnel`
    lab, U:eth0 in the SEED lab: `tunnel_wire.set(Impairment(...))` per example."""
    from vpnsim.impair.link import client_outer_link, impair
    from vpnsim.traffic.icmp import ping

    lab = vpn_tunnel.lab
    wire = impair(lab, client_outer_link(lab))
    # Resolve the client's and the server's neighbours (ARP) now: packets sent while a
    # neighbour resolves are queued, and the kernel may send newer ones before them, so a
    # first burst would reach the wire in another order than the same burst sent later.
    ping(lab.ns(vpn_tunnel.spec.client), vpn_tunnel.spec.server_address, timeout=2.0)
    yield wire
    wire.close()
