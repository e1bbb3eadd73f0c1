"""Bringing a scenario up: the one path from a scenario to a running lab.

`lab up`, `vpnsim run`, the pytest scenario items, the fixtures and the lab factory all call
`bring_up`: build the lab, write each host's names (its hosts file) and the `[tls]` table's
PKI and logins, put the file's `[[impairments]]` on their links, start its `[[programs]]`
(placeholders filled), then (if asked) the tunnel under test, so every one of them starts the
same things in the same order. The lab records the resolved scenario it was built from (lab.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vpnsim import names, proc
from vpnsim.scenario.loaded import LoadedScenario
from vpnsim.scenario.placeholders import fill
from vpnsim.scenario.shipped import resolve
from vpnsim.topology import Lab, build_lab
from vpnsim.vpn import READY_TIMEOUT, RunningTunnel, build_with_tunnel, configured_tun, start_tunnel

if TYPE_CHECKING:
    from vpnsim.impair.link import ImpairedLink
    from vpnsim.impair.spec import Impairment
    from vpnsim.impl import TunnelImpl
    from vpnsim.model import Scenario
    from vpnsim.scenario.schema import ProgramModel


@dataclass
class ScenarioLab:
    """A scenario's running lab, with its wires (by HOST:IFNAME), programs and tunnel."""

    loaded: LoadedScenario
    lab: Lab
    wires: dict[str, ImpairedLink] = field(default_factory=dict)
    programs: dict[str, proc.Program] = field(default_factory=dict)
    tunnel: RunningTunnel | None = None
    placeholders: dict[str, str] = field(default_factory=dict)  # {name} in argv -> its value

    def prepare(self) -> None:
        """Hosts files and the TLS material: what programs read, written before any starts."""
        for host, entries in self.loaded.names.items():
            names.write_hosts(self.lab.ns(host), entries)
        tls = self.loaded.tls
        if tls is not None:
            from vpnsim import pki  # cryptography, only for a [tls] table
            from vpnsim.tlslab import make_files

            folder = pki.lab_folder(self.lab.name)
            files = make_files(folder, tls.server_name, tls.server_address, tls.users)
            self.placeholders = files.placeholders()

    def argv(self, command: list[str]) -> list[str]:
        """A command of the file with its placeholders filled."""
        return fill(command, self.placeholders)

    def impair(self, link: str, impairment: Impairment) -> ImpairedLink:
        """Set `impairment` on `link`, putting a wire in the first time."""
        from vpnsim.impair.link import impair  # the wire's modules, only where one is used

        wire = self.wires.get(link)
        if wire is None:
            wire = self.wires[link] = impair(self.lab, link, impairment)
        else:
            wire.set(impairment)
        return wire

    def clear_impairment(self, link: str) -> None:
        """A clean wire on `link`; no wire at all is clean already."""
        from vpnsim.impair.link import wire_on

        wire = self.wires.get(link) or wire_on(self.lab, link)
        if wire is not None:
            self.wires[link] = wire
            wire.clear()

    def start_programs(self, phase: str | None = None) -> None:
        """The file's `[[programs]]` (of `phase`, or all), in order, each waited for;
        ProgramFailed if one fails."""
        for spec in self.loaded.programs:
            if phase is None or spec.phase == phase:
                self.start_program(spec.name)

    def start_program(self, name: str) -> proc.Program:
        spec = next(p for p in self.loaded.programs if p.name == name)
        self.programs[name] = _start_program(self.lab, spec, self.argv(spec.command))
        return self.programs[name]

    def start_tunnel(self, impl: TunnelImpl, timeout: float = READY_TIMEOUT) -> RunningTunnel:
        """The implementation under test on the scenario's client and server."""
        if self.tunnel is None:
            self.tunnel = start_tunnel(self.lab, impl, timeout)
        return self.tunnel

    def close(self, keep: bool = False) -> None:
        """Our control connections go; the lab too, unless `keep` (then it runs on)."""
        for wire in self.wires.values():
            wire.close()
        self.wires.clear()
        if keep:
            self.lab.close()
        else:
            self.lab.teardown()


def bring_up(
    scenario: str | Path | Scenario | LoadedScenario,
    impl: TunnelImpl | None = None,
    *,
    name: str | None = None,
    log_dir: Path | None = None,
    owner_pid: int | None = None,
    confined: frozenset[str] = frozenset(),
    programs: bool = True,
) -> ScenarioLab:
    """Build `scenario` (a name, a file, or a Scenario) as a lab, write its names and TLS
    files, wire its impairments, start its before-tunnel programs (unless `programs` is
    False: the caller starts them, e.g. to report a failure per check) and, with `impl`, the
    tunnel: its tunnel-phase programs, then `impl` on its [tunnel]. An `impl` that cannot run
    that tunnel is refused (ImplementationError) before anything is built; on any later
    failure the lab is removed first."""
    loaded = resolve(scenario)
    if impl is not None:
        impl.check_tunnel(loaded.scenario.tunnel, loaded.label)
    if impl is not None and _nothing_before_the_tunnel(loaded, programs):
        # The tunnel's ends may come up while the links are built (vpn.build_with_tunnel).
        lab, tunnel = build_with_tunnel(
            loaded.scenario, impl, name=name, log_dir=log_dir, owner_pid=owner_pid,
            confined=confined,
        )  # fmt: skip
        return ScenarioLab(loaded, lab, tunnel=tunnel)
    lab = build_lab(
        loaded.scenario, name=name, log_dir=log_dir, owner_pid=owner_pid, confined=confined
    )
    up = ScenarioLab(loaded, lab)
    try:
        up.prepare()
        for entry in loaded.impairments:  # before the programs: they start through the wires
            up.impair(entry.link, entry.impairment())
        if programs:
            up.start_programs("before-tunnel")
        if impl is not None:  # the tunnel: the file's tunnel-phase programs, its [tunnel]
            if programs:
                up.start_programs("tunnel")
            if loaded.scenario.tunnel is not None:
                up.start_tunnel(impl)
    except BaseException:
        up.close()
        raise
    return up


def _nothing_before_the_tunnel(loaded: LoadedScenario, programs: bool) -> bool:
    """A tunnel and nothing the file asks to set up or start before it."""
    return (
        loaded.scenario.tunnel is not None
        and not loaded.impairments
        and not (programs and loaded.programs)
        and not loaded.names
        and loaded.tls is None
    )


def _start_program(lab: Lab, spec: ProgramModel, argv: list[str]) -> proc.Program:
    program = lab.start(spec.host, argv, log_name=spec.name)
    ready = spec.ready
    if ready is None:
        return program
    if ready.tcp_port is not None:
        tcp = ready.tcp_port
        program.wait_ready(
            lambda: proc.port_bound(program.pid, tcp, "tcp"),
            spec.timeout,
            f"TCP port {tcp} listening",
        )
    elif ready.udp_port is not None:
        udp = ready.udp_port
        program.wait_ready(
            lambda: proc.port_bound(program.pid, udp, "udp"), spec.timeout, f"UDP port {udp} bound"
        )
    elif ready.output is not None:
        text = ready.output
        program.wait_ready(
            lambda: text in program.stdout() or text in program.stderr(),
            spec.timeout,
            f"it prints {text!r}",
        )
    else:
        rtnl = lab.rtnl(spec.host)
        program.wait_ready(
            lambda: configured_tun(rtnl) is not None, spec.timeout, "a TUN up with an address"
        )
    return program
