"""Properties of the implementation under test, through the live tunnel of one lab per module:
whatever is sent, of any size from 1 byte to the largest datagram, in either direction, arrives
byte for byte. Failing examples print as Payload(size=..., seed=...) and replay exactly.

No per-example deadline, whatever the Hypothesis profile: an example's time is the machine's
load, not the tunnel's correctness (speed lives in `vpnsim bench framework`).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from vpnsim.strategies import MAX_ICMP_PAYLOAD, MAX_UDP_PAYLOAD, Payload, payloads
from vpnsim.traffic.probes import Probes

pytestmark = pytest.mark.lab

V = "192.168.60.5"
U_TUN = "192.168.53.99"
DIRECTIONS = pytest.mark.parametrize(("src", "dst"), [("U", V), ("V", U_TUN)], ids=["U->V", "V->U"])


@pytest.fixture(scope="module")
def tunnel_probes(probes: Probes) -> Probes:
    # Plain mode has no handshake: the server learns the client from its first packet, as in
    # the lab, so V can reach U's TUN address only after U has sent something.
    probes.ping("U", V, b"hello server")
    return probes


@DIRECTIONS
@settings(deadline=None)
@given(payload=payloads(MAX_UDP_PAYLOAD))
def test_udp_payloads_arrive_byte_for_byte(
    tunnel_probes: Probes, src: str, dst: str, payload: Payload
) -> None:
    data = payload.data()
    assert tunnel_probes.udp(src, dst, data) == data


@DIRECTIONS
@settings(deadline=None)
@given(payload=payloads(MAX_ICMP_PAYLOAD))
def test_icmp_echo_payloads_come_back_byte_for_byte(
    tunnel_probes: Probes, src: str, dst: str, payload: Payload
) -> None:
    data = payload.data()
    reply = tunnel_probes.ping(src, dst, data)
    assert (reply.source, reply.payload) == (dst, data)
