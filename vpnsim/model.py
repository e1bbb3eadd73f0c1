"""Scenarios as pure data: hosts, networks, addresses, routes, sysctls and the tunnel to run.

Nothing here touches the kernel; `vpnsim.topology` turns a Scenario into a running Lab. The
CLI, the pytest plugin, scenario files and the grader all go through these types. Validation
is `vpnsim.scenario`'s (one set of rules, for files and for scenarios built in code).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from vpnsim.errors import UsageError

# Host and lab names become parts of namespace names (vpnsim.<lab>.<host>): no dots.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$")


class ScenarioError(UsageError):
    """A scenario is inconsistent (unknown network, address outside its subnet, ...)."""


@dataclass(frozen=True)
class Network:
    """A shared L2 segment (a bridge), like one of the lab's docker networks."""

    name: str
    subnet: str
    subnet6: str | None = None  # an IPv6 subnet too (e.g. "fd00:60::/64"), for dual-stack labs


@dataclass(frozen=True)
class Interface:
    """A host's attachment to a network: eth0, eth1, ... as in the lab's containers."""

    name: str
    network: str
    address: str  # CIDR, e.g. "10.9.0.5/24"
    # An IPv6 address too (CIDR, e.g. "fd00:60::5/64"), added without duplicate address
    # detection; its host needs IPv6 enabled (not the SEED sysctls, which disable it).
    address6: str | None = None


@dataclass(frozen=True)
class RouteSpec:
    dst: str  # "default" or a CIDR
    via: str | None = None
    dev: str | None = None


@dataclass(frozen=True)
class Host:
    name: str
    interfaces: tuple[Interface, ...]
    routes: tuple[RouteSpec, ...] = ()
    # Applied in order right after the namespace exists, before any link: disable_ipv6 must
    # be off before interfaces come up, or each emits router solicitations.
    sysctls: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TunnelSpec:
    """Where the VPN runs: client host to server host, over UDP `port`.

    `mode` "tap" carries Ethernet frames (the lab's task 9) instead of IP packets. The
    `*_tun6` addresses put IPv6 inside the tunnel too; `server_routes` are networks the server
    routes into its TUN (e.g. a site behind the client, task 8).
    """

    client: str
    server: str
    server_address: str
    port: int = 9090
    client_tun: str = "192.168.53.99/24"
    server_tun: str = "192.168.53.1/24"
    client_routes: tuple[str, ...] = ("192.168.60.0/24",)
    server_routes: tuple[str, ...] = ()
    mode: str = "tun"
    client_tun6: str | None = None
    server_tun6: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    networks: tuple[Network, ...]
    hosts: tuple[Host, ...]
    tunnel: TunnelSpec | None = None

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise ScenarioError(f"unknown host {name!r} in scenario {self.name} (hosts: {known})")

    def network(self, name: str) -> Network:
        for net in self.networks:
            if net.name == name:
                return net
        raise ScenarioError(f"unknown network {name!r} in scenario {self.name}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: a lab records the scenario it was built from (lab.json)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """The inverse of `to_dict`."""
        hosts = tuple(
            Host(
                name=h["name"],
                interfaces=tuple(Interface(**i) for i in h["interfaces"]),
                routes=tuple(RouteSpec(**r) for r in h["routes"]),
                sysctls=tuple((k, v) for k, v in h["sysctls"]),
            )
            for h in data["hosts"]
        )
        tunnel = data.get("tunnel")
        spec = None
        if tunnel is not None:
            routes = {k: tuple(tunnel[k]) for k in ("client_routes", "server_routes")}
            spec = TunnelSpec(**(tunnel | routes))
        return cls(
            name=data["name"],
            description=data["description"],
            networks=tuple(Network(**n) for n in data["networks"]),
            hosts=hosts,
            tunnel=spec,
        )
