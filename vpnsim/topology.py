"""A Scenario (pure data) -> a running Lab of namespaces, bridges and veths; and teardown.

Layout of a lab named L:
- one namespace per host, `vpnsim.L.<host>`, with the lab's interface names (eth0, eth1...);
- one namespace `vpnsim.L._fabric` holding a bridge per network and the host-side veth ends.
Nothing is ever created in the root namespace, so the SEED addresses never appear there and
teardown is "kill what runs in the lab's namespaces, then remove them".
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpnsim import proc
from vpnsim.errors import HarnessError
from vpnsim.features import preflight
from vpnsim.labstate import FABRIC as FABRIC
from vpnsim.labstate import NS_PREFIX as NS_PREFIX
from vpnsim.labstate import STATE_ROOT as STATE_ROOT
from vpnsim.model import NAME_RE, Scenario, ScenarioError
from vpnsim.net import namespace, sysctl

if TYPE_CHECKING:
    from vpnsim.net.rtnl import Rtnl


def ns_name(lab: str, host: str) -> str:
    return f"{NS_PREFIX}{lab}.{host}"


def new_lab_name(stem: str = "lab") -> str:
    return f"{stem}-{secrets.token_hex(3)}"


@dataclass
class Lab:
    """A running lab: its namespaces, programs and logs. Build with `build_lab`."""

    name: str
    scenario: Scenario
    log_dir: Path
    owner_pid: int | None = None
    programs: list[proc.Program] = field(default_factory=list)
    _rtnl: dict[str, Rtnl] = field(default_factory=dict, repr=False)
    # Namespaces and probe sockets this process keeps open (closed with the handles).
    kept: namespace.Kept = field(default_factory=namespace.Kept, repr=False, compare=False)

    def __repr__(self) -> str:  # short: Hypothesis prints fixtures in falsifying examples
        return f"Lab({self.name!r}, scenario={self.scenario.name!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis' pretty printer
        printer.text(repr(self))

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def fabric_ns(self) -> str:
        return ns_name(self.name, FABRIC)

    def ns(self, host: str) -> str:
        """The namespace of `host`; an unknown host is a clear error."""
        self.scenario.host(host)
        return ns_name(self.name, host)

    def namespaces(self) -> list[str]:
        return [self.fabric_ns, *(ns_name(self.name, h.name) for h in self.scenario.hosts)]

    def rtnl(self, host: str) -> Rtnl:
        """A netlink handle in `host`'s namespace, opened once and reused."""
        from vpnsim.net.rtnl import Rtnl  # lazy: pyroute2 loads only when a lab is touched

        if host not in self._rtnl:
            self._rtnl[host] = Rtnl.open(self.ns(host) if host != FABRIC else self.fabric_ns)
        return self._rtnl[host]

    def start(
        self,
        host: str,
        argv: Sequence[str],
        *,
        log_name: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> proc.Program:
        program = proc.start(
            host, self.ns(host), argv, self.log_dir, log_name=log_name, cwd=cwd, env=env
        )
        self.programs.append(program)
        self.save()
        return program

    def pids(self) -> list[int]:
        """Every process running in any of the lab's namespaces, started by us or not."""
        return namespace.pids_in(self.namespaces())

    def save(self) -> None:
        """Record the lab under /run/vpnsim so other commands (status, exec, down) find it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "name": self.name,
            # The resolved scenario itself, never a path to re-read: `lab status` and
            # `attach()` describe the lab as built, even if its file changed since.
            "scenario": self.scenario.to_dict(),
            "log_dir": str(self.log_dir),
            "owner_pid": self.owner_pid,
            "created": time.time(),
            "programs": [
                {"host": p.host, "argv": list(p.argv), "pid": p.pid, "stderr": str(p.stderr_path)}
                for p in self.programs
            ],
        }
        tmp = self.state_dir / "lab.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_dir / "lab.json")

    def close(self) -> None:
        """Release this process's netlink handles and kept sockets; the lab keeps running."""
        for handle in self._rtnl.values():
            with contextlib.suppress(Exception):
                handle.close()
        self._rtnl.clear()
        self.kept.close()

    def teardown(self) -> TeardownReport:
        """Kill every process in the lab's namespaces, then remove them. Idempotent."""
        self.close()
        return destroy(self.name)


@dataclass(frozen=True)
class TeardownReport:
    lab: str
    killed: tuple[int, ...]
    survivors: tuple[int, ...]
    namespaces_removed: tuple[str, ...]


def destroy(lab: str) -> TeardownReport:
    """Remove everything of lab `lab`, found by its name prefix, even without a Lab object."""
    names = namespace.list_names(f"{NS_PREFIX}{lab}.")
    pids = namespace.pids_in(names)
    survivors = proc.kill_and_wait(pids)
    for name in names:
        namespace.remove(name)
    state_dir = STATE_ROOT / lab
    shutil.rmtree(state_dir, ignore_errors=True)
    return TeardownReport(lab, tuple(pids), tuple(survivors), tuple(names))


def build_lab(
    scenario: Scenario,
    *,
    name: str | None = None,
    log_dir: Path | None = None,
    owner_pid: int | None = None,
    confined: frozenset[str] = frozenset(),
    on_namespaces: Callable[[Lab], object] | None = None,
) -> Lab:
    """Create the namespaces, bridges, veths, addresses, routes and sysctls of `scenario`.

    `on_namespaces(lab)` runs once every host's namespace exists with its sysctls, before any
    link: what it starts there (the reference tunnel, `vpn.build_with_tunnel`) comes up while
    the links are built.

    The scenario is taken as valid: `vpnsim.scenario.bring_up` (the path every command takes)
    resolves and validates it first; the built-in SEED lab needs no check.

    The hosts named in `confined` get a network namespace owned by a user namespace of its
    own (`namespace.create(confined=True)`): where untrusted programs run as root.
    On any failure everything already created is removed before the error propagates.
    """
    preflight()
    name = name or new_lab_name()
    if not NAME_RE.match(name):
        raise HarnessError(f"lab name {name!r}: use letters, digits, - and _ (max 31)")
    if namespace.list_names(f"{NS_PREFIX}{name}."):
        raise HarnessError(f"a lab named {name!r} exists already: `vpnsim lab down {name}`")
    lab = Lab(
        name=name,
        scenario=scenario,
        log_dir=log_dir or STATE_ROOT / name / "logs",
        owner_pid=owner_pid,
    )
    try:
        lab.save()
        _build(lab, confined, on_namespaces)
    except BaseException:
        lab.teardown()
        raise
    return lab


def _build(
    lab: Lab, confined: frozenset[str], on_namespaces: Callable[[Lab], object] | None
) -> None:
    scenario = lab.scenario
    unknown = confined - {host.name for host in scenario.hosts}
    if unknown:
        raise HarnessError(f"confined hosts not in the scenario: {', '.join(sorted(unknown))}")
    namespace.create(lab.fabric_ns)
    for host in scenario.hosts:
        namespace.create(lab.ns(host.name), confined=host.name in confined)
        sysctl.set_sysctls(lab.ns(host.name), dict(host.sysctls))
    # The fabric only switches frames: no IPv6 chatter of its own on the bridges.
    sysctl.set_sysctls(
        lab.fabric_ns,
        {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"},
    )
    if on_namespaces is not None:
        on_namespaces(lab)
    fabric = lab.rtnl(FABRIC)
    # Each link's index is kept from its creation: one netlink request per change, not two.
    bridges: dict[str, int] = {}
    for index, net in enumerate(scenario.networks):
        bridge = f"br{index}"
        bridges[net.name] = fabric.add_bridge(bridge)
        fabric.set_link_index(bridges[net.name], bridge, ifalias=net.name, state="up")
    port = 0
    for host in scenario.hosts:
        rtnl = lab.rtnl(host.name)
        rtnl.up("lo")
        for iface in host.interfaces:
            port += 1
            fabric_end = f"p{port}"
            fabric.set_link_index(
                fabric.add_veth(fabric_end, iface.name, lab.ns(host.name)),
                fabric_end,
                master=bridges[iface.network],
                ifalias=f"{host.name}:{iface.name}",
                state="up",
            )
            host_end = rtnl.index_of(iface.name)
            rtnl.add_address(iface.name, iface.address, index=host_end)
            if iface.address6 is not None:
                # Usable at once, never waited for: no duplicate address detection, for
                # address6 and for the link-local address the kernel adds when the link comes
                # up (a router sends its neighbour solicitations for forwarded packets from
                # it, and sends none while it is tentative).
                sysctl.set_sysctls(
                    lab.ns(host.name), {f"net.ipv6.conf.{iface.name}.accept_dad": "0"}
                )
                rtnl.add_address(iface.name, iface.address6, nodad=True, index=host_end)
            rtnl.set_link_index(host_end, iface.name, state="up")
        for route in host.routes:
            try:
                rtnl.add_route(route.dst, gateway=route.via, dev=route.dev)
            except Exception as exc:
                raise ScenarioError(f"hosts.{host.name}: route {route.dst}: {exc}") from exc


def attach(name: str) -> Lab:
    """The Lab recorded under /run/vpnsim by an earlier `vpnsim lab up`, as it was built."""
    state_file = STATE_ROOT / name / "lab.json"
    if not state_file.exists() or not namespace.list_names(f"{NS_PREFIX}{name}."):
        running = ", ".join(list_labs()) or "none"
        raise HarnessError(f"no lab named {name!r} (running labs: {running})")
    state = json.loads(state_file.read_text())
    scenario = Scenario.from_dict(state["scenario"])
    lab = Lab(
        name=name,
        scenario=scenario,
        log_dir=Path(state["log_dir"]),
        owner_pid=state.get("owner_pid"),
    )
    for entry in state["programs"]:
        stderr = Path(entry["stderr"])
        lab.programs.append(
            proc.Program(
                entry["host"],
                lab.ns(entry["host"]),
                tuple(entry["argv"]),
                entry["pid"],
                stderr.with_suffix(".out"),
                stderr,
            )
        )
    return lab


def lab_of(ns: str) -> str:
    """The lab a vpnsim namespace belongs to: `vpnsim.<lab>.<host>` -> `<lab>`."""
    return ns[len(NS_PREFIX) :].split(".", 1)[0]


def list_labs() -> list[str]:
    """Names of labs that have namespaces on this machine."""
    return sorted({lab_of(n) for n in namespace.list_names(NS_PREFIX)})


def owner_of(lab: str) -> int | None:
    """The PID recorded as owning `lab` (a test session, a grader), if any."""
    try:
        owner = json.loads((STATE_ROOT / lab / "lab.json").read_text()).get("owner_pid")
    except (FileNotFoundError, ValueError):
        return None
    return owner if isinstance(owner, int) else None


def unowned_labs() -> list[str]:
    """Labs no live process owns: left by `vpnsim lab up`, a killed run, or a crashed build.

    A lab built by a running pytest session or grader records that process as its owner and
    is not listed, so `vpnsim clean` never pulls a lab from under a test that is using it.
    """
    found = []
    for lab in list_labs():
        owner = owner_of(lab)
        if owner is None or not os.path.exists(f"/proc/{owner}"):
            found.append(lab)
    return found
