"""Run a VPN implementation in a lab: the reference tunnel or a user's client/server commands.

Readiness is the same for every implementation, since students name their TUN freely: a TUN
device (found by type) is up with an address; the server has bound its UDP port; the client
has routed the private networks into its TUN.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vpnsim import proc
from vpnsim.errors import HarnessError
from vpnsim.model import TunnelSpec
from vpnsim.net.rtnl import Link, NetlinkFailure, Rtnl
from vpnsim.topology import Lab

READY_TIMEOUT = 10.0
SEED_CLIENT = "tun_client.py"
SEED_SERVER = "tun_server.py"


class ImplementationError(HarnessError, ValueError):
    """A --vpn-impl value that cannot be understood: says which forms are accepted."""


@dataclass(frozen=True)
class TunnelImpl:
    """How to start each end: argv per side (None: the reference, built from the lab's spec)."""

    label: str
    client_argv: tuple[str, ...] | None = None
    server_argv: tuple[str, ...] | None = None
    cwd: Path | None = None

    @property
    def is_reference(self) -> bool:
        return self.client_argv is None and self.server_argv is None

    def argv(self, side: str, spec: TunnelSpec) -> tuple[str, ...]:
        given = self.client_argv if side == "client" else self.server_argv
        return given if given is not None else reference_argv(side, spec)

    @classmethod
    def parse(cls, values: list[str]) -> TunnelImpl:
        """Accepts `reference`; a folder with the SEED lab's tun_client.py and tun_server.py;
        or `client=CMD` and/or `server=CMD` (the other side stays the reference)."""
        if not values or values == ["reference"]:
            return REFERENCE
        if len(values) == 1 and "=" not in values[0]:
            folder = Path(values[0]).resolve()
            missing = [n for n in (SEED_CLIENT, SEED_SERVER) if not (folder / n).is_file()]
            if not folder.is_dir() or missing:
                raise ImplementationError(
                    f"--vpn-impl {values[0]}: expected 'reference', a folder with "
                    f"{SEED_CLIENT} and {SEED_SERVER}, or client=CMD / server=CMD"
                )
            python = ("python3", "-u")
            return cls(
                label=str(folder),
                client_argv=(*python, str(folder / SEED_CLIENT)),
                server_argv=(*python, str(folder / SEED_SERVER)),
                cwd=folder,
            )
        sides: dict[str, tuple[str, ...]] = {}
        for value in values:
            side, sep, command = value.partition("=")
            if not sep or side not in ("client", "server") or not command.strip():
                raise ImplementationError(
                    f"--vpn-impl {value!r}: expected client=CMD or server=CMD"
                )
            sides[side] = tuple(shlex.split(command))
        return cls(
            label=" ".join(f"{k}={shlex.join(v)}" for k, v in sides.items()),
            client_argv=sides.get("client"),
            server_argv=sides.get("server"),
        )


REFERENCE = TunnelImpl(label="reference")


def reference_argv(side: str, spec: TunnelSpec) -> tuple[str, ...]:
    base = (sys.executable, "-m", "vpnsim.tunnel", side, "--port", str(spec.port))
    if side == "server":
        return (*base, "--tun-address", spec.server_tun)
    routes = [arg for dst in spec.client_routes for arg in ("--route", dst)]
    return (*base, "--server", spec.server_address, "--tun-address", spec.client_tun, *routes)


@dataclass
class RunningTunnel:
    """Both ends of a VPN running in a lab, with their TUN devices once ready."""

    lab: Lab
    impl: TunnelImpl
    spec: TunnelSpec
    client: proc.Program
    server: proc.Program
    client_tun: str = ""
    server_tun: str = ""
    ready_seconds: float = 0.0

    def restart_client(self, timeout: float = READY_TIMEOUT) -> float:
        """Kill the client (as in the lab's task 6) and start it again; seconds to ready."""
        self.client.stop()
        self.client = _start_side(self.lab, self.impl, self.spec, "client")
        start = time.monotonic()
        self.client_tun = wait_client_ready(self.lab, self.spec, self.client, timeout)
        return time.monotonic() - start

    def stop(self) -> None:
        self.client.stop()
        self.server.stop()


def start_tunnel(
    lab: Lab, impl: TunnelImpl = REFERENCE, timeout: float = READY_TIMEOUT
) -> RunningTunnel:
    """Start server and client together and wait until both are ready (or raise
    ProgramFailed with the stderr of the side that failed)."""
    spec = lab.scenario.tunnel
    if spec is None:
        raise ValueError(f"scenario {lab.scenario.name} has no tunnel")
    start = time.monotonic()
    server = _start_side(lab, impl, spec, "server")
    client = _start_side(lab, impl, spec, "client")
    tunnel = RunningTunnel(lab, impl, spec, client, server)
    tunnel.server_tun = wait_server_ready(lab, spec, server, timeout)
    tunnel.client_tun = wait_client_ready(lab, spec, client, timeout)
    tunnel.ready_seconds = time.monotonic() - start
    return tunnel


def _start_side(lab: Lab, impl: TunnelImpl, spec: TunnelSpec, side: str) -> proc.Program:
    host = spec.client if side == "client" else spec.server
    stem = f"{side}-{int(time.time() * 1000) % 10**8}"
    return lab.start(host, impl.argv(side, spec), log_name=stem, cwd=impl.cwd)


def _configured_tun(rtnl: Rtnl) -> Link | None:
    for link in rtnl.tun_devices():
        if link.up and any(":" not in a for a in link.addresses):
            return link
    return None


def wait_server_ready(lab: Lab, spec: TunnelSpec, server: proc.Program, timeout: float) -> str:
    rtnl = lab.rtnl(spec.server)
    found: list[str] = []

    def ready() -> bool:
        link = _configured_tun(rtnl)
        if link is None or not proc.port_bound(server.pid, spec.port, "udp"):
            return False
        found.append(link.name)
        return True

    server.wait_ready(ready, timeout, f"a TUN up with an address and UDP port {spec.port} bound")
    return found[-1]


def wait_client_ready(lab: Lab, spec: TunnelSpec, client: proc.Program, timeout: float) -> str:
    rtnl = lab.rtnl(spec.client)
    wanted = {str(ipaddress.ip_network(dst)) for dst in spec.client_routes}
    found: list[str] = []

    def ready() -> bool:
        link = _configured_tun(rtnl)
        if link is None:
            return False
        try:
            routed = {r.dst for r in rtnl.routes() if r.dev == link.name}
        except NetlinkFailure:
            return False
        if not wanted <= routed:
            return False
        found.append(link.name)
        return True

    routes = ", ".join(sorted(wanted))
    client.wait_ready(ready, timeout, f"a TUN up with an address and routes to {routes}")
    return found[-1]
