"""The lab fixtures on a user's own scenario: a conftest.py overrides `vpnsim_scenario` with
its TOML file, whose hosts are not U/server/V, and `probes`, `vpn_tunnel`, `lab` and
`vpnsim_labs` work by that file's names, in a pytest session of its own."""

from __future__ import annotations

import pytest

from vpnsim.leaks import labs_logging_under

pytestmark = pytest.mark.lab

OFFICE = """
[scenario]
name = "office"

[networks]
wan = { subnet = "172.16.0.0/24" }
lan = { subnet = "10.20.0.0/24" }

[hosts.alice]
interfaces = [{ name = "eth0", network = "wan", address = "172.16.0.2/24" }]

[hosts.gw]
router = true
interfaces = [
    { name = "eth0", network = "wan", address = "172.16.0.1/24" },
    { name = "eth1", network = "lan", address = "10.20.0.1/24" },
]

[hosts.bob]
interfaces = [{ name = "eth0", network = "lan", address = "10.20.0.7/24" }]
routes = [{ dst = "default", via = "10.20.0.1" }]

[tunnel]
client = "alice"
server = "gw"
server_address = "172.16.0.1"
client_tun = "10.99.0.2/24"
server_tun = "10.99.0.1/24"
client_routes = ["10.20.0.0/24"]
"""

CONFTEST = """
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def vpnsim_scenario():
    return Path(__file__).parent / "office.toml"
"""

TESTS = """
import pytest

from vpnsim.model import ScenarioError


def test_probes_go_by_the_scenarios_host_names(vpn_tunnel, probes):
    assert (vpn_tunnel.spec.client, vpn_tunnel.spec.server) == ("alice", "gw")
    data = bytes(range(256)) * 8
    with probes.evidence() as rec:
        assert probes.ping("alice", "10.20.0.7", data).payload == data
    assert rec.result.through_tunnel
    assert probes.udp("bob", "10.99.0.2", b"back to alice") == b"back to alice"
    with pytest.raises(ScenarioError, match="unknown host 'U'"):
        probes.ping("U", "10.20.0.7")


def test_lab_is_the_same_scenario_without_a_tunnel(lab):
    from vpnsim.traffic.probes import Probes

    assert sorted(h.name for h in lab.scenario.hosts) == ["alice", "bob", "gw"]
    assert [link.name for link in lab.rtnl("alice").links() if link.tun_mode] == []
    assert not Probes(lab).reaches("alice", "10.20.0.7")  # no route to the LAN but a tunnel


def test_vpnsim_labs_builds_more_labs_of_any_scenario(vpnsim_labs, vpnsim_scenario):
    other = vpnsim_labs.build("seed-site-to-site")
    assert other.scenario.name == "seed-site-to-site"
    mine = vpnsim_labs.build(vpnsim_scenario)
    assert mine.scenario.name == "office"
"""


def test_a_conftest_overriding_vpnsim_scenario_gets_probes_by_its_names(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", office=OFFICE)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_office=TESTS)
    basetemp = pytester.path / "basetemp"

    result = pytester.runpytest_subprocess(f"--basetemp={basetemp}", "-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.OK, "\n".join(result.outlines)
    result.assert_outcomes(passed=3)
    assert labs_logging_under(basetemp) == []  # every lab of the session is gone
