"""One-way UDP traffic between lab hosts: a burst of datagrams out, whatever arrives collected.

Unlike the echo probes, nothing comes back over the link under test, so every packet on it in
the sending direction is one of these datagrams, in order: the n-th datagram is the n-th
packet a wire's schedule decides on. Used by the loss properties and the loss benchmarks.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Sequence

from vpnsim.net import namespace
from vpnsim.net.buffers import enlarge

SO_NO_CHECK = 11  # Linux: send IPv4 UDP without a checksum


class Sink:
    """A UDP socket bound in namespace `ns`, keeping every datagram it receives."""

    def __init__(self, ns: str, address: str, port: int) -> None:
        self._sock = namespace.socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
        enlarge(self._sock, 8 << 20)  # the test process may be busy while a burst arrives
        self._sock.bind((address, port))
        self._sock.setblocking(False)
        self.address, self.port = address, port

    def __repr__(self) -> str:
        return f"Sink({self.address}:{self.port})"

    def drain(self) -> list[bytes]:
        """What has arrived so far, without waiting (stale datagrams before a new test)."""
        found = []
        with contextlib.suppress(BlockingIOError):
            while True:
                found.append(self._sock.recv(65535))
        return found

    def collect(self, expected: int, timeout: float, quiet: float = 0.005) -> list[bytes]:
        """Datagrams until `expected` have come (or `timeout`), then any more within `quiet`
        seconds: extra copies or invented datagrams are caught, not left for the next test."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            select.select([self._sock], [], [], max(0.0, deadline - time.monotonic()))
            got += self.drain()
        end = time.monotonic() + quiet
        while time.monotonic() < end:
            select.select([self._sock], [], [], max(0.0, end - time.monotonic()))
            got += self.drain()
        return got

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source:
    """A UDP socket in namespace `ns` sending to (dst, port); optionally without checksums."""

    def __init__(self, ns: str, dst: str, port: int, *, checksum: bool = True) -> None:
        self._sock = namespace.socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 0 if checksum else 1)
        enlarge(self._sock, 8 << 20, receive=False, send=True)
        self._sock.connect((dst, port))

    def send(self, datagrams: Sequence[bytes], gap: float = 0.0) -> None:
        """Send in order, `gap` seconds apart."""
        for datagram in datagrams:
            self._sock.send(datagram)
            if gap:
                time.sleep(gap)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
