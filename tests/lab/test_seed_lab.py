"""The SEED tunneling lab as built in namespaces: exact addresses, routes, sysctls, isolation.

```
  U 10.9.0.5 ---- net-10.9.0.0 ---- 10.9.0.11 [server] 192.168.60.11 ---- net-192.168.60.0
                                                                          V 192.168.60.5
                                                                          V2 192.168.60.6
```
"""

from __future__ import annotations

import errno
import socket

import pytest

from vpnsim.net import namespace, sysctl
from vpnsim.net.rtnl import Rtnl
from vpnsim.topology import Lab

pytestmark = pytest.mark.lab


def test_each_host_has_exactly_the_labs_addresses(seed_lab: Lab) -> None:
    seen = {
        host.name: sorted(
            (link.name, link.addresses)
            for link in seed_lab.rtnl(host.name).links()
            if link.name != "lo"
        )
        for host in seed_lab.scenario.hosts
    }
    assert seen == {
        "U": [("eth0", ("10.9.0.5/24",))],
        "server": [("eth0", ("10.9.0.11/24",)), ("eth1", ("192.168.60.11/24",))],
        "V": [("eth0", ("192.168.60.5/24",))],
        "V2": [("eth0", ("192.168.60.6/24",))],
    }


def test_routes_match_the_lab_and_u_has_none_to_the_private_net(seed_lab: Lab) -> None:
    routes = {
        host.name: sorted((r.dst, r.gateway, r.dev) for r in seed_lab.rtnl(host.name).routes())
        for host in seed_lab.scenario.hosts
    }
    assert routes["U"] == [("10.9.0.0/24", None, "eth0")]
    assert routes["V"] == [("192.168.60.0/24", None, "eth0"), ("default", "192.168.60.11", "eth0")]
    assert routes["server"] == [("10.9.0.0/24", None, "eth0"), ("192.168.60.0/24", None, "eth1")]


def test_sysctls_are_set_explicitly_in_each_namespace(seed_lab: Lab) -> None:
    for host in ("U", "server", "V", "V2"):
        ns = seed_lab.ns(host)
        assert sysctl.get_sysctl(ns, "net.ipv4.ip_forward") == ("1" if host == "server" else "0")
        assert sysctl.get_sysctl(ns, "net.ipv6.conf.all.disable_ipv6") == "1"
        assert sysctl.get_sysctl(ns, "net.ipv4.conf.all.rp_filter") == "0"
        # IPv6 off before the links came up: no link-local address on any interface.
        assert all(":" not in a for link in seed_lab.rtnl(host).links() for a in link.addresses)


def test_networks_are_bridges_in_the_labs_fabric_namespace(seed_lab: Lab) -> None:
    fabric = seed_lab.rtnl("_fabric")
    links = fabric.links()
    bridges = {link.alias: link.index for link in links if link.kind == "bridge"}
    assert set(bridges) == {"net-10.9.0.0", "net-192.168.60.0"}
    ports = {link.alias: link.master for link in links if link.kind == "veth"}
    assert ports == {
        "U:eth0": bridges["net-10.9.0.0"],
        "server:eth0": bridges["net-10.9.0.0"],
        "server:eth1": bridges["net-192.168.60.0"],
        "V:eth0": bridges["net-192.168.60.0"],
        "V2:eth0": bridges["net-192.168.60.0"],
    }


def test_without_a_tunnel_u_cannot_reach_v(seed_lab: Lab) -> None:
    """Task 1 baseline: U has no route to 192.168.60.0/24."""
    with (
        namespace.socket_in(seed_lab.ns("U"), socket.AF_INET, socket.SOCK_DGRAM) as sock,
        pytest.raises(OSError) as raised,
    ):
        sock.sendto(b"hello", ("192.168.60.5", 9090))
    assert raised.value.errno == errno.ENETUNREACH


def test_the_server_routes_between_its_two_networks(seed_lab: Lab) -> None:
    """U has no route back to V, so the forwarding is shown from V's side: V -> server -> U."""
    with (
        namespace.socket_in(seed_lab.ns("U"), socket.AF_INET, socket.SOCK_DGRAM) as at_u,
        namespace.socket_in(seed_lab.ns("V"), socket.AF_INET, socket.SOCK_DGRAM) as at_v,
    ):
        at_u.bind(("10.9.0.5", 5555))
        at_u.settimeout(2)
        at_v.sendto(b"from V via the router", ("10.9.0.5", 5555))
        data, (src, _port) = at_u.recvfrom(100)
    assert (data, src) == (b"from V via the router", "192.168.60.5")


def test_seed_addresses_never_appear_in_the_root_namespace(seed_lab: Lab) -> None:
    with Rtnl.open(None) as root:
        addresses = [a for link in root.links() for a in link.addresses]
    seed_prefixes = ("10.9.0.", "192.168.60.", "192.168.53.", "192.168.50.")
    assert [a for a in addresses if a.startswith(seed_prefixes)] == []


def test_tun_and_tap_devices_are_created_inside_a_host_and_found_by_type(seed_lab: Lab) -> None:
    rtnl = seed_lab.rtnl("V2")
    rtnl.add_tun("lab-tun", "tun")
    rtnl.add_tun("lab-tap", "tap")
    try:
        assert [link.name for link in rtnl.tun_devices("tun")] == ["lab-tun"]
        assert [link.name for link in rtnl.tun_devices("tap")] == ["lab-tap"]
        assert rtnl.link("lab-tap").mac is not None and rtnl.link("lab-tun").mac is None
        with Rtnl.open(None) as root:
            assert {"lab-tun", "lab-tap"}.isdisjoint(link.name for link in root.links())
    finally:
        rtnl.delete_link("lab-tun")
        rtnl.delete_link("lab-tap")
