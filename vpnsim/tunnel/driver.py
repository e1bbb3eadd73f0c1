"""The thin IO side of the reference tunnel: a `select` loop over a TUN and a UDP socket.

The loop only moves bytes: it reads what is ready, asks the sans-IO endpoint what to do (with
the time passed in), and does it. The device and the transport are small protocols, so unit
tests drive the same code with the in-memory doubles of `vpnsim.testing`.
"""

from __future__ import annotations

import select
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from vpnsim.errors import PacketError
from vpnsim.net.buffers import enlarge
from vpnsim.tunnel.protocol import Address, Deliver, Endpoint, OneToOneEndpoint, Send

# Packets handled per readiness event before looking at the other side again: bursts (a
# fragmented 64 KiB datagram is 45 packets) flow without starving the opposite direction.
BATCH = 64
# `run` reads on past the packet select announced only after a large one (a fragment, a TCP
# segment of a bulk transfer: more are likely queued). After a small one (a ping, an ACK) it
# goes back to select: the read that would only find the queue empty costs a system call and
# an exception, ~16 us of CPU per packet here, and a ping's round trip crosses four of them.
BURST_HINT = 1000
# `--gso`'s loop reads on after small packets too while the TUN wakes it this often (a flood).
STREAMING = 0.001
# How often idle clients are expired when no traffic wakes the loop.
TICK = 1.0
# How often `run` lets the endpoint's timers act while traffic flows (AEAD handshake retries
# and rekeys are counted in seconds).
TIMER_INTERVAL = 0.01
SOCKET_BUFFER = 4 * 1024 * 1024


class TunDevice(Protocol):
    """What the driver needs of a TUN device (see `vpnsim.tunnel.tun.TunFile`)."""

    name: str

    def fileno(self) -> int: ...
    def read(self) -> bytes | None: ...
    def write(self, packet: bytes) -> None: ...


class DatagramTransport(Protocol):
    """What the driver needs of the outer transport (see `UdpTransport`)."""

    def fileno(self) -> int: ...
    def recvfrom(self) -> tuple[bytes, Address] | None: ...
    def sendto(self, data: bytes, addr: Address) -> None: ...


@runtime_checkable
class RunTransport(DatagramTransport, Protocol):
    """A transport that sends and receives runs of datagrams per system call (`tunnel.gso`)."""

    def send_runs(self, sends: Sequence[tuple[bytes, Address]]) -> list[OSError]: ...
    def receive_run(self) -> tuple[list[bytes], Address] | None: ...


class UdpTransport:
    """A non-blocking UDP socket with buffers sized for bursts of fragments."""

    def __init__(self, bind: Address) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        enlarge(self.sock, SOCKET_BUFFER, send=True)
        self.sock.bind(bind)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def recvfrom(self) -> tuple[bytes, Address] | None:
        try:
            return self.sock.recvfrom(65535)  # AF_INET: the address is (host, port)
        except BlockingIOError:
            return None

    def sendto(self, data: bytes, addr: Address) -> None:
        self.sock.sendto(data, addr)

    def close(self) -> None:
        self.sock.close()


