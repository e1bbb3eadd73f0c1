"""Grade one TLS-lab submission (`vpnsim grade --lab tls`): the runs of the TLS registry
(`vpnsim.grade.tls_lab`), each in a fresh lab built from the TLS lab's scenario with a
second client host, U2, for the multiple-clients task.

```
  U 10.0.2.7 --+-- 10.0.2.8 [gateway: VPN server, TCP 4433] 192.168.60.1 -- V 192.168.60.101
  U2 10.0.2.9 -+
```

Everything else (the work copy, the jail, bandwidth caps, verdicts, evidence, the time
limit) is the Tunneling lab's grader's (`vpnsim.grade.grader`), which this extends. The runs
go one after another: the client run needs the pair run's build, and each is short.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from vpnsim import tlslab
from vpnsim.errors import HarnessError
from vpnsim.grade.grader import BUILD_TIMEOUT, _Grading
from vpnsim.grade.observe import Observation
from vpnsim.grade.probing import PROBE_TIMEOUT
from vpnsim.grade.registry import Run
from vpnsim.grade.tasks import Verdict
from vpnsim.grade.tls_checks import TlsPlaces, TlsProbe
from vpnsim.grade.tls_ends import TlsGradingFiles, TlsSides, give_names, prepare_files
from vpnsim.grade.tls_lab import SECOND_CLIENT, TlsRun
from vpnsim.grade.workcopy import WORK_ROOT, folder_name
from vpnsim.model import Scenario
from vpnsim.scenario import load
from vpnsim.traffic.probes import Probes

CLIENT_HOSTS = ("U", SECOND_CLIENT)


def tls_scenario() -> Scenario:
    """The TLS lab's topology as graded: the shipped file's U, U2 (the second client), the
    gateway and V; its attacker host (`mitm`, for the scenario's own checks) stays out, so
    no link of it is built, captured or named in a reason."""
    scenario: Scenario = load(tlslab.SCENARIO_FILE).scenario
    server = tls_places(scenario).server_host
    wanted = {"U", SECOND_CLIENT, server, "V"}
    hosts = tuple(h for h in scenario.hosts if h.name in wanted)
    if {h.name for h in hosts} != wanted:
        raise HarnessError(f"{tlslab.SCENARIO_FILE}: the TLS lab needs hosts {sorted(wanted)}")
    return dataclasses.replace(scenario, hosts=hosts)


def tls_places(scenario: Scenario) -> TlsPlaces:
    """Where the server and V are, from the scenario and `vpnsim.tlslab`."""

    def host_with(address: str) -> str:
        for host in scenario.hosts:
            if any(i.address.split("/")[0] == address for i in host.interfaces):
                return host.name
        raise ValueError(f"{scenario.name}: no host has {address}")

    v_host = "V"
    v = next(h for h in scenario.hosts if h.name == v_host)
    return TlsPlaces(
        server_host=host_with(tlslab.SERVER_ADDRESS),
        server_address=tlslab.SERVER_ADDRESS,
        v_host=v_host,
        v_address=v.interfaces[0].address.split("/")[0],
        tun_net=str(ipaddress.ip_interface(tlslab.SERVER_TUN).network),
        private_net=tlslab.PRIVATE_NET,
    )


class TlsGrading(_Grading):
    """A TLS submission's grading: the TLS registry's runs."""

    STATE_HOSTS: tuple[str, ...] = ("U", "gateway", "V", SECOND_CLIENT)

    def _runs(self, work: Path, stack: contextlib.ExitStack) -> None:
        self.scenario = self.topology = scenario = tls_scenario()
        self.places = tls_places(scenario)
        self.confined = frozenset({"U", self.places.server_host})  # student programs run here
        # The grading's CA keys and passwords, outside the jail's view; named like a work
        # copy, so that `vpnsim clean` removes it if this grader is killed.
        pki = WORK_ROOT / folder_name(f"pki-{self.name}", self.token)
        try:
            files = prepare_files(self.submission, work, pki)
            for run in self.outcome.lab.runs:
                if not self._tls_run(run, work, files):
                    return
        finally:
            shutil.rmtree(pki, ignore_errors=True)

    def _tls_run(self, run: Run, work: Path, files: TlsGradingFiles) -> bool:
        """Attempt `run`'s tasks in a fresh lab; False when the build failed (all failed)."""
        with self._tls_lab(run, work, files) as ctx:
            if run.name == "pair" and self.submission.build:
                problem = ctx.sides.build(self.submission.build, BUILD_TIMEOUT)
                if problem is not None:
                    for task in self.outcome.lab.ids:
                        self._record(task, Verdict(False, problem))
                    return False
            for task in run.tasks:
                self._attempt(task, ctx.lab, ctx.observe, ctx.probe.log, self._bound(task, ctx))
        return True

    @contextlib.contextmanager
    def _tls_lab(self, run: Run, work: Path, files: TlsGradingFiles) -> Iterator[TlsRun]:
        with self._lab(run.name, run.letter) as lab:
            give_names(lab, self.submission.tls, CLIENT_HOSTS)
            links = tuple(
                (host.name, i.name) for host in self.topology.hosts for i in host.interfaces
            )
            observe = Observation(lab, links, tun_hosts=("U", self.places.server_host))
            probes = Probes(lab, None, PROBE_TIMEOUT)
            sides = TlsSides(
                lab, work, self.submission, files, self._limits(), self.environment,
                self.places.server_host,
            )  # fmt: skip
            probe = TlsProbe(lab, observe, probes, self.places, self.submission.tls.port)
            try:
                yield TlsRun(lab, observe, sides, probe, self.places, time.time())
            finally:
                sides.cleanup()
                probes.close()
                observe.stop()
