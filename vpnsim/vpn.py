"""Run a VPN implementation in a lab: the reference tunnel or a user's client/server commands.

Readiness is the same for every implementation, since students name their TUN freely: a TUN
device (found by type; a TAP when the spec's mode is "tap") is up with an address; the server
has bound its UDP port; the client has routed the private networks into its TUN.

The reference's AEAD variants (`reference-aead`, `impl.REFERENCE_VARIANTS`) are ready by the
same observations, and they mean a session: the AEAD client adds its routes only once its
first handshake is done (`tunnel.__main__`). For that handshake to be answered at once, not
after a retry, its client starts only when the server is ready (`client_speaks_first`).
Each such tunnel gets a fresh PSK file of its own in the lab's state folder (`write_psk`).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vpnsim import proc
from vpnsim.impl import REFERENCE, TunnelImpl
from vpnsim.model import Scenario, TunnelSpec
from vpnsim.topology import Lab, build_lab

if TYPE_CHECKING:  # pyroute2 (~150 ms to import) loads with the first netlink handle
    from vpnsim.net.rtnl import Link, Rtnl

READY_TIMEOUT = 10.0


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
    launched_at: float = 0.0  # time.monotonic() when both ends were started
    psk_file: Path | None = None  # both ends' PSK (AEAD variants of the reference)

    def __repr__(self) -> str:  # short: Hypothesis prints fixtures in falsifying examples
        return f"RunningTunnel(lab={self.lab.name!r}, impl={self.impl.label!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis' pretty printer
        printer.text(repr(self))

    def stop_client(self) -> int | None:
        """Kill the client, as in the lab's task 6; its TUN and routes go with it."""
        return self.client.stop()

    def start_client(self, timeout: float = READY_TIMEOUT) -> float:
        """Start the client again (a new process, a new source port); seconds until ready."""
        start = time.monotonic()
        self.client = _start_side(self.lab, self.impl, self.spec, "client", self.psk_file)
        self.client_tun = wait_client_ready(self.lab, self.spec, self.client, timeout)
        return time.monotonic() - start

    def restart_client(self, timeout: float = READY_TIMEOUT) -> float:
        """Kill the client and start it again; seconds until the new one is ready."""
        self.stop_client()
        return self.start_client(timeout)

    def stop_server(self) -> int | None:
        """Kill the server; its TUN goes with it, clients keep sending into the void."""
        return self.server.stop()

    def start_server(self, timeout: float = READY_TIMEOUT) -> float:
        """Start the server again; seconds until ready. It relearns clients from their packets."""
        start = time.monotonic()
        self.server = _start_side(self.lab, self.impl, self.spec, "server", self.psk_file)
        self.server_tun = wait_server_ready(self.lab, self.spec, self.server, timeout)
        return time.monotonic() - start

    def revive(self, timeout: float = READY_TIMEOUT) -> list[str]:
        """Start again whichever end has exited, server first; the sides restarted.

        Property tests share one lab across Hypothesis examples: an example that kills a
        program must not fail every later one too, or the failure could never shrink."""
        revived = []
        if not self.server.running():
            self.start_server(timeout)
            revived.append("server")
        if not self.client.running():
            self.start_client(timeout)
            revived.append("client")
        return revived

    def stop(self) -> None:
        self.client.stop()
        self.server.stop()


def start_tunnel(
    lab: Lab, impl: TunnelImpl = REFERENCE, timeout: float = READY_TIMEOUT
) -> RunningTunnel:
    """Start server and client together and wait until both are ready (or raise
    ProgramFailed with the stderr of the side that failed)."""
    return wait_tunnel_ready(launch_tunnel(lab, impl), timeout)


@dataclass
class LaunchedTunnel:
    """A tunnel's ends started and not yet waited for. `client` is None while it waits for
    the server to be ready (`TunnelImpl.client_speaks_first`)."""

    lab: Lab
    impl: TunnelImpl
    spec: TunnelSpec
    server: proc.Program
    client: proc.Program | None
    psk_file: Path | None
    launched_at: float


