"""`Driver.run`, the loop the real tunnel runs, over real descriptors without root: a datagram
socketpair stands in for the TUN (one packet per read, as a TUN gives them) and a loopback UDP
socket is the outer transport. Both of its loops, the one-to-one (plain mode) and the general
one: bursts of mixed sizes, small ones among them (after which the loop goes back to select
instead of reading on), arrive whole and in order both ways."""

from __future__ import annotations

import random
import select
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from vpnsim.net.buffers import enlarge
from vpnsim.testing import ipv4_packet
from vpnsim.tunnel.driver import BATCH, BURST_HINT, Driver, UdpTransport
from vpnsim.tunnel.protocol import Address, ClientProtocol, Deliver, OneToOneEndpoint, Send

STOP = ipv4_packet("192.168.53.99", "192.168.60.5", b"stop the loop")
WAIT = 10.0  # a bound for a failing test only: every wait ends on the packet's arrival


class SocketTun:
    """A TUN stand-in: the loop's end of an AF_UNIX datagram socketpair, non-blocking."""

    def __init__(self, sock: socket.socket) -> None:
        self.name = "tun-double"
        self.sock = sock
        sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> bytes | None:
        try:
            return self.sock.recv(65535)
        except BlockingIOError:
            return None

    def write(self, packet: bytes) -> None:
        # A TUN takes every write; a socketpair queues only net.unix.max_dgram_qlen (10).
        while True:
            try:
                self.sock.send(packet)
                return
            except BlockingIOError:
                select.select([], [self.sock], [], WAIT)


class Stopped(Exception):
    pass


class StoppableClient(ClientProtocol):
    """Plain mode's client: `run` takes its one-to-one loop."""

    def route_from_tun(self, packet: bytes, now: float) -> Address:
        if packet == STOP:
            raise Stopped
        return super().route_from_tun(packet, now)


class ActionsClient:
    """The same client seen only through actions (as AEAD endpoints are): `run`'s general loop."""

    def __init__(self, server: Address) -> None:
        self.plain = StoppableClient(server)
        self.stats = self.plain.stats

    def packet_from_tun(self, packet: bytes, now: float) -> list[Send]:
        return self.plain.packet_from_tun(packet, now)

    def datagram_received(self, data: bytes, addr: Address, now: float) -> list[Deliver]:
        return self.plain.datagram_received(data, addr, now)

    def expire(self, now: float) -> None:
        self.plain.expire(now)


def _packets(count: int, seed: int) -> list[bytes]:
    """Packets of sizes on both sides of BURST_HINT, some at the edges."""
    rng = random.Random(seed)
    sizes = [1, BURST_HINT - 29, BURST_HINT - 28, 1472, 40, 8000]
    sizes += [rng.randint(1, 9000) for _ in range(count - len(sizes))]
    return [ipv4_packet("192.168.53.99", "192.168.60.5", rng.randbytes(size)) for size in sizes]


Running = tuple[socket.socket, socket.socket, Address]


@pytest.fixture(params=["one-to-one", "actions"])
def running(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[socket.socket, socket.socket, Address]]:
    """(the kernel's end of the TUN double, the peer's UDP socket, the loop's UDP address)"""
    loop_end, kernel_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    # UDP drops what overflows a receiver that a busy machine keeps from reading: room for
    # the whole burst (past rmem_max: the suite runs as root).
    enlarge(peer, 1 << 24)
    transport = UdpTransport(("127.0.0.1", 0))
    client = StoppableClient if request.param == "one-to-one" else ActionsClient
    endpoint = client(peer.getsockname())
    assert isinstance(endpoint, OneToOneEndpoint) == (request.param == "one-to-one")
    driver = Driver(endpoint, SocketTun(loop_end), transport)
    ended: list[BaseException] = []

    def loop() -> None:
        try:
            driver.run()
        except BaseException as exc:  # Stopped, or the failure to report
            ended.append(exc)

    thread = threading.Thread(target=loop, name="driver.run")
    thread.start()
    try:
        yield kernel_end, peer, transport.sock.getsockname()
    finally:
        kernel_end.send(STOP)
        thread.join(WAIT)
        transport.close()
        for sock in (loop_end, kernel_end, peer):
            sock.close()
    assert not thread.is_alive()
    assert len(ended) == 1 and isinstance(ended[0], Stopped), ended


def _sent_meanwhile(send: Callable[[bytes], object], packets: list[bytes]) -> threading.Thread:
    """Send `packets` from another thread, so that the test reads while the burst goes."""
    thread = threading.Thread(target=lambda: [send(packet) for packet in packets])
    thread.start()
    return thread


def _receive(sock: socket.socket, count: int) -> list[bytes]:
    got = []
    while len(got) < count and select.select([sock], [], [], WAIT)[0]:
        got.append(sock.recv(65535))
    return got


def test_a_burst_from_the_tun_leaves_whole_and_in_order(
    running: Running,
) -> None:
    kernel_end, peer, _ = running
    burst = _packets(3 * BATCH, seed=1)
    sender = _sent_meanwhile(kernel_end.send, burst)
    assert _receive(peer, len(burst)) == burst
    sender.join()


def test_a_burst_from_the_server_reaches_the_tun_whole_and_in_order(
    running: Running,
) -> None:
    kernel_end, peer, loop_address = running
    burst = _packets(3 * BATCH, seed=2)
    sender = _sent_meanwhile(lambda packet: peer.sendto(packet, loop_address), burst)
    assert _receive(kernel_end, len(burst)) == burst
    sender.join()
