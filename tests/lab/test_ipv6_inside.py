"""IPv6 inside the tunnel, end to end: the SEED topology with IPv6 on every host, an IPv6
private net behind the server, and IPv6 TUN addresses; the outer link stays IPv4, so the
tunnel still runs over UDP to 10.9.0.11:9090 and carries IPv6 packets in its datagrams.

```
  U 10.9.0.5 fd00:9::5 [TUN 192.168.53.99 fd00:53::99]
      ---- 10.9.0.11 fd00:9::11 [server, TUN 192.168.53.1 fd00:53::1] 192.168.60.11 fd00:60::11
                                                               V 192.168.60.5 fd00:60::5
```
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest

from vpnsim.impl import REFERENCE
from vpnsim.model import Host, Network, RouteSpec, Scenario
from vpnsim.net import sysctl
from vpnsim.pytest.fixtures import LabFactory
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab
from vpnsim.traffic.errors import NoRoute
from vpnsim.traffic.evidence import describe_inner
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel, start_tunnel

pytestmark = pytest.mark.lab

V6 = "fd00:60::5"
U_TUN6 = "fd00:53::99"
V = "192.168.60.5"

# IPv6 on, unlike the SEED hosts; the rest as there (rp_filter off, only the server forwards).
# Nothing but the probes' own packets may cross a TUN while evidence is recorded: no router
# solicitations; and the router's TUN, which joins all-routers (ff02::2) and reports it by
# MLD, sends its reports 1 ms apart, not up to 1 s apart, so they are over before the tunnel
# is ready. (A host's TUN has no MLD to send: NOARP, so no solicited-node groups.)
IPV6_HOST_SYSCTLS = (
    ("net.ipv6.conf.all.disable_ipv6", "0"),
    ("net.ipv6.conf.default.disable_ipv6", "0"),
    ("net.ipv6.conf.all.router_solicitations", "0"),
    ("net.ipv6.conf.default.router_solicitations", "0"),
    ("net.ipv6.conf.default.mldv2_unsolicited_report_interval", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
)
HOST6 = (*IPV6_HOST_SYSCTLS, ("net.ipv4.ip_forward", "0"), ("net.ipv6.conf.all.forwarding", "0"))
ROUTER6 = (*IPV6_HOST_SYSCTLS, ("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"))

ADDRESSES6 = {
    ("U", "eth0"): "fd00:9::5/64",
    ("server", "eth0"): "fd00:9::11/64",
    ("server", "eth1"): "fd00:60::11/64",
    ("V", "eth0"): "fd00:60::5/64",
}


def dual_stack_seed_tunnel() -> Scenario:
    """The SEED tunneling lab with IPv6 on every host, an IPv6 address next to the IPv4 one
    of U, server and V (V2 keeps only its link-local one), and IPv6 inside the tunnel."""
    seed = seed_tunnel()
    subnets6 = {"net-10.9.0.0": "fd00:9::/64", "net-192.168.60.0": "fd00:60::/64"}
    hosts = []
    for host in seed.hosts:
        interfaces = tuple(
            dataclasses.replace(iface, address6=ADDRESSES6.get((host.name, iface.name)))
            for iface in host.interfaces
        )
        routes = host.routes
        if host.name == "V":
            routes = (*routes, RouteSpec("default", via="fd00:60::11"))
        hosts.append(
            Host(host.name, interfaces, routes, ROUTER6 if host.name == "server" else HOST6)
        )
    assert seed.tunnel is not None
    return dataclasses.replace(
        seed,
        name="seed-tunnel-ipv6",
        description="SEED VPN Tunneling Lab with IPv6 inside the tunnel",
        networks=tuple(Network(n.name, n.subnet, subnets6[n.name]) for n in seed.networks),
        hosts=tuple(hosts),
        tunnel=dataclasses.replace(
            seed.tunnel,
            client_tun6="fd00:53::99/64",
            server_tun6="fd00:53::1/64",
            client_routes=("192.168.60.0/24", "fd00:60::/64"),
        ),
    )


@pytest.fixture(scope="module")
def lab(vpnsim_labs: LabFactory) -> Iterator[Lab]:
    built = vpnsim_labs.build(dual_stack_seed_tunnel())  # in the session's leak registry
    yield built
    built.teardown()


@pytest.fixture(scope="module")
def tunnel(lab: Lab) -> Iterator[RunningTunnel]:
    running = start_tunnel(lab, REFERENCE)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def probes(lab: Lab, tunnel: RunningTunnel) -> Iterator[Probes]:
    probes = Probes(lab, tunnel)
    try:
        yield probes
    finally:
        probes.close()


def addresses_of(lab: Lab, host: str, ifname: str) -> set[str]:
    """The interface's addresses, less the kernel's own IPv6 link-local one."""
    return {a for a in lab.rtnl(host).link(ifname).addresses if not a.startswith("fe80:")}


def test_each_end_has_a_tun_with_both_addresses_and_v_its_ipv6_address_and_route(
    lab: Lab, tunnel: RunningTunnel
) -> None:
    assert addresses_of(lab, "U", tunnel.client_tun) == {"192.168.53.99/24", "fd00:53::99/64"}
    assert addresses_of(lab, "server", tunnel.server_tun) == {"192.168.53.1/24", "fd00:53::1/64"}
    assert addresses_of(lab, "V", "eth0") == {"192.168.60.5/24", "fd00:60::5/64"}
    assert ("default", "fd00:60::11", "eth0") in {
        (r.dst, r.gateway, r.dev) for r in lab.rtnl("V").routes()
    }
    assert sysctl.get_sysctl(lab.ns("server"), "net.ipv6.conf.all.forwarding") == "1"


def test_the_client_routes_the_ipv6_private_net_into_its_tun(
    lab: Lab, tunnel: RunningTunnel
) -> None:
    routes = {(r.dst, r.dev) for r in lab.rtnl("U").routes()}
    assert {("192.168.60.0/24", tunnel.client_tun), ("fd00:60::/64", tunnel.client_tun)} <= routes


def test_one_icmpv6_echo_is_one_ipv6_packet_in_one_datagram_each_way(probes: Probes) -> None:
    payload = bytes(range(56))
    with probes.evidence() as rec:
        reply = probes.ping("U", V6, payload)
    assert (reply.source, reply.payload, reply.ttl) == (V6, payload, 63)  # one router: server
    ev = rec.result
    ipv6_icmp_bytes = 40 + 8 + len(payload)
    assert (ev.client.tx_packets, ev.client.tx_bytes) == (1, ipv6_icmp_bytes)
    assert (ev.client.rx_packets, ev.client.rx_bytes) == (1, ipv6_icmp_bytes)
    assert (ev.server.rx_packets, ev.server.tx_packets) == (1, 1)
    assert [(d.src, d.dst, d.dport, d.length) for d in ev.to_server] == [
        ("10.9.0.5", "10.9.0.11", 9090, ipv6_icmp_bytes)
    ]
    assert [(d.src, d.sport, d.dst) for d in ev.from_server] == [("10.9.0.11", 9090, "10.9.0.5")]
    # Plain mode: the datagram's payload is the IPv6 packet itself, TUN address to V.
    inner = ev.to_server[0].payload
    assert (inner[0] >> 4, inner[6]) == (6, socket.IPPROTO_ICMPV6)
    assert inner[8:24] == socket.inet_pton(socket.AF_INET6, U_TUN6)
    assert inner[24:40] == socket.inet_pton(socket.AF_INET6, V6)
    assert (inner[40], inner[48:]) == (128, payload)  # an echo request, our payload
    assert ev.from_server[0].payload[40] == 129  # the echo reply
    assert describe_inner(inner) == "ICMPv6 fd00:53::99 > fd00:60::5"
    assert (
        "  first to server: 10.9.0.5:"
        f"{ev.to_server[0].sport} > 10.9.0.11:9090, carrying ICMPv6 fd00:53::99 > fd00:60::5"
    ) in ev.lines()


def test_a_3000_byte_icmpv6_echo_is_fragmented_by_the_sender_and_arrives_whole(
    probes: Probes,
) -> None:
    payload = bytes(range(256)) * 11 + bytes(184)  # 3000 bytes, as in `ping -6 -s 3000`
    with probes.evidence() as rec:
        assert probes.ping("U", V6, payload).payload == payload
    ev = rec.result
    # 3008 bytes of ICMPv6 in 1500-byte TUN packets: 40 + 8 (fragment header) + at most 1448
    # (a multiple of 8) each, so 1448 + 1448 + 112; fragmented by U, and by V for the reply.
    sizes = [48 + 1448, 48 + 1448, 48 + 112]
    assert (ev.client.tx_packets, ev.client.tx_bytes) == (3, sum(sizes))
    assert (ev.client.rx_packets, ev.client.rx_bytes) == (3, sum(sizes))
    assert [d.length for d in ev.to_server] == sizes
    assert [d.length for d in ev.from_server] == sizes
    first = ev.to_server[0].payload
    assert (first[0] >> 4, first[6], first[40]) == (6, 44, socket.IPPROTO_ICMPV6)  # fragment hdr
    assert describe_inner(first) == "ICMPv6 fd00:53::99 > fd00:60::5"


def test_the_largest_icmpv6_echo_crosses_in_46_fragments_each_way(probes: Probes) -> None:
    payload = bytes(range(256)) * 255 + bytes(247)  # 65527 bytes: 65535 - 8, no header counted
    with probes.evidence() as rec:
        assert probes.ping("U", V6, payload).payload == payload
    # 65535 bytes of ICMPv6 in fragments of at most 1448: 45 full ones and one of 375.
    ev = rec.result
    assert (ev.client.tx_packets, ev.client.rx_packets) == (46, 46)
    assert ev.client.tx_bytes == ev.client.rx_bytes == 65535 + 46 * (40 + 8)


def test_icmpv6_echo_from_v_reaches_the_clients_tun_address_back_through_the_tunnel(
    probes: Probes,
) -> None:
    assert probes.ping("U", V6, b"first").payload == b"first"  # the server knows the client
    with probes.evidence() as rec:
        reply = probes.ping("V", U_TUN6, b"reverse")
    assert (reply.source, reply.payload) == (U_TUN6, b"reverse")
    ev = rec.result
    assert (ev.client.rx_packets, ev.client.tx_packets, len(ev.from_server)) == (1, 1, 1)
    assert describe_inner(ev.from_server[0].payload) == "ICMPv6 fd00:60::5 > fd00:53::99"


def test_udp_over_ipv6_is_byte_identical_both_ways_up_to_the_largest_datagram(
    probes: Probes,
) -> None:
    small = b"udp over ipv6"
    largest = bytes(range(256)) * 255 + bytes(247)  # 65527 bytes: 65535 - 8, no header counted
    with probes.evidence() as rec:
        assert probes.udp("U", V6, small) == small
    assert rec.result.through_tunnel
    assert [describe_inner(d.payload) for d in rec.result.to_server] == [
        "UDP fd00:53::99 > fd00:60::5"
    ]
    assert probes.udp("U", V6, largest) == largest
    assert probes.udp("V", U_TUN6, largest) == largest


def test_tcp_over_ipv6_is_byte_identical_and_every_datagram_carries_ipv6(probes: Probes) -> None:
    data = bytes(range(256)) * 200
    with probes.evidence() as rec:
        assert probes.tcp("U", V6, data) == data
    ev = rec.result
    assert ev.through_tunnel
    assert ev.client.rx_bytes > len(data)  # the echo came back through U's TUN
    assert all(d.payload[0] >> 4 == 6 for d in (*ev.to_server, *ev.from_server))
    assert describe_inner(ev.to_server[0].payload) == "TCP fd00:53::99 > fd00:60::5"


def test_a_tcp_session_over_ipv6_stays_open_across_exchanges(probes: Probes) -> None:
    with probes.tcp_session("U", V6) as session:
        for line in (b"one\n", b"two lines\n"):
            session.send(line)
            assert session.receive(len(line)) == line


def test_ipv4_still_goes_through_the_same_tunnel(probes: Probes) -> None:
    data = bytes(range(256)) * 40
    with probes.evidence() as rec:
        assert probes.ping("U", V, b"ipv4 too").payload == b"ipv4 too"
        assert probes.udp("U", V, data) == data
        assert probes.tcp("U", V, data) == data
    ev = rec.result
    assert ev.through_tunnel
    assert all(d.payload[0] >> 4 == 4 for d in (*ev.to_server, *ev.from_server))
    assert describe_inner(ev.to_server[0].payload) == "ICMP 192.168.53.99 > 192.168.60.5"


def test_a_router_without_a_route_answers_icmpv6_no_route_to_destination(
    probes: Probes,
) -> None:
    with pytest.raises(NoRoute) as raised:
        probes.ping("V", "fd00:99::1")
    assert str(raised.value) == (
        "ICMPv6 echo of 6 bytes from V to fd00:99::1: "
        "no route to destination (ICMPv6 from fd00:60::11)"
    )


def test_a_host_without_an_ipv6_route_fails_at_send_with_no_route(probes: Probes) -> None:
    with pytest.raises(NoRoute) as raised:
        probes.ping("V2", U_TUN6)
    assert str(raised.value) == (
        "ICMPv6 echo of 6 bytes from V2 to fd00:53::99: no route (Network is unreachable)"
    )