def launch_tunnel(lab: Lab, impl: TunnelImpl = REFERENCE) -> LaunchedTunnel:
    """Start server and client without waiting for them (`wait_tunnel_ready` does); a client
    that speaks first is left for `wait_tunnel_ready` to start."""
    spec = lab.scenario.tunnel
    if spec is None:
        raise ValueError(f"scenario {lab.scenario.name} has no tunnel")
    launched_at = time.monotonic()
    psk_file = write_psk(lab) if impl.needs_psk else None
    server = _start_side(lab, impl, spec, "server", psk_file)
    client = None
    if not impl.client_speaks_first:
        client = _start_side(lab, impl, spec, "client", psk_file)
    return LaunchedTunnel(lab, impl, spec, server, client, psk_file, launched_at)


def wait_tunnel_ready(launched: LaunchedTunnel, timeout: float = READY_TIMEOUT) -> RunningTunnel:
    """Wait until both ends of a launched tunnel are ready (starting a client that waited for
    the server); `ready_seconds` counts from the launch."""
    lab, spec, impl = launched.lab, launched.spec, launched.impl
    server_tun = wait_server_ready(lab, spec, launched.server, timeout)
    client = launched.client or _start_side(lab, impl, spec, "client", launched.psk_file)
    client_tun = wait_client_ready(lab, spec, client, timeout)
    return RunningTunnel(
        lab,
        impl,
        spec,
        client,
        launched.server,
        client_tun,
        server_tun,
        ready_seconds=time.monotonic() - launched.launched_at,
        launched_at=launched.launched_at,
        psk_file=launched.psk_file,
    )


def write_psk(lab: Lab) -> Path:
    """A fresh random PSK file for one tunnel, 0600 from its creation, in the lab's own state
    folder (removed with the lab: `topology.destroy`), never in a shared place."""
    lab.state_dir.mkdir(parents=True, exist_ok=True)
    path = lab.state_dir / f"tunnel-{secrets.token_hex(4)}.psk"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path


def build_with_tunnel(
    scenario: Scenario,
    impl: TunnelImpl = REFERENCE,
    timeout: float = READY_TIMEOUT,
    **build_options: Any,
) -> tuple[Lab, RunningTunnel]:
    """`build_lab(scenario)` then `start_tunnel`, in less time: the reference tunnel's ends
    start as soon as their namespaces exist, so their interpreters come up while the links
    are built. (The reference configures only its own TUN and sends nothing until traffic
    comes; an implementation under test starts once the lab is whole, as in the SEED lab.
    An AEAD reference client handshakes at once: it starts once the lab is whole and its
    server, started early, is ready.) On any failure the lab is removed."""
    launched: list[LaunchedTunnel] = []

    def launch(lab: Lab) -> None:
        launched.append(launch_tunnel(lab, impl))

    early = impl.is_reference and scenario.tunnel is not None
    lab = build_lab(scenario, on_namespaces=launch if early else None, **build_options)
    try:
        tunnel = wait_tunnel_ready(launched[0], timeout) if early else start_tunnel(lab, impl)
    except BaseException:
        lab.teardown()
        raise
    return lab, tunnel


@dataclass(frozen=True)
class FoundTunnel:
    """The ends of a tunnel found in a running lab (e.g. by a later `vpnsim` command)."""

    lab: Lab
    spec: TunnelSpec
    client_tun: str
    server_tun: str


def find_tunnel(lab: Lab) -> FoundTunnel | None:
    """The scenario's tunnel if both ends have a TUN up with an address, else None."""
    spec = lab.scenario.tunnel
    if spec is None:
        return None
    mode = _device_mode(spec)
    client = configured_tun(lab.rtnl(spec.client), mode)
    server = configured_tun(lab.rtnl(spec.server), mode)
    if client is None or server is None:
        return None
    return FoundTunnel(lab, spec, client.name, server.name)


