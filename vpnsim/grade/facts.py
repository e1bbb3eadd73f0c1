"""Facts a diagnosis may ask of the running Tunneling lab (`trace.Facts`), read when asked:
a program may have died since the probe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyroute2.netlink.exceptions import NetlinkError

from vpnsim.grade.liveness import exit_reason
from vpnsim.grade.sides import crash_summary
from vpnsim.net.rtnl import NetlinkFailure
from vpnsim.net.sysctl import SysctlError, get_sysctl
from vpnsim.topology import Lab

if TYPE_CHECKING:
    from vpnsim.grade.probing import Probing


class LabFacts:
    """Facts read from the running lab when a diagnosis asks for them."""

    def __init__(self, tunnel: Probing) -> None:
        self.tunnel = tunnel
        self.client = tunnel.client.who
        self.server = tunnel.server.who

    def exited(self, role: str) -> str | None:
        return exit_reason(self.tunnel.client if role == "client" else self.tunnel.server)

    def tun_name(self, host: str) -> str | None:
        tun = self.tunnel.tun(host)
        return tun.name if tun else None

    def tun_ready(self, host: str) -> bool:
        tun = self.tunnel.tun(host)
        return tun is not None and tun.up and bool(tun.addresses)

    def route(self, host: str, dst: str) -> tuple[str, str | None, str | None] | None:
        try:
            rtnl = self.tunnel.lab.rtnl(host)
            names = {link.index: link.name for link in rtnl.links()}
            found = rtnl.raw.route("get", dst=dst)
        except (NetlinkError, NetlinkFailure):  # ENETUNREACH: no route
            return None
        if not found:
            return None
        msg = found[0]
        kind = {1: "unicast", 2: "local"}.get(msg["type"])
        if kind is None:  # unreachable, blackhole, prohibit: no way there
            return None
        return kind, names.get(msg.get("RTA_OIF")), msg.get("RTA_GATEWAY")

    def owner(self, host: str, address: str) -> str | None:
        try:
            links = self.tunnel.lab.rtnl(host).links()
        except NetlinkFailure:
            return None
        for link in links:
            if any(cidr.split("/")[0] == address for cidr in link.addresses):
                return link.name
        return None

    def forwarding(self, host: str) -> str:
        return _forwarding(self.tunnel.lab, host)

    def crashes(self, role: str) -> str:
        side = self.tunnel.client if role == "client" else self.tunnel.server
        stderr = side.program.stderr()
        if "Traceback" not in stderr:
            return ""
        return crash_summary(stderr.replace(f"{side.work}/", ""))

    def crash_count(self, role: str) -> int:
        side = self.tunnel.client if role == "client" else self.tunnel.server
        return side.program.stderr().count("Traceback (most recent call last):")


def _forwarding(lab: Lab, host: str) -> str:
    try:
        return get_sysctl(lab.ns(host), "net.ipv4.ip_forward")
    except SysctlError:
        return "?"
