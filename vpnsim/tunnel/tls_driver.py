"""The IO side of TLS mode: select loops over a TUN and TCP sockets, around the sans-IO
`TlsClientProtocol` / `TlsServerProtocol`. They only move bytes and pass `now` in."""

from __future__ import annotations

import selectors
import socket
import sys
import time
from collections import Counter

from vpnsim.tunnel.driver import BATCH, TICK, TunDevice
from vpnsim.tunnel.tls_protocol import TlsClientProtocol, TlsServerProtocol

RECV_SIZE = 65536
# A peer gone without a word (half-open) is found by TCP keepalive within about a minute.
KEEPALIVE = ((socket.TCP_KEEPIDLE, 30), (socket.TCP_KEEPINTVL, 5), (socket.TCP_KEEPCNT, 3))


def keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in KEEPALIVE:
        sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _send(sock: socket.socket, out: bytearray) -> int:
    """Send what the socket takes now; returns the count (0 when its buffer is full)."""
    try:
        return sock.send(out)
    except BlockingIOError:
        return 0


def _write_tun(tun: TunDevice, packets: list[bytes], errors: Counter[str]) -> None:
    for packet in packets:
        try:
            tun.write(packet)
        except OSError as exc:  # the kernel refused the packet: drop, count, go on
            errors[f"tun write: {exc.strerror or exc}"] += 1


class TlsServerDriver:
    """Accepts TCP connections on `listener` and runs them through `protocol`."""

    def __init__(self, protocol: TlsServerProtocol, tun: TunDevice, listener: socket.socket):
        self.protocol = protocol
        self.tun = tun
        self.listener = listener
        self.sockets: dict[int, socket.socket] = {}
        self.selector = selectors.DefaultSelector()
        self.errors: Counter[str] = Counter()
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ)
        self.selector.register(tun.fileno(), selectors.EVENT_READ)

    def run(self) -> None:
        while True:
            self.step(TICK)

    def step(self, timeout: float) -> None:
        for key, events in self.selector.select(timeout):
            if not events & selectors.EVENT_READ:
                continue  # writable: flushed below
            if key.fileobj is self.listener:
                self._accept()
            elif key.fileobj == self.tun.fileno():
                self._tun_readable()
            else:
                assert isinstance(key.fileobj, socket.socket)
                self._socket_readable(key.fileobj)
        self.protocol.expire(time.monotonic())
        self._flush_all()

    def _accept(self) -> None:
        try:
            sock, addr = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        keepalive(sock)
        fd = sock.fileno()
        self.sockets[fd] = sock
        self.selector.register(sock, selectors.EVENT_READ)
        self.protocol.connection_made(fd, f"{addr[0]}:{addr[1]}", time.monotonic())

    def _socket_readable(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:  # reset by the peer: the same as its end of stream, for us
            data = b""
        packets = self.protocol.data_received(sock.fileno(), data, time.monotonic())
        _write_tun(self.tun, packets, self.errors)

    def _tun_readable(self) -> None:
        count = 0
        while count < BATCH and (packet := self.tun.read()) is not None:
            count += 1
            self.protocol.packet_from_tun(packet, time.monotonic())

    def _flush_all(self) -> None:
        for line in self.protocol.log:
            print(f"server: {line}", file=sys.stderr, flush=True)
        self.protocol.log.clear()
        for fd, sock in list(self.sockets.items()):
            connection = self.protocol.connections.get(fd)
            if connection is not None and connection.channel.out:
                try:
                    connection.channel.sent(_send(sock, connection.channel.out))
                except OSError:
                    connection.channel.out.clear()  # the peer is gone: nothing will get there
            wanted = selectors.EVENT_READ
            if connection is not None and connection.channel.out:
                wanted |= selectors.EVENT_WRITE
            if self.protocol.finished(fd):
                self._drop(fd, sock)
            elif self.selector.get_key(sock).events != wanted:
                self.selector.modify(sock, wanted)

    def _drop(self, fd: int, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        sock.close()
        del self.sockets[fd]
        self.protocol.connection_lost(fd)


class TlsClientDriver:
    """Runs one client connection: first until it is open or refused, then with the TUN."""

    def __init__(self, protocol: TlsClientProtocol, sock: socket.socket) -> None:
        self.protocol = protocol
        self.sock = sock
        self.errors: Counter[str] = Counter()
        self.early: list[bytes] = []  # packets that came with the login's answer
        sock.setblocking(False)
        keepalive(sock)

    def establish(self, timeout: float) -> None:
        """Handshake and login; returns with `protocol.state` "open" or "closed"."""
        self.protocol.start()
        deadline = time.monotonic() + timeout
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        while self.protocol.state not in ("open", "closed"):
            self.flush()
            left = deadline - time.monotonic()
            if left <= 0:
                self.protocol.close()
                self.protocol.closed_kind = "timeout"
                self.protocol.closed_reason = f"no TLS session within {timeout:g} s"
                break
            if selector.select(left):
                self._readable(None)
        self.flush()
        selector.close()

    def run(self, tun: TunDevice) -> None:
        """Forward until the connection ends (then return) or a signal raises out of it."""
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(tun.fileno(), selectors.EVENT_READ)
        _write_tun(tun, self.early, self.errors)
        while self.protocol.state == "open":
            for key, events in selector.select(TICK):
                if not events & selectors.EVENT_READ:
                    continue  # writable: flushed below
                if key.fileobj is self.sock:
                    self._readable(tun)
                else:
                    count = 0
                    while count < BATCH and (packet := tun.read()) is not None:
                        count += 1
                        self.protocol.packet_from_tun(packet, time.monotonic())
            self.flush()
            writing = selectors.EVENT_WRITE if self.protocol.channel.out else 0
            wanted = selectors.EVENT_READ | writing
            if selector.get_key(self.sock).events != wanted:
                selector.modify(self.sock, wanted)
        self.flush()
        selector.close()

    def _readable(self, tun: TunDevice | None) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        packets = self.protocol.data_received(data, time.monotonic())
        if tun is None:
            self.early += packets
        else:
            _write_tun(tun, packets, self.errors)

    def flush(self) -> None:
        out = self.protocol.channel.out
        if out:
            try:
                self.protocol.channel.sent(_send(self.sock, out))
            except OSError:
                out.clear()
