"""The tunnel driver over the in-memory doubles: a client and a server Driver talking, no root."""

from __future__ import annotations

import errno
import io
import os
from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from vpnsim.testing import (
    MAX_PUMP_ROUNDS,
    MemoryNetwork,
    MemoryTransport,
    MemoryTun,
    ipv4_packet,
    pump,
)
from vpnsim.tunnel.driver import BATCH, Driver
from vpnsim.tunnel.protocol import ClientProtocol, ServerProtocol, Stats

SERVER = ("10.9.0.11", 9090)
CLIENT = ("10.9.0.5", 40000)
CLIENT_TUN = "192.168.53.99"
HOST_V = "192.168.60.5"


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tunnel:
    """A client and a server driver on one in-memory network, as in the SEED lab."""

    net: MemoryNetwork
    client: Driver
    server: Driver
    client_tun: MemoryTun
    server_tun: MemoryTun
    client_udp: MemoryTransport
    server_udp: MemoryTransport
    server_protocol: ServerProtocol


def tunnel(clock: FakeClock | None = None) -> Tunnel:
    clock = clock or FakeClock()
    net = MemoryNetwork()
    client_tun, server_tun = MemoryTun("tun0"), MemoryTun("tun0")
    client_udp, server_udp = net.transport(CLIENT), net.transport(SERVER)
    server_protocol = ServerProtocol()
    return Tunnel(
        net=net,
        client=Driver(ClientProtocol(SERVER), client_tun, client_udp, clock),
        server=Driver(server_protocol, server_tun, server_udp, clock),
        client_tun=client_tun,
        server_tun=server_tun,
        client_udp=client_udp,
        server_udp=server_udp,
        server_protocol=server_protocol,
    )


def request(seq: int = 1) -> bytes:
    return ipv4_packet(CLIENT_TUN, HOST_V, b"request %d" % seq)


def reply(seq: int = 1) -> bytes:
    return ipv4_packet(HOST_V, CLIENT_TUN, b"reply %d" % seq)


def test_a_packet_injected_in_the_client_tun_arrives_at_the_server_tun_byte_for_byte() -> None:
    t = tunnel()
    t.client_tun.inject(request())

    assert pump(t.client, t.server) == 1
    assert t.server_tun.written == [request()]
    assert t.client_udp.sent == [(request(), SERVER)]


def test_the_reply_injected_at_the_server_tun_arrives_at_the_client_tun_byte_for_byte() -> None:
    t = tunnel()
    t.client_tun.inject(request())
    pump(t.client, t.server)

    t.server_tun.inject(reply())

    assert pump(t.client, t.server) == 2  # the server sends after the client's turn
    assert t.client_tun.written == [reply()]
    assert t.server_udp.sent == [(reply(), CLIENT)]
    assert t.client.endpoint.stats == Stats(tun_packets=1, sent=1, received=1, delivered=1)
    assert t.server.endpoint.stats == Stats(tun_packets=1, sent=1, received=1, delivered=1)


def test_a_failing_sendto_is_counted_in_errors_and_the_next_packet_still_flows() -> None:
    t = tunnel()
    t.client_udp.fail_sends = OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
    t.client_tun.inject(request(1))
    pump(t.client, t.server)

    t.client_udp.fail_sends = None
    t.client_tun.inject(request(2))
    pump(t.client, t.server)

    assert t.client.errors == Counter({"send: Network is unreachable": 1})
    assert t.server_tun.written == [request(2)]


def test_a_failing_tun_write_is_counted_in_errors_and_the_next_packet_still_flows() -> None:
    t = tunnel()
    t.server_tun.fail_writes = OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    t.client_tun.inject(request(1))
    pump(t.client, t.server)

    t.server_tun.fail_writes = None
    t.client_tun.inject(request(2))
    pump(t.client, t.server)

    assert t.server.errors == Counter({"tun write: Invalid argument": 1})
    assert t.server_tun.written == [request(2)]


def test_an_error_without_strerror_is_counted_by_its_message() -> None:
    t = tunnel()
    t.client_udp.fail_sends = OSError("no buffer today")
    t.client_tun.inject(request())

    pump(t.client, t.server)

    assert t.client.errors == Counter({"send: no buffer today": 1})


