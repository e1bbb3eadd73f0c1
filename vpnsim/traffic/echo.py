"""An echo service (UDP and TCP) run as a program on a lab host: `python -m vpnsim.traffic.echo`.

UDP: each datagram is sent back to its sender unchanged. TCP: each connection gets back every
byte it sends, until it closes its side. Runs until SIGTERM.

IPv4 and IPv6 alike: one dual-stack socket per protocol ("::" with IPV6_V6ONLY off; IPv4
peers appear as ::ffff:a.b.c.d), so a single listen() makes both families ready at once.
Where the kernel has no IPv6 at all, IPv4 sockets on 0.0.0.0 instead.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import signal
import socket
import sys
import threading
from collections.abc import Sequence

ECHO_PORT = 7
MAX_DATAGRAM = 65535


def _echo_tcp(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _bound(kind: socket.SocketKind, port: int) -> socket.socket:
    """A socket of `kind` on `port` for both families (IPv4 only without kernel IPv6)."""
    try:
        sock = socket.socket(socket.AF_INET6, kind)
    except OSError:  # EAFNOSUPPORT: IPv6 disabled at boot
        sock = socket.socket(socket.AF_INET, kind)
        anywhere = "0.0.0.0"
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        anywhere = "::"
    if kind == socket.SOCK_DGRAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    else:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((anywhere, port))
    return sock


def serve(port: int = ECHO_PORT) -> None:
    udp = _bound(socket.SOCK_DGRAM, port)
    tcp = _bound(socket.SOCK_STREAM, port)  # listens last: readiness is "TCP port listening"
    tcp.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(udp, selectors.EVENT_READ)
    selector.register(tcp, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is udp:
                data, addr = udp.recvfrom(MAX_DATAGRAM)
                with contextlib.suppress(OSError):  # the sender may be gone already
                    udp.sendto(data, addr)
            else:
                conn, _ = tcp.accept()
                threading.Thread(target=_echo_tcp, args=(conn,), daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.traffic.echo")
    parser.add_argument("--port", type=int, default=ECHO_PORT)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
