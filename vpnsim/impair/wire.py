"""The wire process: `python -m vpnsim.impair.wire --host-port P --net-port W --link HOST:IF`.

It runs in a lab's fabric namespace between the host's veth end (P, taken off the bridge) and
a veth (W) whose peer is on the bridge in P's place, moving every frame between the two with
AF_PACKET sockets and applying a `WireCore`. It is controlled over a Unix socket in the
abstract namespace (`control.address(link)`), which exists only inside the fabric's network
namespace and disappears with it. Standard library only: it starts in ~30 ms.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import sys
import time
from typing import Any

from vpnsim.impair.control import address
from vpnsim.impair.core import WireCore
from vpnsim.impair.spec import Direction, Impairment, ImpairmentError

ETH_P_ALL = 0x0003
PACKET_IGNORE_OUTGOING = 23
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # not in Python's socket module; root may exceed rmem_max
SOL_PACKET = 263
SOCKET_BUFFER = 8 << 20
BATCH = 256  # frames read from one socket before looking at the other
SNAPLEN = 65536


def packet_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # not our own sends
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Wire:
    def __init__(self, host_port: str, net_port: str, link: str, paused: bool) -> None:
        self.link = link
        self.core = WireCore()
        self.paused = paused  # until the first `set`: frames are left to the bridge
        self.sockets: dict[Direction, socket.socket] = {
            "out": packet_socket(host_port),  # frames the host sends come in here...
            "in": packet_socket(net_port),  # ...and the network's frames for the host here
        }
        self.send_to: dict[Direction, socket.socket] = {
            "out": self.sockets["in"],
            "in": self.sockets["out"],
        }
        self.control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.control.bind(address(link))
        self.control.listen(8)
        self.clients: dict[socket.socket, bytearray] = {}

    def run(self) -> None:
        by_fd = {sock.fileno(): d for d, sock in self.sockets.items()}
        while True:
            deadline = self.core.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select(
                [*self.sockets.values(), self.control, *self.clients], [], [], timeout
            )
            for sock in readable:
                if sock.fileno() in by_fd:
                    self._forward(by_fd[sock.fileno()], sock)
                elif sock is self.control:
                    client, _ = self.control.accept()
                    self.clients[client] = bytearray()
                else:
                    self._serve(sock)
            self._send(self.core.due(time.monotonic()))

    def _forward(self, direction: Direction, sock: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                frame = sock.recv(SNAPLEN)
            except BlockingIOError:
                return
            if not self.paused:
                self._send(self.core.receive(direction, frame, time.monotonic()))

    def _send(self, frames: list[tuple[Direction, bytes]]) -> None:
        for direction, frame in frames:
            try:
                self.send_to[direction].send(frame)
            except OSError as exc:  # a full queue or a link gone down: the frame is lost
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.ENETDOWN, errno.ENXIO):
                    raise
                self.core.counters[direction].send_errors += 1

    def _serve(self, client: socket.socket) -> None:
        data = client.recv(65536)
        if not data:
            client.close()
            del self.clients[client]
            return
        buffer = self.clients[client]
        buffer += data
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("expected a JSON object")
                reply = self._handle(request)
            except ValueError as exc:  # a bad request never takes the link down
                reply = {"ok": False, "error": f"bad request: {exc}"}
            client.setblocking(True)
            client.sendall(json.dumps(reply).encode() + b"\n")

    def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "set":
            try:
                impairment = Impairment.from_dict(request["impairment"])
            except (ImpairmentError, TypeError) as exc:
                return {"ok": False, "error": str(exc)}
            self.core.set(impairment)
            self.paused = False
            return {"ok": True}
        if op == "stats":
            return {"ok": True, "pid": os.getpid(), "paused": self.paused, **self.core.stats()}
        if op == "log":
            return {"ok": True, "log": [entry.to_dict() for entry in self.core.log]}
        return {"ok": False, "error": f"unknown request {op!r}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.impair.wire")
    parser.add_argument("--host-port", required=True, help="the host's veth end")
    parser.add_argument("--net-port", required=True, help="the veth towards the bridge")
    parser.add_argument("--link", required=True, help="HOST:IFNAME, names the control socket")
    parser.add_argument("--paused", action="store_true", help="forward nothing until set")
    args = parser.parse_args(argv)
    wire = Wire(args.host_port, args.net_port, args.link, args.paused)
    print(f"wire {args.link}: {args.host_port} <-> {args.net_port}", file=sys.stderr, flush=True)
    wire.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
