"""What every scenario check shares: its `Outcome`, the `CheckContext` it looks at, and how a
payload is sent. Apart from `checks` so that the modules of further check types (tlschecks)
build on it without importing the dispatcher that imports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpnsim.proc import Program
from vpnsim.traffic.probes import Probes

if TYPE_CHECKING:
    from vpnsim.topology import Lab
    from vpnsim.vpn import RunningTunnel


@dataclass(frozen=True)
class Outcome:
    passed: bool
    expected: str
    seen: str


@dataclass
class CheckContext:
    """What a check can look at: the lab, its tunnel (once started), its programs by name,
    and what a command's placeholders stand for."""

    lab: Lab
    probes: Probes
    tunnel: RunningTunnel | None
    programs: dict[str, Program]
    placeholders: dict[str, str] = field(default_factory=dict)

    def program(self, name: str) -> Program:
        if self.tunnel is not None and name in ("client", "server"):
            return self.tunnel.client if name == "client" else self.tunnel.server
        return self.programs[name]


def payload(size: int) -> bytes:
    """Every byte value in turn: a shifted or truncated echo never compares equal."""
    return bytes(i % 251 for i in range(size))


def send(
    ctx: CheckContext, proto: str, src: str, dst: str, data: bytes, timeout: float | None
) -> bytes:
    if proto == "udp":
        return ctx.probes.udp(src, dst, data, timeout)
    if proto == "tcp":
        return ctx.probes.tcp(src, dst, data, timeout)
    return ctx.probes.ping(src, dst, data, timeout).payload
