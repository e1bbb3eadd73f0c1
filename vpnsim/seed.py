"""The SEED labs' topologies, with the labs' own names and addresses (students hardcode them).

```
  U 10.9.0.5 ---- net-10.9.0.0 ---- 10.9.0.11 [server: VPN server + router] 192.168.60.11
                                                                   |
                                       net-192.168.60.0 -----------+-- V 192.168.60.5
                                                                   +-- V2 192.168.60.6
  tunnel: client TUN 192.168.53.99/24 on U, server TUN 192.168.53.1/24, UDP port 9090
```
"""

from __future__ import annotations

from vpnsim.model import Host, Interface, Network, RouteSpec, Scenario, ScenarioError, TunnelSpec

# Docker disables IPv6 on IPv4-only networks, so the lab's TUNs carry IPv4 only; student code
# relies on that. rp_filter and forwarding are set explicitly: a new namespace does not
# inherit the root namespace's values predictably.
SEED_HOST_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
)
ROUTER_SYSCTLS = (*SEED_HOST_SYSCTLS, ("net.ipv4.ip_forward", "1"))
HOST_SYSCTLS = (*SEED_HOST_SYSCTLS, ("net.ipv4.ip_forward", "0"))


def seed_tunnel() -> Scenario:
    """The VPN Tunneling Lab (tasks 1-7): U, server (router), V and V2."""
    outside = Network("net-10.9.0.0", "10.9.0.0/24")
    inside = Network("net-192.168.60.0", "192.168.60.0/24")
    via_server = (RouteSpec("default", via="192.168.60.11"),)
    return Scenario(
        name="seed-tunnel",
        description="SEED VPN Tunneling Lab: U cannot reach 192.168.60.0/24 without the tunnel",
        networks=(outside, inside),
        hosts=(
            Host("U", (Interface("eth0", outside.name, "10.9.0.5/24"),), sysctls=HOST_SYSCTLS),
            Host(
                "server",
                (
                    Interface("eth0", outside.name, "10.9.0.11/24"),
                    Interface("eth1", inside.name, "192.168.60.11/24"),
                ),
                sysctls=ROUTER_SYSCTLS,
            ),
            Host(
                "V",
                (Interface("eth0", inside.name, "192.168.60.5/24"),),
                via_server,
                HOST_SYSCTLS,
            ),
            Host(
                "V2",
                (Interface("eth0", inside.name, "192.168.60.6/24"),),
                via_server,
                HOST_SYSCTLS,
            ),
        ),
        tunnel=TunnelSpec(client="U", server="server", server_address="10.9.0.11"),
    )


BUILTIN = {"seed-tunnel": seed_tunnel}
DEFAULT_SCENARIO = "seed-tunnel"


def builtin_scenario(name: str) -> Scenario:
    """A shipped scenario by name; the error lists the known ones."""
    try:
        factory = BUILTIN[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN))
        raise ScenarioError(f"unknown scenario {name!r}; known scenarios: {known}") from None
    return factory()
