"""What the grader watches while a submission runs: the outer and inner links, captured from
the start, cut into per-task pcaps; and each host's addresses, routes and forwarding."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from vpnsim.net.rtnl import NetlinkFailure
from vpnsim.net.sysctl import SysctlError, get_sysctl
from vpnsim.topology import Lab
from vpnsim.traffic.capture import Capture, Frame, write_pcap

# (host, interface): U's outer link, the server's outer and inner links, V's link.
LINKS = (("U", "eth0"), ("server", "eth0"), ("server", "eth1"), ("V", "eth0"))
KEEP = 20_000  # frames per link: a flood cannot eat the grader's memory
SETTLE = 0.3  # seconds a frame may take from the wire into a capture's list


class Observation:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.captures = {
            f"{host}-{ifname}": Capture(lab.ns(host), ifname, keep=KEEP) for host, ifname in LINKS
        }

    def frames(self, link: str, since: float) -> list[Frame]:
        return [f for f in list(self.captures[link].frames) if f.time >= since]

    def wait_for(
        self, link: str, since: float, found: Callable[[list[Frame]], bool], timeout: float = SETTLE
    ) -> list[Frame]:
        """The link's frames since `since`, once `found` says they hold what is looked for
        (or after `timeout`): a frame on the wire reaches the capture a moment later."""
        deadline = time.monotonic() + timeout
        while True:
            frames = self.frames(link, since)
            if found(frames) or time.monotonic() > deadline:
                return frames
            time.sleep(0.01)

    def save(self, folder: Path, since: float, until: float) -> list[Path]:
        """Each link's frames in [since, until] as `folder/<host>-<if>.pcap`."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for link, capture in self.captures.items():
            frames = [f for f in list(capture.frames) if since <= f.time <= until]
            path = folder / f"{link}.pcap"
            write_pcap(path, frames, capture.linktype)
            written.append(path)
        return written

    def stop(self) -> None:
        for capture in self.captures.values():
            capture.stop()


def host_state(lab: Lab, hosts: tuple[str, ...] = ("U", "server", "V")) -> list[str]:
    """Each host's interfaces (with addresses, state, TUN/TAP), routes and ip_forward."""
    lines = []
    for host in hosts:
        lines.append(f"[{host}]")
        try:
            rtnl = lab.rtnl(host)
            for link in rtnl.links():
                kind = link.tun_mode or link.kind or "-"
                state = "UP" if link.up else "DOWN"
                addresses = " ".join(link.addresses) or "no address"
                lines.append(f"  link {link.name} ({kind}, {state}, mtu {link.mtu}): {addresses}")
            for route in rtnl.routes():
                via = f" via {route.gateway}" if route.gateway else ""
                dev = f" dev {route.dev}" if route.dev else ""
                lines.append(f"  route {route.dst}{via}{dev}")
        except NetlinkFailure as exc:
            lines.append(f"  cannot read: {exc}")
        with contextlib.suppress(SysctlError):
            forward = get_sysctl(lab.ns(host), "net.ipv4.ip_forward")
            lines.append(f"  net.ipv4.ip_forward = {forward}")
    return lines