def _start_side(
    lab: Lab, impl: TunnelImpl, spec: TunnelSpec, side: str, psk_file: Path | None
) -> proc.Program:
    host = spec.client if side == "client" else spec.server
    stem = f"{side}-{int(time.time() * 1000) % 10**8}"
    return lab.start(host, impl.argv(side, spec, psk_file), log_name=stem, cwd=impl.cwd)


def _device_mode(spec: TunnelSpec) -> Literal["tun", "tap"]:
    """The kind of device each end opens: "tun" (IP packets) or "tap" (Ethernet frames)."""
    if spec.mode == "tun":
        return "tun"
    if spec.mode == "tap":
        return "tap"
    raise ValueError(f"tunnel mode {spec.mode!r}: expected 'tun' or 'tap'")


def configured_tun(rtnl: Rtnl, mode: Literal["tun", "tap"] = "tun") -> Link | None:
    for link in rtnl.tun_devices(mode):
        if link.up and any(":" not in a for a in link.addresses):
            return link
    return None


def wait_server_ready(lab: Lab, spec: TunnelSpec, server: proc.Program, timeout: float) -> str:
    rtnl = lab.rtnl(spec.server)
    mode = _device_mode(spec)
    found: list[str] = []

    def ready() -> bool:
        # The port first: a read of /proc (~30 us) against a netlink dump (~2 ms of CPU, taken
        # from the programs starting beside us on a small machine).
        if not proc.port_bound(server.pid, spec.port, "udp"):
            return False
        link = configured_tun(rtnl, mode)
        if link is None:
            return False
        found.append(link.name)
        return True

    bound = f"UDP port {spec.port} bound"
    server.wait_ready(ready, timeout, f"a {mode.upper()} up with an address and {bound}")
    return found[-1]


def wait_client_ready(lab: Lab, spec: TunnelSpec, client: proc.Program, timeout: float) -> str:
    rtnl = lab.rtnl(spec.client)
    wanted = {str(ipaddress.ip_network(dst)) for dst in spec.client_routes}
    mode = _device_mode(spec)
    found: list[str] = []

    def ready() -> bool:
        # Cheap first (see wait_server_ready): the routes exist at all, to any device.
        present = proc_routes(client.pid)
        if present is not None and not wanted <= present:
            return False
        link = configured_tun(rtnl, mode)
        if link is None:
            return False
        from vpnsim.net.rtnl import NetlinkFailure

        try:
            routed = {r.dst for r in rtnl.routes() if r.dev == link.name}
        except NetlinkFailure:
            return False
        if not wanted <= routed:
            return False
        found.append(link.name)
        return True

    routes = ", ".join(sorted(wanted))
    client.wait_ready(ready, timeout, f"a {mode.upper()} up with an address and routes to {routes}")
    return found[-1]


def proc_routes(pid: int) -> set[str] | None:
    """The destinations ("192.168.60.0/24", "fd00:60::/64") of the routes in the network
    namespace of `pid`, from /proc/<pid>/net/route and ipv6_route; None if unreadable."""
    found: set[str] = set()
    try:
        with open(f"/proc/{pid}/net/route") as table:
            next(table, None)
            for line in table:
                fields = line.split()  # Iface Destination Gateway Flags ... Mask ...
                dst = ipaddress.IPv4Address(bytes.fromhex(fields[1])[::-1])
                mask = ipaddress.IPv4Address(bytes.fromhex(fields[7])[::-1])
                found.add(str(ipaddress.IPv4Network(f"{dst}/{mask}", strict=False)))
        with open(f"/proc/{pid}/net/ipv6_route") as table:
            for line in table:
                fields = line.split()  # destination, its prefix length (hex), ...
                dst6 = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
                found.add(str(ipaddress.IPv6Network(f"{dst6}/{int(fields[1], 16)}", strict=False)))
    except FileNotFoundError:
        return found  # no IPv6 in this kernel: the IPv4 routes are all there are
    except (OSError, ValueError, IndexError):
        return None
    return found
