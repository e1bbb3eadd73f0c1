"""The wire process: `python -m vpnsim.impair.wire --host-port P --net-port W --link HOST:IF`.

It runs in a lab's fabric namespace between the host's veth end (P, taken off the bridge) and
a veth (W) whose peer is on the bridge in P's place, moving every frame between the two with
AF_PACKET sockets and applying a `WireCore`. It is controlled over a Unix socket in the
abstract namespace (`control.address(link)`), which exists only inside the fabric's network
namespace and disappears with it. Standard library only: it starts in ~30 ms.

Forwarding never waits on a control client: replies go out without blocking, as the client's
socket takes them; a client's next request is answered (and its socket read) only once its last
reply has gone, so one that does not read its replies costs one reply's memory, nothing more;
a client whose pending input or output exceeds `MAX_PENDING`, or whose socket fails, is closed.
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
from typing import TYPE_CHECKING, Any

from vpnsim.impair.control import address
from vpnsim.impair.core import WireCore
from vpnsim.impair.spec import Direction, Impairment, ImpairmentError
from vpnsim.net.buffers import enlarge

if TYPE_CHECKING:
    from collections.abc import Callable

ETH_P_ALL = 0x0003
PACKET_IGNORE_OUTGOING = 23
SOL_PACKET = 263
SOCKET_BUFFER = 8 << 20
BATCH = 256  # frames read from one socket before looking at the other
SNAPLEN = 65536
MAX_PENDING = 64 << 20  # bytes of a control client's request or replies kept before closing it


def packet_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    enlarge(sock, SOCKET_BUFFER, send=True)  # the wire runs as root: past rmem_max
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # not our own sends
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Control:
    """The wire's control clients, served without ever blocking: newline-delimited JSON
    requests in, one reply each out, through per-client buffers the select loop drains."""

    def __init__(
        self,
        listener: socket.socket,
        handle: Callable[[dict[str, Any]], dict[str, Any]],
        limit: int = MAX_PENDING,
    ) -> None:
        self.listener = listener
        listener.setblocking(False)  # accept() never waits for a client that has gone
        self._handle = handle
        self.limit = limit
        self.inbox: dict[socket.socket, bytearray] = {}  # requests read, not yet answered
        self.outbox: dict[socket.socket, bytearray] = {}  # replies not yet sent

    def readers(self) -> list[socket.socket]:
        """The listener, and the clients with no reply waiting to go (the others are not
        read: their requests wait in the kernel until they take their replies)."""
        return [self.listener, *(client for client, out in self.outbox.items() if not out)]

    def writers(self) -> list[socket.socket]:
        """The clients with a reply waiting to go."""
        return [client for client, out in self.outbox.items() if out]

    def readable(self, sock: socket.socket) -> None:
        if sock is self.listener:
            try:
                client, _ = self.listener.accept()
            except OSError:  # gone before it was accepted
                return
            client.setblocking(False)
            self.inbox[client], self.outbox[client] = bytearray(), bytearray()
            return
        if sock not in self.inbox:  # closed earlier in this round
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self.close(sock)
            return
        if not data:
            self.close(sock)
            return
        self.inbox[sock] += data
        self._answer(sock)
        if sock in self.inbox and len(self.inbox[sock]) > self.limit:
            self.close(sock)  # a request that never ends

    def writable(self, sock: socket.socket) -> None:
        if sock in self.outbox:
            self._flush(sock)
        if sock in self.outbox:  # not closed by a failed send
            self._answer(sock)  # requests that came while the last reply was going

    def close(self, client: socket.socket) -> None:
        del self.inbox[client], self.outbox[client]
        client.close()

    def _answer(self, client: socket.socket) -> None:
        """Answer the client's complete requests, one at a time while each reply goes at once."""
        inbox, outbox = self.inbox[client], self.outbox[client]
        while not outbox and (end := inbox.find(b"\n")) >= 0:
            line = bytes(inbox[:end])
            del inbox[: end + 1]
            outbox += self._reply(line)
            if len(outbox) > self.limit:
                self.close(client)
                return
            self._flush(client)
            if client not in self.outbox:
                return

    def _reply(self, line: bytes) -> bytes:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
            reply = self._handle(request)
        except ValueError as exc:  # a bad request never takes the link down
            reply = {"ok": False, "error": f"bad request: {exc}"}
        return json.dumps(reply).encode() + b"\n"

    def _flush(self, client: socket.socket) -> None:
        """Send what the client's socket takes now; close the client if it fails."""
        outbox = self.outbox[client]
        try:
            sent = client.send(outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client went away (EPIPE, ECONNRESET)
            self.close(client)
            return
        del outbox[:sent]  # cheap: a bytearray drops its front without copying the rest


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
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address(link))
        listener.listen(8)
        self.control = Control(listener, self._handle)

    def run(self) -> None:
        by_fd = {sock.fileno(): d for d, sock in self.sockets.items()}
        while True:
            deadline = self.core.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, writable, _ = select.select(
                [*self.sockets.values(), *self.control.readers()],
                self.control.writers(),
                [],
                timeout,
            )
            for sock in readable:
                if sock.fileno() in by_fd:
                    self._forward(by_fd[sock.fileno()], sock)
                else:
                    self.control.readable(sock)
            for sock in writable:
                self.control.writable(sock)
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
