"""Run a scenario's checks in file order on the lab `bring_up` built.

The CLI (`vpnsim run`) and the pytest items of a scenario file both drive a `ScenarioRun`:
checks of phase "before-tunnel" run on the bare lab (with its before-tunnel programs); the
tunnel (the file's tunnel-phase programs, then its `[tunnel]`) starts before the first
"tunnel" check. A check run without the checks before it (a pytest worker given only part of
a file, or `-k`) first catches up: it starts what they started and applies their setup
actions, so it sees the lab as the file says it is at that point. The file's
`[[impairments]]` are set on their links as soon as the lab is built, so its programs and the
tunnel start through the wires. A failing check saves its evidence
(hosts' addresses and routes, program logs, a capture of the server's outer link) in a folder
of its own and says where.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from vpnsim.impl import REFERENCE, TunnelImpl
from vpnsim.net import sysctl
from vpnsim.net.rtnl import NetlinkFailure
from vpnsim.proc import ProgramFailed
from vpnsim.scenario.bringup import ScenarioLab, bring_up
from vpnsim.scenario.checks import CheckContext, Outcome, run_check
from vpnsim.scenario.loaded import LoadedScenario
from vpnsim.scenario.schema import Action, Check
from vpnsim.topology import Lab, new_lab_name
from vpnsim.traffic.capture import Capture
from vpnsim.traffic.evidence import outer_interface
from vpnsim.traffic.probes import DEFAULT_TIMEOUT, Probes
from vpnsim.vpn import RunningTunnel


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
    """One scenario brought up as a lab (`bring_up`); `check()` runs one of its checks."""

    loaded: LoadedScenario
    artifacts: Path
    impl: TunnelImpl = REFERENCE
    owner_pid: int | None = None
    probe_timeout: float = DEFAULT_TIMEOUT
    scenario_lab: ScenarioLab | None = None
    tunnel_failure: str | None = None
    programs_failure: str | None = None
    _context: CheckContext | None = None
    _tunnel_started: bool = False
    _made: set[str] = field(default_factory=set)  # checks whose turn has come in this lab

    @property
    def lab(self) -> Lab | None:
        return self.scenario_lab.lab if self.scenario_lab is not None else None

    @property
    def tunnel(self) -> RunningTunnel | None:
        return self.scenario_lab.tunnel if self.scenario_lab is not None else None

    def up(self) -> CheckContext:
        """Bring the lab up and start its programs (once); harness faults propagate, and
        leave no lab (a next `up()` would build another one). An implementation the
        scenario's tunnel cannot run is refused first (ImplementationError), with no lab."""
        if self._context is not None:
            return self._context
        self.impl.check_tunnel(self.loaded.scenario.tunnel, self.loaded.label)
        name = new_lab_name(self.loaded.scenario.name[:20])
        up = bring_up(
            self.loaded,
            name=name,
            log_dir=self.artifacts / name / "logs",
            owner_pid=self.owner_pid,
            programs=False,  # started below: a failure is a finding for every check
        )
        self.scenario_lab = up
        self._context = CheckContext(
            up.lab, Probes(up.lab, None, self.probe_timeout), None, up.programs, up.placeholders
        )
        try:
            up.start_programs("before-tunnel")
        except ProgramFailed as exc:
            self.programs_failure = str(exc)
        return self._context

    def check(self, check: Check) -> Verdict:
        started = time.monotonic()
        ctx = self.up()
        if self.programs_failure is not None:
            outcome = Outcome(False, "the scenario's programs start", self.programs_failure)
            return self._verdict(check, outcome, started, capture=None)
        behind = self._catch_up(check, ctx)
        if behind is not None:
            return self._verdict(check, behind, started, capture=None)
        if check.phase == "tunnel":
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
        if self.scenario_lab is not None:
            self.scenario_lab.close(keep=keep)

    def _catch_up(self, check: Check, ctx: CheckContext) -> Outcome | None:
        """Do what the checks before `check` would have done to the lab, if this run has not
        made them: start the tunnel if one of them needed it, apply their setups in order."""
        for earlier in self.loaded.checks:
            if earlier.name == check.name:
                break
            if earlier.name in self._made:
                continue
            self._made.add(earlier.name)
            if earlier.phase == "tunnel":
                self._start_tunnel(ctx)
            try:
                for action in earlier.setup:
                    self._apply(action, ctx)
            except (ProgramFailed, NetlinkFailure) as exc:
                expected = f"the setup of the earlier check {earlier.name} applies (catching up)"
                return Outcome(False, expected, str(exc))
        self._made.add(check.name)
        return None

    def _start_tunnel(self, ctx: CheckContext) -> None:
        """The file's tunnel-phase programs, then its [tunnel] (once)."""
        up = self.scenario_lab
        if up is None or self._tunnel_started:
            return
        self._tunnel_started = True
        try:
            up.start_programs("tunnel")
            if self.loaded.scenario.tunnel is not None:
                tunnel = up.start_tunnel(self.impl)
                ctx.tunnel = tunnel
                ctx.probes.tunnel = tunnel
        except ProgramFailed as exc:
            self.tunnel_failure = str(exc)

    def _capture(self) -> Capture | None:
        """The server's outer link: the [tunnel]'s, else the host with [tls]'s address."""
        lab = self.lab
        spec, tls = self.loaded.scenario.tunnel, self.loaded.tls
        if lab is None or (spec is None and tls is None):
            return None
        if spec is not None:
            host, address = spec.server, spec.server_address
        else:
            assert tls is not None
            address = tls.server_address
            owners = [
                h.name
                for h in lab.scenario.hosts
                if any(i.address.split("/")[0] == address for i in h.interfaces)
            ]
            if not owners:
                return None
            host = owners[0]
        return Capture(lab.ns(host), outer_interface(lab, host, address))

    def _apply(self, action: Action, ctx: CheckContext) -> None:
        lab, up = ctx.lab, self.scenario_lab
        if up is None:
            return
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
            name = action.start
            if name in ("client", "server") and up.tunnel is not None:
                (up.tunnel.start_client if name == "client" else up.tunnel.start_server)()
            else:
                up.start_program(name)
        elif action.impair is not None:
            up.impair(action.impair.link, action.impair.impairment())
        elif action.clear_impairment is not None:
            up.clear_impairment(action.clear_impairment)

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
        lab = self._context.lab if self._context is not None else None
        if lab is None:
            raise RuntimeError("evidence is saved only once the lab is up")
        folder = self.artifacts / lab.name / "evidence" / check.name
        folder.mkdir(parents=True, exist_ok=True)
        report = []
        for host in lab.scenario.hosts:
            rtnl = lab.rtnl(host.name)
            report.append(f"{host.name}:")
            for link in rtnl.links():
                mode = f" {link.tun_mode.upper()}" if link.tun_mode else ""
                state = "UP" if link.up else "DOWN"
                report.append(f"  link {link.name}{mode} {state} {' '.join(link.addresses)}")
            for route in rtnl.routes():
                via = f" via {route.gateway}" if route.gateway else ""
                report.append(f"  route {route.dst}{via} dev {route.dev}")
        (folder / "hosts.txt").write_text("\n".join(report) + "\n")
        for program in lab.programs:
            for log in (program.stdout_path, program.stderr_path):
                if log.exists():
                    shutil.copy(log, folder / log.name)
        if capture is not None:
            capture.save(folder / "outer.pcap")
        return folder
