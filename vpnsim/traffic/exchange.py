"""UDP and TCP exchanges with an echo service: what comes back must equal what was sent.

Over IPv4 or IPv6, as the destination address says.
"""

from __future__ import annotations

import errno
import select
import socket
import time

from vpnsim.net import namespace
from vpnsim.traffic.errors import NoRoute, ProbeFailed
from vpnsim.traffic.icmp import SocketOpener, family_of

MAX_UDP_PAYLOAD = 65507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
# The IPv6 payload length excludes the 40-byte header: 65535 - 8 (UDP header).
MAX_UDP6_PAYLOAD = 65527


def _endpoint(dst: str, port: int) -> str:
    """'10.9.0.5:7', '[fd00:60::5]:7'."""
    return f"[{dst}]:{port}" if family_of(dst) == socket.AF_INET6 else f"{dst}:{port}"


def _send_failed(what: str, exc: OSError) -> ProbeFailed:
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return NoRoute(f"{what}: no route ({exc.strerror})")
    return ProbeFailed(f"{what}: {exc.strerror}")


def udp_exchange(
    ns: str,
    dst: str,
    port: int,
    payload: bytes,
    timeout: float = 2.0,
    *,
    src: str = "",
    opener: SocketOpener = namespace.socket_in,
) -> bytes:
    """Send one datagram from namespace `ns` and return the first datagram that comes back
    from `dst:port`. Raises ProbeFailed if none comes within `timeout`.

    A new socket (a new port) each time: a late reply to an earlier exchange cannot be taken
    for this one's. `opener` makes it (a `namespace.Handles`' is cheaper)."""
    family = family_of(dst)
    largest = MAX_UDP6_PAYLOAD if family == socket.AF_INET6 else MAX_UDP_PAYLOAD
    if not 0 < len(payload) <= largest:
        raise ValueError(f"UDP payload of {len(payload)} bytes: 1 to {largest}")
    what = f"UDP {len(payload)} bytes from {src or ns} to {_endpoint(dst, port)}"
    with opener(ns, family, socket.SOCK_DGRAM, 0) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        # connect(): only the peer's datagrams are received, and ICMP errors are reported.
        try:
            sock.connect((dst, port))
            sock.send(payload)
        except OSError as exc:
            raise _send_failed(what, exc) from None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            try:
                return sock.recv(65535)
            except ConnectionRefusedError:
                raise ProbeFailed(f"{what}: port unreachable (no echo service?)") from None
            except OSError as exc:
                raise _send_failed(what, exc) from None
    raise ProbeFailed(f"{what}: no reply within {timeout:g} s")


def tcp_exchange(
    ns: str, dst: str, port: int, payload: bytes, timeout: float = 5.0, *, src: str = ""
) -> bytes:
    """Connect from namespace `ns`, send `payload` while reading the echo, close our side once
    all is sent, and return every byte received until the peer closes."""
    what = f"TCP {len(payload)} bytes from {src or ns} to {_endpoint(dst, port)}"
    received = bytearray()
    with namespace.socket_in(ns, family_of(dst), socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((dst, port))
        except TimeoutError:
            raise ProbeFailed(f"{what}: no connection within {timeout:g} s") from None
        except ConnectionRefusedError:
            raise ProbeFailed(f"{what}: connection refused (no echo service?)") from None
        except OSError as exc:
            raise _send_failed(what, exc) from None
        sock.setblocking(False)
        # Interleaved: an echo of more than the socket buffers would deadlock a send-all-first.
        pending = memoryview(payload)
        if not pending:
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            writers = [sock] if pending else []
            readable, writable, _ = select.select([sock], writers, [], left)
            if writable:
                pending = pending[sock.send(pending[:65536]) :]
                if not pending:
                    sock.shutdown(socket.SHUT_WR)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except OSError as exc:
                    raise ProbeFailed(
                        f"{what}: {exc.strerror} after {len(received)} bytes"
                    ) from None
                if not chunk:
                    return bytes(received)
                received += chunk
    raise ProbeFailed(f"{what}: {len(received)} bytes back after {timeout:g} s, then nothing")


class TcpSession:
    """A TCP connection kept open across events (e.g. a tunnel restart, the lab's task 6).

    Sends go out at once; `receive` waits for an exact number of bytes, so bytes typed while
    the tunnel was down must arrive, by TCP retransmission, once it is back.
    """

    def __init__(
        self, ns: str, dst: str, port: int, timeout: float = 5.0, *, src: str = ""
    ) -> None:
        self.what = f"TCP session from {src or ns} to {_endpoint(dst, port)}"
        self.sock = namespace.socket_in(ns, family_of(dst), socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect((dst, port))
        except OSError as exc:
            self.sock.close()
            raise _send_failed(self.what, exc) from None

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ProbeFailed(f"{self.what}: send failed: {exc.strerror or exc}") from None

    def receive(self, size: int, timeout: float = 5.0) -> bytes:
        """Exactly `size` bytes; ProbeFailed (with what did come) if they do not arrive."""
        received = bytearray()
        deadline = time.monotonic() + timeout
        while len(received) < size and (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(size - len(received))
            except TimeoutError:
                break
            except OSError as exc:
                raise ProbeFailed(f"{self.what}: {exc.strerror or exc}") from None
            if not chunk:
                raise ProbeFailed(f"{self.what}: closed by the peer after {len(received)} bytes")
            received += chunk
        if len(received) < size:
            raise ProbeFailed(
                f"{self.what}: {len(received)} of {size} bytes within {timeout:g} s: "
                f"{bytes(received[:60])!r}"
            )
        return bytes(received)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TcpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
