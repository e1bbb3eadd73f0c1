"""A small typed facade over pyroute2's route netlink, bound to one network namespace.

pyroute2 returns string-keyed netlink messages; callers here get dataclasses instead, and
every failure names the namespace and the object, so a harness fault says what went wrong.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from vpnsim.errors import HarnessError
from vpnsim.net.namespace import entered
from vpnsim.tunnel.tun import TunFile

ARPHRD_NONE = 65534  # what a TUN device reports as its link type
TUN_TYPE_TUN = 1
TUN_TYPE_TAP = 2
IFA_F_NODAD = 0x02  # linux/if_addr.h: no duplicate address detection (IPv6)


class NetlinkFailure(HarnessError):
    """A netlink request failed (the harness could not build what a lab asked for)."""


@dataclass(frozen=True)
class Counters:
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_dropped: int
    tx_dropped: int


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None  # "veth", "bridge", "tun" (TUN and TAP alike), None for lo/physical
    tun_mode: Literal["tun", "tap"] | None
    up: bool
    mtu: int
    mac: str | None
    alias: str | None
    master: int | None
    addresses: tuple[str, ...]  # "10.9.0.5/24"


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or "192.168.60.0/24"
    gateway: str | None
    dev: str | None


class Rtnl:
    """Route netlink of one namespace. Open with `Rtnl.open(ns)`; close when done."""

    def __init__(self, netns: str | None, ipr: Any) -> None:
        self.ns = netns or "root"  # for messages
        self._netns = netns
        self._ipr = ipr

    @classmethod
    def open(cls, ns: str | None) -> Rtnl:
        """A handle in namespace `ns`, or in the caller's own namespace if None."""
        if ns is None:
            return cls(None, IPRoute())
        # The netlink socket is created while this thread is inside `ns`, so it stays there.
        with entered(ns):
            return cls(ns, IPRoute())

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NetlinkError as exc:
            raise NetlinkFailure(f"{self.ns}: {what}: {exc.args[-1]}") from exc

    # links -----------------------------------------------------------------------------

    @property
    def raw(self) -> Any:
        """The pyroute2 IPRoute underneath, for what this facade does not cover (tc)."""
        return self._ipr

    def index_of(self, ifname: str) -> int:
        found = self._ipr.link_lookup(ifname=ifname)
        if not found:
            raise NetlinkFailure(f"{self.ns}: no interface named {ifname!r}")
        return int(found[0])

    def add_veth(self, ifname: str, peer_ifname: str, peer_ns: str) -> int:
        """A veth pair whose peer is created directly in `peer_ns` (never in the root ns)."""
        self._call(
            f"add veth {ifname} <-> {peer_ns}:{peer_ifname}",
            self._ipr.link,
            "add",
            ifname=ifname,
            kind="veth",
            peer={"ifname": peer_ifname, "net_ns_fd": peer_ns},
        )
        return self.index_of(ifname)

    def add_bridge(self, ifname: str) -> int:
        # STP off: ports forward at once instead of after a 15 s listening/learning delay.
        self._call(
            f"add bridge {ifname}",
            self._ipr.link,
            "add",
            ifname=ifname,
            kind="bridge",
            br_stp_state=0,
            br_forward_delay=0,
        )
        return self.index_of(ifname)

    def add_tun(self, ifname: str, mode: Literal["tun", "tap"] = "tun") -> int:
        """A persistent TUN or TAP device, for scenarios that need one bare; a program attaches
        to it by name with TUNSETIFF. Removed with its namespace.

        Not through pyroute2: it creates tuntap devices with an ioctl in the calling thread's
        namespace, whatever namespace its netlink socket lives in (it would land in root).
        """
        if self._netns is None:
            raise NetlinkFailure(f"{self.ns}: TUN devices are created only inside a lab")
        with entered(self._netns):
            try:
                device = TunFile(ifname, mode)
            except OSError as exc:
                raise NetlinkFailure(f"{self.ns}: add {mode} {ifname}: {exc.strerror}") from exc
            device.persist()
            device.close()
        return self.index_of(ifname)

    def set_link(self, ifname: str, **attrs: Any) -> None:
        """Set attributes of a link: state="up", mtu=..., master=index, ifalias=..."""
        self.set_link_index(self.index_of(ifname), ifname, **attrs)

    def set_link_index(self, index: int, ifname: str, **attrs: Any) -> None:
        """`set_link` for a link whose index the caller knows (one request, not two: a lab's
        build makes dozens); `ifname` names it in errors."""
        self._call(f"set {ifname} {attrs}", self._ipr.link, "set", index=index, **attrs)

    def up(self, ifname: str) -> None:
        self.set_link(ifname, state="up")

    def delete_link(self, ifname: str) -> None:
        self._call(f"delete {ifname}", self._ipr.link, "del", index=self.index_of(ifname))

    def links(self) -> list[Link]:
        addresses: dict[int, list[str]] = {}
        for msg in self._ipr.get_addr():
            cidr = f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}"
            addresses.setdefault(msg["index"], []).append(cidr)
        return [
            _link_from(msg, tuple(addresses.get(msg["index"], ()))) for msg in self._ipr.get_links()
        ]

    def link(self, ifname: str) -> Link:
        for link in self.links():
            if link.name == ifname:
                return link
        raise NetlinkFailure(f"{self.ns}: no interface named {ifname!r}")

    def tun_devices(self, mode: Literal["tun", "tap"] = "tun") -> list[Link]:
        """TUN (or TAP) devices, found by type: students name theirs freely."""
        return [link for link in self.links() if link.kind == "tun" and link.tun_mode == mode]

    def counters(self, ifname: str) -> Counters:
        msg = self._call(f"get {ifname}", self._ipr.link, "get", index=self.index_of(ifname))[0]
        stats = msg.get("IFLA_STATS64") or {}
        return Counters(
            rx_packets=stats.get("rx_packets", 0),
            tx_packets=stats.get("tx_packets", 0),
            rx_bytes=stats.get("rx_bytes", 0),
            tx_bytes=stats.get("tx_bytes", 0),
            rx_dropped=stats.get("rx_dropped", 0),
            tx_dropped=stats.get("tx_dropped", 0),
        )

    # addresses and routes --------------------------------------------------------------

    def add_address(
        self, ifname: str, cidr: str, *, nodad: bool = True, index: int | None = None
    ) -> None:
        """Add `cidr` on `ifname` (whose `index` the caller may know). An IPv6 address is added
        with IFA_F_NODAD unless `nodad` is False: usable at once, not tentative for the second
        duplicate detection takes."""
        iface = ipaddress.ip_interface(cidr)
        extra: dict[str, Any] = {}
        if iface.version == 6 and nodad:
            extra["flags"] = IFA_F_NODAD  # pyroute2 sends it as IFA_FLAGS
        self._call(
            f"add address {cidr} on {ifname}",
            self._ipr.addr,
            "add",
            index=self.index_of(ifname) if index is None else index,
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
            **extra,
        )

    def add_route(self, dst: str, gateway: str | None = None, dev: str | None = None) -> None:
        spec: dict[str, Any] = {"dst": dst}
        if gateway is not None:
            spec["gateway"] = gateway
        if dev is not None:
            spec["oif"] = self.index_of(dev)
        if ":" in (gateway or "") or ":" in dst:
            spec["family"] = 10
        self._call(f"add route {dst} via {gateway or dev}", self._ipr.route, "add", **spec)

    def delete_route(self, dst: str) -> None:
        # pyroute2 takes "default" when adding but not when deleting: say it as a /0.
        spec: dict[str, Any] = {"dst": "0.0.0.0/0"} if dst == "default" else {"dst": dst}
        if ":" in dst or dst == "::/0":
            spec["family"] = 10
        self._call(f"delete route {dst}", self._ipr.route, "del", **spec)

    def routes(self) -> list[Route]:
        names = {msg["index"]: msg.get("IFLA_IFNAME") for msg in self._ipr.get_links()}
        found = []
        # IPv4 then IPv6 (e.g. an IPv6 private net routed into a TUN): the main table of each.
        messages = [*self._ipr.get_routes(family=2, table=254)]
        messages += self._ipr.get_routes(family=10, table=254)
        for msg in messages:
            dst = msg.get("RTA_DST")
            found.append(
                Route(
                    dst=f"{dst}/{msg['dst_len']}" if dst else "default",
                    gateway=msg.get("RTA_GATEWAY"),
                    dev=names.get(msg.get("RTA_OIF")),
                )
            )
        return found

    def neighbours(self, ifname: str | None = None) -> list[tuple[str, str]]:
        """(IPv4 address, MAC) of each resolved neighbour entry (ARP), on `ifname` if given;
        entries without a link-layer address (incomplete, failed) are left out."""
        index = None if ifname is None else self.index_of(ifname)
        found = []
        for msg in self._ipr.get_neighbours(family=2):
            mac = msg.get("NDA_LLADDR")
            if mac is not None and index in (None, msg["ifindex"]):
                found.append((str(msg.get("NDA_DST")), str(mac)))
        return found


def _link_from(msg: Any, addresses: tuple[str, ...]) -> Link:
    info = msg.get("IFLA_LINKINFO")
    kind = info.get("IFLA_INFO_KIND") if info else None
    tun_mode: Literal["tun", "tap"] | None = None
    if kind == "tun":
        data = info.get("IFLA_INFO_DATA")
        tun_type = data.get("IFLA_TUN_TYPE") if data else None
        if tun_type is None:  # older kernels: no IFLA_TUN_TYPE, but TUN has no MAC
            tun_type = TUN_TYPE_TUN if msg["ifi_type"] == ARPHRD_NONE else TUN_TYPE_TAP
        tun_mode = "tun" if tun_type == TUN_TYPE_TUN else "tap"
    return Link(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME"),
        kind=kind,
        tun_mode=tun_mode,
        up=bool(msg["flags"] & 1),
        mtu=msg.get("IFLA_MTU"),
        mac=msg.get("IFLA_ADDRESS"),
        alias=msg.get("IFLA_IFALIAS"),
        master=msg.get("IFLA_MASTER"),
        addresses=addresses,
    )