def test_the_driver_reads_at_most_batch_packets_per_readiness_event() -> None:
    t = tunnel()
    for seq in range(BATCH + 1):
        t.client_tun.inject(request(seq))

    assert t.client.tun_readable() == BATCH
    assert t.server.transport_readable() == BATCH
    assert t.client.tun_readable() == 1
    assert t.server.transport_readable() == 1
    assert t.client.tun_readable() == 0


def test_a_burst_bigger_than_batch_is_fully_delivered_in_order_after_pumping() -> None:
    t = tunnel()
    burst = [request(seq) for seq in range(2 * BATCH + 3)]
    for packet in burst:
        t.client_tun.inject(packet)

    assert pump(t.client, t.server) == 3  # BATCH, BATCH, then the last 3 per round
    assert t.server_tun.written == burst


def test_the_protocol_sees_the_clock_given_to_the_driver() -> None:
    clock = FakeClock(1000.0)
    t = tunnel(clock)
    t.client_tun.inject(request())
    pump(t.client, t.server)

    assert t.server_protocol.routes == {IPv4Address(CLIENT_TUN): CLIENT}
    assert t.server_protocol.last_heard == {CLIENT: 1000.0}

    clock.now += t.server_protocol.idle_timeout + 1
    t.server.endpoint.expire(clock())
    t.server_tun.inject(reply())
    pump(t.client, t.server)

    assert t.server_protocol.routes == {}
    assert t.client_tun.written == []
    assert t.server_protocol.stats.no_route == 1


def test_datagrams_from_a_stranger_never_reach_the_client_tun() -> None:
    t = tunnel()
    stranger = t.net.transport(("10.9.0.66", 9090))

    stranger.sendto(reply(), CLIENT)
    pump(t.client, t.server)

    assert t.client_tun.written == []
    assert t.client.endpoint.stats == Stats(foreign=1)


def test_a_datagram_to_an_address_nobody_is_bound_at_is_lost_silently() -> None:
    net = MemoryNetwork()
    client_tun = MemoryTun()
    client = Driver(ClientProtocol(("10.9.0.11", 9999)), client_tun, net.transport(CLIENT))
    server_udp = net.transport(SERVER)
    client_tun.inject(request())

    assert pump(client) == 1
    assert client.errors == Counter()
    assert server_udp.recvfrom() is None


def test_a_closed_transport_receives_nothing_and_its_address_can_be_bound_again() -> None:
    t = tunnel()
    t.server_udp.close()
    t.client_tun.inject(request(1))
    pump(t.client, t.server)

    rebound = t.net.transport(SERVER)
    t.client_tun.inject(request(2))
    pump(t.client)

    assert t.server_tun.written == []
    assert rebound.recvfrom() == (request(2), CLIENT)
    assert rebound.recvfrom() is None


def test_binding_an_address_twice_fails_with_eaddrinuse() -> None:
    net = MemoryNetwork()
    net.transport(SERVER)

    with pytest.raises(OSError) as raised:
        net.transport(SERVER)
    assert raised.value.errno == errno.EADDRINUSE


def test_the_doubles_have_no_file_descriptor_to_select_on() -> None:
    t = tunnel()

    with pytest.raises(io.UnsupportedOperation):
        t.client_tun.fileno()
    with pytest.raises(io.UnsupportedOperation):
        t.client_udp.fileno()
    with pytest.raises(io.UnsupportedOperation):
        t.client.run()


class EchoingTun(MemoryTun):
    """A TUN whose kernel routes every packet written to it straight back in: a loop."""

    def write(self, packet: bytes) -> None:
        super().write(packet)
        self.inject(packet)


def test_pump_gives_up_on_traffic_that_never_settles() -> None:
    net = MemoryNetwork()
    client = Driver(ClientProtocol(SERVER), EchoingTun(), net.transport(CLIENT))
    server = Driver(ServerProtocol(), EchoingTun(), net.transport(SERVER))
    client.tun.write(request())

    with pytest.raises(RuntimeError, match=f"after {MAX_PUMP_ROUNDS} rounds"):
        pump(client, server)
