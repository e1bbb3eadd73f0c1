"""The implementation under test (`--vpn-impl`, the reference by default) in the SEED lab:
the lab's tasks 2-6, with exact evidence that every packet crossed the tunnel.

```
  U 10.9.0.5 [TUN 192.168.53.99] ---- 10.9.0.11 [server, TUN 192.168.53.1] 192.168.60.11
                                                                          V 192.168.60.5
```
"""

from __future__ import annotations

import pytest

from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
U_TUN = "192.168.53.99"


def test_task2_each_end_has_a_tun_with_the_labs_address_up(vpn_tunnel: RunningTunnel) -> None:
    lab = vpn_tunnel.lab
    client = lab.rtnl("U").link(vpn_tunnel.client_tun)
    server = lab.rtnl("server").link(vpn_tunnel.server_tun)
    assert (client.tun_mode, client.up, client.addresses) == ("tun", True, ("192.168.53.99/24",))
    assert (server.tun_mode, server.up, server.addresses) == ("tun", True, ("192.168.53.1/24",))


def test_task3_the_client_routes_the_private_net_into_its_tun(vpn_tunnel: RunningTunnel) -> None:
    routes = {(r.dst, r.dev) for r in vpn_tunnel.lab.rtnl("U").routes()}
    assert ("192.168.60.0/24", vpn_tunnel.client_tun) in routes


def test_task3_4_one_icmp_echo_is_one_datagram_each_way_and_one_tun_packet_each_way(
    probes: Probes,
) -> None:
    payload = b"through the tunnel"
    with probes.evidence() as rec:
        reply = probes.ping("U", V, payload)
    assert (reply.source, reply.payload) == (V, payload)
    ev = rec.result
    ip_icmp_bytes = 20 + 8 + len(payload)
    assert (ev.client.tx_packets, ev.client.tx_bytes) == (1, ip_icmp_bytes)
    assert (ev.client.rx_packets, ev.client.rx_bytes) == (1, ip_icmp_bytes)
    assert (ev.server.rx_packets, ev.server.tx_packets) == (1, 1)
    assert [(d.src, d.dst, d.dport, d.length) for d in ev.to_server] == [
        ("10.9.0.5", "10.9.0.11", 9090, ip_icmp_bytes)
    ]
    assert [(d.src, d.sport, d.dst) for d in ev.from_server] == [("10.9.0.11", 9090, "10.9.0.5")]
    # Plain mode: the datagram's payload is the inner packet itself, TUN address to V.
    inner = ev.to_server[0].payload
    assert (inner[12:16], inner[16:20]) == (bytes([192, 168, 53, 99]), bytes([192, 168, 60, 5]))
    assert inner[28:] == payload


def test_task5_tcp_from_u_to_v_and_icmp_from_v_back_to_u(probes: Probes) -> None:
    data = bytes(range(256)) * 200
    with probes.evidence() as rec:
        assert probes.tcp("U", V, data) == data
        assert probes.ping("V", U_TUN, b"reverse").payload == b"reverse"
    assert rec.result.through_tunnel
    assert rec.result.client.rx_bytes > len(data)  # the echo came back through U's TUN


def test_large_icmp_payloads_are_fragmented_inside_and_arrive_whole(probes: Probes) -> None:
    payload = bytes(range(256)) * 11 + bytes(184)  # 3000 bytes, as in `ping -s 3000`
    with probes.evidence() as rec:
        assert probes.ping("U", V, payload).payload == payload
    # 3008 bytes of ICMP in 1500-byte TUN packets: 3 fragments each way, 3 datagrams each way.
    assert (rec.result.client.tx_packets, rec.result.client.rx_packets) == (3, 3)
    assert (len(rec.result.to_server), len(rec.result.from_server)) == (3, 3)
    assert rec.result.client.tx_bytes == 3008 + 3 * 20


def test_the_largest_udp_datagram_crosses_both_ways(probes: Probes) -> None:
    data = bytes(range(256)) * 255 + bytes(227)  # 65507 bytes
    assert probes.udp("U", V, data) == data
    assert probes.udp("V", U_TUN, data) == data


def test_task6_a_tcp_session_resumes_after_the_client_is_killed_and_restarted(
    vpn_tunnel: RunningTunnel, probes: Probes
) -> None:
    with probes.tcp_session("U", V) as session:
        session.send(b"typed before\n")
        assert session.receive(13) == b"typed before\n"
        vpn_tunnel.stop_client()
        assert not probes.reaches("U", V, timeout=0.3)
        session.send(b"typed while the tunnel was down\n")  # queued; TCP retransmits
        vpn_tunnel.start_client()
        assert session.receive(32, timeout=10) == b"typed while the tunnel was down\n"
    assert probes.ping("U", V, b"after").payload == b"after"
