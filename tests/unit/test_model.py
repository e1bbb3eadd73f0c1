"""Scenario data: the SEED lab's exact addresses, and consistency errors that name the item."""

from __future__ import annotations

import dataclasses

import pytest

from vpnsim.model import Host, Interface, Network, Scenario, ScenarioError
from vpnsim.scenario import validate
from vpnsim.seed import builtin_scenario, seed_tunnel


def test_seed_tunnel_lab_uses_the_labs_own_addresses() -> None:
    scenario = seed_tunnel()
    validate(scenario)  # by the scenario files' rules
    addresses = {(h.name, i.name): i.address for h in scenario.hosts for i in h.interfaces}
    assert addresses == {
        ("U", "eth0"): "10.9.0.5/24",
        ("server", "eth0"): "10.9.0.11/24",
        ("server", "eth1"): "192.168.60.11/24",
        ("V", "eth0"): "192.168.60.5/24",
        ("V2", "eth0"): "192.168.60.6/24",
    }
    assert scenario.tunnel is not None
    assert (scenario.tunnel.port, scenario.tunnel.client_tun, scenario.tunnel.server_tun) == (
        9090,
        "192.168.53.99/24",
        "192.168.53.1/24",
    )


def test_only_the_server_forwards_and_every_seed_host_has_ipv6_off() -> None:
    for host in seed_tunnel().hosts:
        sysctls = dict(host.sysctls)
        assert sysctls["net.ipv4.ip_forward"] == ("1" if host.name == "server" else "0")
        assert sysctls["net.ipv6.conf.all.disable_ipv6"] == "1"
        assert sysctls["net.ipv6.conf.default.disable_ipv6"] == "1"


def test_private_hosts_route_everything_via_the_server() -> None:
    scenario = seed_tunnel()
    for name in ("V", "V2"):
        (route,) = scenario.host(name).routes
        assert (route.dst, route.via) == ("default", "192.168.60.11")
    assert scenario.host("U").routes == ()


def test_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(
        ScenarioError, match=r"unknown scenario 'nope'; known scenarios: seed-tunnel"
    ):
        builtin_scenario("nope")


def test_unknown_host_names_the_known_hosts() -> None:
    with pytest.raises(ScenarioError, match=r"unknown host 'W'.*hosts: U, server, V, V2"):
        seed_tunnel().host("W")


def test_address_outside_its_network_is_rejected_with_the_host_and_interface() -> None:
    scenario = seed_tunnel()
    bad_u = Host("U", (Interface("eth0", "net-10.9.0.0", "10.9.1.5/24"),))
    broken = dataclasses.replace(scenario, hosts=(bad_u, *scenario.hosts[1:]))
    with pytest.raises(
        ScenarioError,
        match=r"^scenario seed-tunnel: hosts\.U\.interfaces\[0\]\.address: 10\.9\.1\.5/24 is not "
        r"an address of network net-10\.9\.0\.0 \(10\.9\.0\.0/24\)$",
    ):
        validate(broken)


def test_duplicate_address_and_duplicate_name_are_rejected() -> None:
    scenario = seed_tunnel()
    twin = Host("W", (Interface("eth0", "net-192.168.60.0", "192.168.60.5/24"),))
    with pytest.raises(
        ScenarioError,
        match=r"hosts\.W\.interfaces\[0\]\.address: duplicate address 192\.168\.60\.5 "
        r"\(also at hosts\.V\.interfaces\[0\]\.address\)",
    ):
        validate(dataclasses.replace(scenario, hosts=(*scenario.hosts, twin)))
    again = Network("net-10.9.0.0", "10.9.0.0/24")
    with pytest.raises(ScenarioError, match=r"networks: duplicate name 'net-10\.9\.0\.0'"):
        validate(dataclasses.replace(scenario, networks=(*scenario.networks, again)))


@pytest.mark.parametrize("name", ["a.b", "", "-x", "x" * 32, "ü"])
def test_host_names_that_cannot_be_namespace_parts_are_rejected(name: str) -> None:
    scenario = seed_tunnel()
    host = Host(name, (Interface("eth0", "net-10.9.0.0", "10.9.0.99/24"),))
    with pytest.raises(ScenarioError, match="use letters, digits"):
        validate(dataclasses.replace(scenario, hosts=(*scenario.hosts, host)))


def test_a_scenario_recorded_as_json_comes_back_equal() -> None:
    """A lab records its scenario in lab.json; `attach()` rebuilds it from there."""
    import json

    from vpnsim.scenario.shipped import load_file

    for scenario in (seed_tunnel(), load_file("example-ipv6-inside").scenario):
        data = json.loads(json.dumps(scenario.to_dict()))
        assert Scenario.from_dict(data) == scenario
