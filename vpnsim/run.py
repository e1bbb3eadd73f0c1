"""Run a scenario file: build its lab, start its programs, run its checks in file order.

The CLI (`vpnsim run`) and the pytest items of a scenario file both drive a `ScenarioRun`:
checks of phase "before-tunnel" run on the bare lab; the tunnel starts before the first
"tunnel" check. The file's `[[impairments]]` are set on their links as soon as the lab is built,
so its programs and the tunnel start through the wires. A failing check saves its evidence
(hosts' addresses and routes, program logs, a capture of the server's outer link) in a folder
of its own and says where.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from vpnsim import proc
from vpnsim.checks import CheckContext, Outcome, run_check
from vpnsim.impair.link import ImpairedLink, impair, wire_on
from vpnsim.impair.spec import Impairment
from vpnsim.impl import REFERENCE, TunnelImpl
from vpnsim.net import sysctl
from vpnsim.net.rtnl import NetlinkFailure
from vpnsim.proc import ProgramFailed
from vpnsim.scenario import Action, Check, LoadedScenario, ProgramModel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.capture import Capture
from vpnsim.traffic.evidence import outer_interface
from vpnsim.traffic.probes import DEFAULT_TIMEOUT, Probes
from vpnsim.vpn import RunningTunnel, configured_tun, start_tunnel


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    expected: str
    seen: str
    seconds: float
    evidence: Path | None = None

    def lines(self) -> list[str]:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.check} ({self.seconds:.2f} s)"
        if self.passed:
            return [head]
        lines = [head, f"  expected: {self.expected}", f"  seen:     {self.seen}"]
        if self.evidence is not None:
            lines.append(f"  evidence: {self.evidence}")
        return lines


@dataclass
class ScenarioRun:
    """One scenario file brought up as a lab; `check()` runs one of its checks."""

    loaded: LoadedScenario
    artifacts: Path
    impl: TunnelImpl = REFERENCE
    owner_pid: int | None = None
    probe_timeout: float = DEFAULT_TIMEOUT
    lab: Lab | None = None
    tunnel: RunningTunnel | None = None
    tunnel_failure: str | None = None
    programs_failure: str | None = None
    programs: dict[str, proc.Program] = field(default_factory=dict)
    wires: dict[str, ImpairedLink] = field(default_factory=dict)  # by link, HOST:IFNAME
    _context: CheckContext | None = None

    def up(self) -> CheckContext:
        """Build the lab and start its programs (once); harness faults propagate."""
        if self._context is not None:
            return self._context
        name = new_lab_name(self.loaded.scenario.name[:20])
        self.lab = build_lab(
            self.loaded.scenario,
            name=name,
            log_dir=self.artifacts / name / "logs",
            owner_pid=self.owner_pid,
        )
        try:
            for entry in self.loaded.impairments:
                self._impair(entry.link, entry.impairment())
        except BaseException:
            # A harness fault, raised to the caller: tear this lab down now, since a next
            # `up()` would build another one.
            self.close()
            self.lab = None
            raise
        self._context = CheckContext(
            self.lab, Probes(self.lab, None, self.probe_timeout), None, self.programs
        )
        try:
            for program in self.loaded.programs:
                self.programs[program.name] = _start_program(self.lab, program)
        except ProgramFailed as exc:  # a finding about the scenario's program, for every check
            self.programs_failure = str(exc)
        return self._context

    def check(self, check: Check) -> Verdict:
        started = time.monotonic()
        ctx = self.up()
        assert self.lab is not None
        if self.programs_failure is not None:
            outcome = Outcome(False, "the scenario's programs start", self.programs_failure)
            return self._verdict(check, outcome, started, capture=None)
        if check.phase == "tunnel" and self.loaded.scenario.tunnel is not None:
            self._start_tunnel(ctx)
            if self.tunnel_failure is not None:
                outcome = Outcome(False, "the tunnel starts", self.tunnel_failure)
                return self._verdict(check, outcome, started, capture=None)
        capture = self._capture()
        try:
            for action in check.setup:
                self._apply(action, ctx)
            outcome = run_check(check, ctx)
        except ProgramFailed as exc:  # e.g. a program restarted by the check never came back
            outcome = Outcome(False, "the programs involved start", str(exc))
        except NetlinkFailure as exc:  # e.g. a route to delete that the program under test
            outcome = Outcome(False, "the check's setup applies", str(exc))  # removed already
        finally:
            if capture is not None:
                capture.stop()
        return self._verdict(check, outcome, started, capture)

    def close(self, keep: bool = False) -> None:
        if self._context is not None:
            self._context.probes.close()
        for wire in self.wires.values():
            wire.close()  # our control connections; the wires go with the lab (or stay, kept)
        self.wires.clear()
        if self.lab is not None and not keep:
            self.lab.teardown()
        elif self.lab is not None:
            self.lab.close()

    def _start_tunnel(self, ctx: CheckContext) -> None:
        if self.tunnel is not None or self.tunnel_failure is not None:
            return
        assert self.lab is not None
        try:
            self.tunnel = start_tunnel(self.lab, self.impl)
        except ProgramFailed as exc:
            self.tunnel_failure = str(exc)
            return
        ctx.tunnel = self.tunnel
        ctx.probes.tunnel = self.tunnel

    def _capture(self) -> Capture | None:
        spec = self.loaded.scenario.tunnel
        if spec is None or self.lab is None:
            return None
        return Capture(
            self.lab.ns(spec.server), outer_interface(self.lab, spec.server, spec.server_address)
        )

    def _apply(self, action: Action, ctx: CheckContext) -> None:
        lab = ctx.lab
        if action.delete_route is not None:
            lab.rtnl(action.delete_route.host).delete_route(action.delete_route.dst)
        elif action.add_route is not None:
            route = action.add_route
            lab.rtnl(route.host).add_route(route.dst, gateway=route.via, dev=route.dev)
        elif action.sysctl is not None:
            setting = action.sysctl
            sysctl.set_sysctls(lab.ns(setting.host), {setting.key: str(setting.value)})
        elif action.stop is not None:
            ctx.program(action.stop).stop()
        elif action.start is not None:
            self._restart(action.start, ctx)
        elif action.impair is not None:
            self._impair(action.impair.link, action.impair.impairment())
        elif action.clear_impairment is not None:
            link = action.clear_impairment
            wire = self.wires.get(link) or wire_on(lab, link)
            if wire is not None:  # no wire: the link is clean already
                self.wires[link] = wire
                wire.clear()

    def _impair(self, link: str, impairment: Impairment) -> None:
        """Set `impairment` on `link`, putting a wire in the first time."""
        assert self.lab is not None
        wire = self.wires.get(link)
        if wire is None:
            self.wires[link] = impair(self.lab, link, impairment)
        else:
            wire.set(impairment)

    def _restart(self, name: str, ctx: CheckContext) -> None:
        if name in ("client", "server") and self.tunnel is not None:
            (self.tunnel.start_client if name == "client" else self.tunnel.start_server)()
            return
        spec = next(p for p in self.loaded.programs if p.name == name)
        assert self.lab is not None
        self.programs[name] = _start_program(self.lab, spec)

    def _verdict(
        self, check: Check, outcome: Outcome, started: float, capture: Capture | None
    ) -> Verdict:
        evidence = None if outcome.passed else self._save_evidence(check, capture)
        return Verdict(
            check.name,
            outcome.passed,
            outcome.expected,
            outcome.seen,
            time.monotonic() - started,
            evidence,
        )

    def _save_evidence(self, check: Check, capture: Capture | None) -> Path:
        """Addresses and routes of each host, program logs, the outer link's capture."""
        assert self.lab is not None
        folder = self.artifacts / self.lab.name / "evidence" / check.name
        folder.mkdir(parents=True, exist_ok=True)
        report = []
        for host in self.lab.scenario.hosts:
            rtnl = self.lab.rtnl(host.name)
            report.append(f"{host.name}:")
            for link in rtnl.links():
                mode = f" {link.tun_mode.upper()}" if link.tun_mode else ""
                state = "UP" if link.up else "DOWN"
                report.append(f"  link {link.name}{mode} {state} {' '.join(link.addresses)}")
            for route in rtnl.routes():
                via = f" via {route.gateway}" if route.gateway else ""
                report.append(f"  route {route.dst}{via} dev {route.dev}")
        (folder / "hosts.txt").write_text("\n".join(report) + "\n")
        for program in self.lab.programs:
            for log in (program.stdout_path, program.stderr_path):
                if log.exists():
                    shutil.copy(log, folder / log.name)
        if capture is not None:
            capture.save(folder / "outer.pcap")
        return folder


def _start_program(lab: Lab, spec: ProgramModel) -> proc.Program:
    argv = [sys.executable if part == "{python}" else part for part in spec.command]
    program = lab.start(spec.host, argv, log_name=spec.name)
    ready = spec.ready
    if ready is None:
        return program
    if ready.tcp_port is not None:
        port, kind = ready.tcp_port, "tcp"
        program.wait_ready(
            lambda: proc.port_bound(program.pid, port, kind),
            spec.timeout,
            f"TCP port {port} listening",
        )
    elif ready.udp_port is not None:
        port, kind = ready.udp_port, "udp"
        program.wait_ready(
            lambda: proc.port_bound(program.pid, port, kind), spec.timeout, f"UDP port {port} bound"
        )
    else:
        rtnl = lab.rtnl(spec.host)
        program.wait_ready(
            lambda: configured_tun(rtnl) is not None, spec.timeout, "a TUN up with an address"
        )
    return program
