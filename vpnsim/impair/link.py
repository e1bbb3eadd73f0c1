"""Impairing a link of a running lab: put a wire in, set it, read it, take it out.

A link is named as `vpnsim lab status` prints it, HOST:IFNAME. In the fabric namespace that
host interface's veth end (pN) leaves its bridge; a new veth pair takes its place, wN for the
wire and xN on the bridge, and a wire process moves frames between pN and wN:

    host eth0 <-> pN  [wire process]  wN <-> xN <-> bridge <-> the other hosts

The host sees no change (same interface, MAC and addresses). Checksum and segmentation
offloads are turned off on the host's interface and on xN, the two places frames bound for
the wire are sent from, so the wire sees real wire-sized, checksummed frames.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpnsim import proc
from vpnsim.errors import HarnessError
from vpnsim.impair.control import WireClient, WireGone
from vpnsim.impair.core import LogEntry
from vpnsim.impair.spec import DIRECTIONS, Impairment
from vpnsim.net.ethtool import set_offloads

if TYPE_CHECKING:
    from collections.abc import Callable

    from vpnsim.topology import Lab

READY_TIMEOUT = 5.0
POLL = 0.002


def parse_link(lab: Lab, text: str) -> tuple[str, str]:
    """`U:eth0` -> ("U", "eth0"), checked against the lab's scenario."""
    links = [f"{h.name}:{i.name}" for h in lab.scenario.hosts for i in h.interfaces]
    host, _, ifname = text.partition(":")
    if text not in links:
        raise HarnessError(
            f"link {text!r}: expected HOST:IFNAME as `vpnsim lab status` prints it; "
            f"links of lab {lab.name}: {', '.join(links)}"
        )
    return host, ifname


def client_outer_link(lab: Lab) -> str:
    """The tunnel client's link toward the server's outer address (U:eth0 in the SEED lab)."""
    import ipaddress

    spec = lab.scenario.tunnel
    if spec is None:
        raise HarnessError(f"lab {lab.name} has no tunnel")
    server = ipaddress.ip_address(spec.server_address)
    client = lab.scenario.host(spec.client)
    for iface in client.interfaces:
        if server in ipaddress.ip_interface(iface.address).network:
            return f"{client.name}:{iface.name}"
    return f"{client.name}:{client.interfaces[0].name}"  # the server is routed to


@dataclass(frozen=True)
class WireStats:
    """A wire's counters since its impairment was set, per direction ("out": sent by the host)."""

    impairment: Impairment
    queued: int
    out: dict[str, int]
    into: dict[str, int]  # "in" is a keyword
    pid: int

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> WireStats:
        return cls(
            Impairment.from_dict(reply["impairment"]), reply["queued"], reply["out"],
            reply["in"], reply["pid"],
        )  # fmt: skip

    def direction(self, name: str) -> dict[str, int]:
        return self.out if name == "out" else self.into

    def lines(self) -> list[str]:
        lines = [self.impairment.describe()]
        for name in DIRECTIONS:
            counts = self.direction(name)
            shown = ", ".join(f"{key} {value}" for key, value in counts.items() if value)
            lines.append(f"{name:>3}: {shown or 'nothing yet'}")
        if self.queued:
            lines.append(f"queued: {self.queued}")
        return lines


