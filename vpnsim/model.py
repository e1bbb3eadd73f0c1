"""Scenarios as pure data: hosts, networks, addresses, routes, sysctls and the tunnel to run.

Nothing here touches the kernel; `vpnsim.topology` turns a Scenario into a running Lab. The
CLI, the pytest plugin and (later) scenario files and the grader all go through these types.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from vpnsim.errors import UsageError

# Host and lab names become parts of namespace names (vpnsim.<lab>.<host>): no dots.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$")
NETWORK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


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

    def address_on(self, network: str) -> str:
        for iface in self.interfaces:
            if iface.network == network:
                return str(ipaddress.ip_interface(iface.address).ip)
        raise ScenarioError(f"host {self.name} has no interface on network {network}")


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
    # The scenario file it was loaded from (None: built in), so a later command re-reads it.
    source: str | None = None

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

    def validate(self) -> None:
        """Check internal consistency; raise ScenarioError naming the offending item."""
        seen_names: set[str] = set()
        named = [(h.name, NAME_RE) for h in self.hosts]
        named += [(n.name, NETWORK_NAME_RE) for n in self.networks]
        for name, pattern in named:
            if not pattern.match(name):
                raise ScenarioError(f"name {name!r}: use letters, digits, - and _")
            if name in seen_names:
                raise ScenarioError(f"duplicate name {name!r}")
            seen_names.add(name)
        addresses: set[str] = set()
        for host in self.hosts:
            for iface in host.interfaces:
                subnet = ipaddress.ip_network(self.network(iface.network).subnet)
                ip = ipaddress.ip_interface(iface.address)
                if ip.ip not in subnet:
                    raise ScenarioError(
                        f"hosts.{host.name}.{iface.name}: {iface.address} is outside "
                        f"network {iface.network} ({subnet})"
                    )
                if str(ip.ip) in addresses:
                    raise ScenarioError(f"hosts.{host.name}.{iface.name}: duplicate {ip.ip}")
                addresses.add(str(ip.ip))
                if iface.address6 is not None:
                    ip6 = self._check_address6(host, iface)
                    if str(ip6) in addresses:
                        raise ScenarioError(f"hosts.{host.name}.{iface.name}: duplicate {ip6}")
                    addresses.add(str(ip6))
        if self.tunnel is not None:
            self.host(self.tunnel.client)
            self.host(self.tunnel.server)

    def _check_address6(self, host: Host, iface: Interface) -> ipaddress.IPv6Address:
        """The interface's IPv6 address, if it is one and lies in its network's subnet6."""
        where = f"hosts.{host.name}.{iface.name}"
        try:
            ip = ipaddress.ip_interface(iface.address6 or "")
        except ValueError:
            raise ScenarioError(f"{where}: {iface.address6!r} is not an IPv6 CIDR") from None
        if not isinstance(ip, ipaddress.IPv6Interface):
            raise ScenarioError(f"{where}: address6 {iface.address6} is not an IPv6 address")
        network = self.network(iface.network)
        if network.subnet6 is not None and ip.ip not in ipaddress.ip_network(network.subnet6):
            raise ScenarioError(
                f"{where}: {iface.address6} is outside network {iface.network} ({network.subnet6})"
            )
        return ip.ip