class Driver:
    """Runs one endpoint over one TUN device and one transport."""

    def __init__(
        self,
        endpoint: Endpoint,
        tun: TunDevice,
        transport: DatagramTransport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.tun = tun
        self.transport = transport
        self.clock = clock
        # IO failures the loop survived, by kind: a tunnel keeps running through them.
        self.errors: Counter[str] = Counter()

    def tun_readable(self) -> int:
        """Forward what the TUN has (up to BATCH packets); returns how many were read."""
        count = 0
        while count < BATCH and (packet := self.tun.read()) is not None:
            count += 1
            self._send(self.endpoint.packet_from_tun(packet, self.clock()))
        return count

    def transport_readable(self) -> int:
        """Deliver what the transport has (up to BATCH datagrams); returns how many."""
        count = 0
        while count < BATCH and (received := self.transport.recvfrom()) is not None:
            count += 1
            data, addr = received
            self._deliver(self.endpoint.datagram_received(data, addr, self.clock()))
        return count

    def timers(self) -> None:
        """Let the endpoint expire what is old, and send what its timers want (AEAD mode)."""
        if due := self.endpoint.expire(self.clock()):
            self._send(due)

    def run(self) -> None:
        """The select loop, until a signal handler raises out of it.

        `step` spelled out as one compact loop, with what it touches bound to locals and the
        endpoint's timers looked at every TIMER_INTERVAL rather than at every wake-up: each
        wake-up runs on cold caches (the process slept in select), so the less code and the
        fewer objects a packet meets, the sooner it is on its way. A one-to-one endpoint
        (plain mode) is asked only where a packet goes, with no action objects."""
        if isinstance(self.transport, RunTransport):
            return self._run_in_runs(self.transport)
        if isinstance(self.endpoint, OneToOneEndpoint):
            return self._run_one_to_one(self.endpoint)
        endpoint, clock = self.endpoint, self.clock
        from_tun, from_transport = endpoint.packet_from_tun, endpoint.datagram_received
        tun_read, recvfrom = self.tun.read, self.transport.recvfrom
        send, deliver = self._send, self._deliver
        tun_fd, transport_fd = self.tun.fileno(), self.transport.fileno()
        fds = [tun_fd, transport_fd]
        now, next_timers = clock(), 0.0
        while True:
            if now >= next_timers:
                if due := endpoint.expire(now):
                    send(due)
                next_timers = now + TIMER_INTERVAL
            readable = select.select(fds, [], [], TICK)[0]
            now = clock()
            if tun_fd in readable:
                for _ in range(BATCH):
                    packet = tun_read()
                    if packet is None:
                        break
                    send(from_tun(packet, now))
                    if len(packet) < BURST_HINT:
                        break
            if transport_fd in readable:
                for _ in range(BATCH):
                    received = recvfrom()
                    if received is None:
                        break
                    deliver(from_transport(received[0], received[1], now))
                    if len(received[0]) < BURST_HINT:
                        break

    def _run_in_runs(self, transport: RunTransport) -> None:
        """`run` over a transport of runs (`--gso`, plain or AEAD): what a TUN burst makes
        leaves in as few system calls as the kernel takes, and each datagram of a run
        received is given to the endpoint alone."""
        endpoint, clock, errors = self.endpoint, self.clock, self.errors
        from_tun, from_transport = endpoint.packet_from_tun, endpoint.datagram_received
        tun_read, receive_run = self.tun.read, transport.receive_run
        send, deliver, send_runs = self._send, self._deliver, transport.send_runs
        tun_fd, transport_fd = self.tun.fileno(), transport.fileno()
        fds = [tun_fd, transport_fd]
        now, next_timers, last_tun = clock(), 0.0, 0.0
        while True:
            if now >= next_timers:
                if due := endpoint.expire(now):
                    send(due)
                next_timers = now + TIMER_INTERVAL
            readable = select.select(fds, [], [], TICK)[0]
            now = clock()
            if tun_fd in readable:
                # While packets stream in (the TUN woke us within STREAMING), read on to the
                # end of the burst, small packets too: a run of them is one call (UDP at 64
                # bytes: 43 -> 68 kpps). Otherwise a small packet is taken alone, as in `run`.
                read_on, last_tun = now - last_tun < STREAMING, now
                pending: list[Send] = []
                for _ in range(BATCH):
                    packet = tun_read()
                    if packet is None:
                        break
                    pending += from_tun(packet, now)
                    if len(packet) < BURST_HINT and not read_on:
                        break
                if len(pending) > 1:
                    for failed in send_runs(pending):  # unreachable peer, full buffer: count
                        errors[f"send: {failed.strerror or failed}"] += 1
                else:  # a lone packet (a ping): no run to make
                    send(pending)
            if transport_fd in readable:
                for _ in range(BATCH):
                    received = receive_run()
                    if received is None:
                        break
                    datagrams, addr = received
                    for data in datagrams:
                        deliver(from_transport(data, addr, now))
                    if len(datagrams) == 1 and len(datagrams[0]) < BURST_HINT:
                        break

    def _run_one_to_one(self, endpoint: OneToOneEndpoint) -> None:
        """`run` for a one-to-one endpoint: the same loop, a packet at a time, inline."""
        route, accept, clock = endpoint.route_from_tun, endpoint.accept, self.clock
        tun_read, tun_write = self.tun.read, self.tun.write
        recvfrom, sendto = self.transport.recvfrom, self.transport.sendto
        errors, stats = self.errors, endpoint.stats
        tun_fd, transport_fd = self.tun.fileno(), self.transport.fileno()
        fds = [tun_fd, transport_fd]
        now, next_timers = clock(), 0.0
        while True:
            if now >= next_timers:
                endpoint.expire(now)
                next_timers = now + TICK
            readable = select.select(fds, [], [], TICK)[0]
            now = clock()
            if tun_fd in readable:
                for _ in range(BATCH):
                    packet = tun_read()
                    if packet is None:
                        break
                    peer = route(packet, now)
                    if peer is not None:
                        try:
                            sendto(packet, peer)
                        except OSError as exc:  # unreachable peer, full buffer: count, go on
                            errors[f"send: {exc.strerror or exc}"] += 1
                    if len(packet) < BURST_HINT:
                        break
            if transport_fd in readable:
                for _ in range(BATCH):
                    received = recvfrom()
                    if received is None:
                        break
                    data = received[0]
                    if accept(data, received[1], now):
                        try:
                            tun_write(data)
                        except PacketError:  # the device's own check (offload)
                            stats.malformed += 1
                        except OSError as exc:  # the kernel refused the packet: count, go on
                            errors[f"tun write: {exc.strerror or exc}"] += 1
                    if len(data) < BURST_HINT:
                        break

    def run_until(self, done: Callable[[], bool], seconds: float, tick: float = 0.05) -> bool:
        """The loop with short waits (timers fire on time) until `done()` or `seconds` have
        passed; returns `done()`. An AEAD client runs its first handshake this way."""
        deadline = self.clock() + seconds
        while not done():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return False
            self.step(min(tick, remaining))
        return True

    def step(self, timeout: float) -> None:
        """Timers, then one wait of at most `timeout` and what became readable."""
        self.timers()  # first: an AEAD client starts its handshake before the first wait
        tun_fd, transport_fd = self.tun.fileno(), self.transport.fileno()
        readable, _, _ = select.select([tun_fd, transport_fd], [], [], timeout)
        if tun_fd in readable:
            self.tun_readable()
        if transport_fd in readable:
            self.transport_readable()

    def _send(self, actions: Sequence[Send]) -> None:
        for datagram, addr in actions:
            try:
                self.transport.sendto(datagram, addr)
            except OSError as exc:  # unreachable peer, full buffer: drop, count, go on
                self.errors[f"send: {exc.strerror or exc}"] += 1

    def _deliver(self, actions: Sequence[Send | Deliver]) -> None:
        for action in actions:
            if isinstance(action, Send):  # an AEAD handshake answer
                self._send((action,))
                continue
            try:
                self.tun.write(action.packet)
            except PacketError:  # the device's own check (offload: a bad vnet header)
                self.endpoint.stats.malformed += 1
            except OSError as exc:  # the kernel refused the packet: drop, count, go on
                self.errors[f"tun write: {exc.strerror or exc}"] += 1