class ImpairedLink:
    """The wire on one link of a lab. Get one with `impair()` or `wire_on()`."""

    def __init__(self, lab: Lab, link: str) -> None:
        self.lab = lab
        self.link = link
        self.host, self.ifname = parse_link(lab, link)
        self._client: WireClient | None = None

    def __repr__(self) -> str:
        return f"ImpairedLink({self.lab.name!r}, {self.link!r})"

    def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        if self._client is None:
            self._client = WireClient(self.lab.fabric_ns, self.link)
        return self._client.request(op, **fields)

    def set(self, impairment: Impairment) -> None:
        """Impair from now on: fresh schedules and counters (frames in flight still go)."""
        self._request("set", impairment=impairment.to_dict())

    def clear(self) -> None:
        """A clean wire: everything forwarded at once, nothing counted against a schedule."""
        self.set(Impairment())

    def stats(self) -> WireStats:
        return WireStats.from_reply(self._request("stats"))

    def log(self) -> list[LogEntry]:
        """Each impairable packet's fate since the impairment was set, oldest first."""
        return [LogEntry.from_dict(entry) for entry in self._request("log")["log"]]

    def wait_idle(self, timeout: float = 5.0) -> WireStats:
        """Wait until nothing is queued or held on the wire; returns the counters then."""
        stats = self._poll(lambda stats: stats.queued == 0, timeout)
        if stats.queued:
            raise HarnessError(f"wire {self.link}: {stats.queued} frames still queued")
        return stats

    def wait_seen(self, count: int, direction: str = "out", timeout: float = 2.0) -> int:
        """Wait until the wire has seen `count` impairable packets in `direction` since its
        impairment was set (or `timeout`: some were lost before reaching it); how many."""
        stats = self._poll(lambda stats: stats.direction(direction)["seen"] >= count, timeout)
        return stats.direction(direction)["seen"]

    def _poll(self, done: Callable[[WireStats], bool], timeout: float) -> WireStats:
        """The counters once `done` holds for them, or the last ones read at `timeout`."""
        deadline = time.monotonic() + timeout
        while not done(stats := self.stats()) and time.monotonic() <= deadline:
            time.sleep(POLL)
        return stats

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def remove(self) -> None:
        """Take the wire out: the host's veth end goes back on its bridge, offloads back on."""
        lab = self.lab
        state = _read_state(lab, self.link)
        with contextlib.suppress(WireGone):
            pid = self.stats().pid
            proc.kill_and_wait([pid])
        self.close()
        fabric = lab.rtnl("_fabric")
        if state is not None:
            fabric.set_link(state["port"], master=state["bridge"])
            with contextlib.suppress(HarnessError):
                fabric.delete_link(state["wire"])  # its peer on the bridge goes with it
            set_offloads(lab.ns(self.host), self.ifname, True, state["offloads"])
        _state_path(lab, self.link).unlink(missing_ok=True)


def _state_path(lab: Lab, link: str) -> Path:
    return lab.state_dir / "wires" / f"{link}.json"


def _read_state(lab: Lab, link: str) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(_state_path(lab, link).read_text())
    except FileNotFoundError:
        return None
    return state


def wire_on(lab: Lab, link: str) -> ImpairedLink | None:
    """The wire already on `link`, or None."""
    found = ImpairedLink(lab, link)
    try:
        found.stats()
    except WireGone:
        return None
    return found


def wired_links(lab: Lab) -> list[str]:
    """Links of `lab` with a wire installed."""
    folder = lab.state_dir / "wires"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def impair(lab: Lab, link: str, impairment: Impairment | None = None) -> ImpairedLink:
    """Set `impairment` (default: a clean wire) on `link`, putting a wire in first if needed."""
    wire = wire_on(lab, link) or _install(lab, link)
    wire.set(impairment or Impairment())
    return wire


def _install(lab: Lab, link: str) -> ImpairedLink:
    host, ifname = parse_link(lab, link)
    fabric = lab.rtnl("_fabric")
    port = next((found for found in fabric.links() if found.alias == link), None)
    if port is None or port.master is None:
        raise HarnessError(f"link {link}: its veth end is not on a bridge of lab {lab.name}")
    number = port.name[1:]
    wire_if, bridge_side = f"w{number}", f"x{number}"
    fabric.add_veth(wire_if, bridge_side, lab.fabric_ns)
    offloads = set_offloads(lab.ns(host), ifname, False)
    set_offloads(lab.fabric_ns, bridge_side, False)
    for name in (wire_if, bridge_side):
        fabric.set_link(name, mtu=port.mtu, ifalias=f"wire {link}")
    fabric.set_link(bridge_side, master=port.master)
    fabric.up(bridge_side)
    fabric.up(wire_if)
    state = {"port": port.name, "bridge": port.master, "wire": wire_if, "offloads": offloads}
    path = _state_path(lab, link)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    argv = [sys.executable, "-m", "vpnsim.impair.wire", "--host-port", port.name,
            "--net-port", wire_if, "--link", link, "--paused"]  # fmt: skip
    program = proc.start(
        "_fabric", lab.fabric_ns, argv, lab.log_dir, log_name=f"wire-{host}-{ifname}"
    )
    wire = ImpairedLink(lab, link)
    try:
        # Paused until set: the bridge still carries the host's frames, so none is lost or
        # doubled while the wire starts; then the host's end leaves the bridge.
        program.wait_ready(lambda: wire_on(lab, link) is not None, READY_TIMEOUT, "wire ready")
    except proc.ProgramFailed as exc:
        raise HarnessError(f"the wire on {link} did not start: {exc}") from None
    fabric.set_link(port.name, master=0)
    return wire
