"""Talking to a running wire: newline-delimited JSON over its abstract Unix socket.

The socket lives in the abstract namespace of the lab's fabric network namespace, so two labs'
wires never collide, nothing is left on disk, and only a process inside (or entering) that
namespace can reach it.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from vpnsim.errors import HarnessError


def address(link: str) -> str:
    """The abstract socket name of the wire on `link` (HOST:IFNAME)."""
    return f"\0vpnsim-wire:{link}"


class WireGone(HarnessError):
    """No wire answers on that link (never installed, or its process was killed)."""


class WireClient:
    def __init__(self, fabric_ns: str, link: str, timeout: float = 5.0) -> None:
        from vpnsim.net.namespace import socket_in

        self.link = link
        self._sock = socket_in(fabric_ns, socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(address(link))
        except (ConnectionRefusedError, FileNotFoundError):
            self._sock.close()
            raise WireGone(f"no wire on {link}") from None
        self._buffer = b""

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        try:
            self._sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            while b"\n" not in self._buffer:
                data = self._sock.recv(1 << 20)
                if not data:
                    raise WireGone(f"the wire on {self.link} went away")
                self._buffer += data
        except (BrokenPipeError, ConnectionResetError, TimeoutError) as exc:
            raise WireGone(f"the wire on {self.link} does not answer: {exc}") from None
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise HarnessError(f"wire {self.link}: {reply.get('error')}")
        return reply

    def close(self) -> None:
        self._sock.close()
