"""Bandwidth caps on the lab's links, so that a student's flood cannot starve the grader's
probes (nor the machine that grades other submissions at the same time).

Where: on the egress of the fabric's port of every host interface (`p1`... in the lab's
fabric namespace, alias "HOST:IFNAME"), i.e. on what each host *receives*. A student's
program holds CAP_NET_ADMIN in its own host's namespace and could delete a qdisc there; the
fabric is out of its reach (its jail joins only its host's user namespace). A flood from U
to the server is cut on the server's port, before the server's socket or CPU sees it.

What: the grader's probes cross the links inside the student's own tunnel datagrams, sent
by the same programs (and from the same cgroup) as any flood they make, so neither socket nor
cgroup tells them apart; their shape does. Each port gets an htb qdisc with three classes,
each capped at its own rate, none borrowing from another:

    1:10 control  ARP                                                     1 Mbit/s, first
    1:20 tunnel   what the lab's tunnel carries: a UDP datagram whose      20 Mbit/s, second
                  payload starts with an IPv4 header, the later fragments
                  of a UDP datagram (a tunnelled 3000-byte ping), and
                  IPv4 from or to the TUN network 192.168.53.0/24
                  (decapsulated, between the server and V)
    1:30 student  everything else (the default): a flood of junk          10 Mbit/s, last

So a flood of junk datagrams (tests/data/submissions/hostile_flood) fills only the student
class, whose queue drops what exceeds its rate, and the probes' datagrams wait in a queue of
their own. u32 filters classify: this kernel has no fq_codel, sfq, fq, prio, netem or police
action, and cls_bpf would need a loaded program; u32 does it with fixed offsets, since the
lab's tunnel is IP-in-UDP over IPv4 without options. The shape can be forged: a program can
flood tunnel-shaped datagrams. That only puts its flood beside its own probes, in a class
that is capped as well: other labs and the machine stay protected, and a program that fights
its own grader earns what its probes then show.

A kernel without htb gets one tbf cap per port (the sum of the three rates: the machine is
protected, the probes are not), one without tbf no cap; `install_caps` says which, and the
report carries it (`SubmissionResult.limits`).
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyroute2.netlink.exceptions import NetlinkError

from vpnsim.errors import HarnessError
from vpnsim.topology import FABRIC

if TYPE_CHECKING:
    from vpnsim.net.rtnl import Link
    from vpnsim.topology import Lab

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ROOT = 0x10000  # 1:
CONTROL, TUNNEL, STUDENT = 0x10010, 0x10020, 0x10030  # 1:10, 1:20, 1:30
# bits per second, each a rate and its ceiling (no borrowing: a class never gets more)
RATES: dict[int, int] = {CONTROL: 1_000_000, TUNNEL: 20_000_000, STUDENT: 10_000_000}
NAMES = {CONTROL: "control", TUNNEL: "tunnel", STUDENT: "student"}
QUEUE = {CONTROL: 32, TUNNEL: 128, STUDENT: 64}  # packets in each class's pfifo
PRIO = {CONTROL: 0, TUNNEL: 1, STUDENT: 2}  # htb serves lower first when both may send
TBF_BURST = 32 * 1024  # bytes
TBF_LATENCY_MS = 50
KINDS = ("htb", "tbf")  # tried in order

# u32 keys "VALUE/MASK+OFFSET" on the IPv4 header (pyroute2's form: the offset is of the
# mask's first byte): IHL 5, UDP, fragment offset 0, an IPv4 header in the UDP payload.
IHL_5 = "0x05/0x0f+0"
UDP = "0x11/0xff+9"
FIRST_FRAGMENT = "0x0/0x1fff+6"
INNER_IPV4 = "0x40/0xf0+28"
TUN_NET_SRC = "0xc0a835/0xffffff+12"  # 192.168.53.0/24
TUN_NET_DST = "0xc0a835/0xffffff+16"
# (protocol, keys, class), in the order the filters are tried: the first match wins.
FILTERS: tuple[tuple[int, tuple[str, ...], int], ...] = (
    (ETH_P_ARP, ("0x0/0x0+0",), CONTROL),
    (ETH_P_IP, (IHL_5, UDP, FIRST_FRAGMENT, INNER_IPV4), TUNNEL),
    (ETH_P_IP, (UDP, FIRST_FRAGMENT), STUDENT),  # any other whole datagram: not the tunnel's
    (ETH_P_IP, (UDP,), TUNNEL),  # a later fragment: a tunnelled packet too big for one frame
    (ETH_P_IP, (TUN_NET_SRC,), TUNNEL),
    (ETH_P_IP, (TUN_NET_DST,), TUNNEL),
)


class CapsFailed(HarnessError):
    """The kernel refused a cap it has the qdisc for: the harness's fault, said as such."""


@dataclass(frozen=True)
class Caps:
    kind: str  # "htb", "tbf" or "none"
    missing: tuple[str, ...]  # qdiscs tried and not in this kernel

    def describe(self) -> str:
        """One line for the report's `limits`."""
        absent = f" (this kernel has no {', no '.join(self.missing)})" if self.missing else ""
        if self.kind == "htb":
            rates = ", ".join(f"{NAMES[c]} {_mbit(RATES[c])}" for c in (TUNNEL, STUDENT))
            return f"bandwidth: htb per graded link, {rates}{absent}"
        if self.kind == "tbf":
            return (
                f"bandwidth: tbf {_mbit(sum(RATES.values()))} per graded link, probes not "
                f"given their own share{absent}"
            )
        return f"bandwidth: not capped{absent}"


def _mbit(bits: int) -> str:
    return f"{bits / 1e6:g} Mbit/s"


def install_caps(lab: Lab, kinds: tuple[str, ...] = KINDS) -> Caps:
    """Cap every host-facing port of the lab's fabric with the first of `kinds` this kernel
    has (a kind it lacks answers ENOENT; anything else is the harness's fault)."""
    fabric = lab.rtnl(FABRIC)
    ports = [port.index for port in host_ports(lab)]
    missing: list[str] = []
    for kind in kinds:
        try:
            for index in ports:
                _INSTALL[kind](fabric.raw, index)
        except NetlinkError as exc:
            if exc.code != errno.ENOENT:  # ENOENT: no such qdisc (or classifier) module
                raise CapsFailed(f"{lab.fabric_ns}: cannot cap with {kind}: {exc}") from exc
            for index in ports:  # what went on before it failed: off again
                _remove(fabric.raw, index)
            missing.append(kind)
            continue
        return Caps(kind, tuple(missing))
    return Caps("none", tuple(missing))


def host_ports(lab: Lab) -> list[Link]:
    """The fabric's ports that face a host interface (alias "HOST:IFNAME"), by alias."""
    aliases = {
        f"{host.name}:{iface.name}" for host in lab.scenario.hosts for iface in host.interfaces
    }
    ports = [port for port in lab.rtnl(FABRIC).links() if port.alias in aliases]
    return sorted(ports, key=lambda port: port.alias or "")


def _htb(ipr: Any, index: int) -> None:
    ipr.tc("add", "htb", index, ROOT, default=STUDENT & 0xFFFF)
    for classid, bits in RATES.items():
        rate = f"{bits}bit"
        ipr.tc("add-class", "htb", index, classid, parent=ROOT, rate=rate, ceil=rate,
               prio=PRIO[classid])  # fmt: skip
        leaf = (classid & 0xFFFF) << 16  # 10:, 20:, 30:
        ipr.tc("add", "pfifo", index, leaf, parent=classid, limit=QUEUE[classid])
    for prio, (protocol, keys, classid) in enumerate(FILTERS, start=1):
        ipr.tc("add-filter", "u32", index, parent=ROOT, prio=prio, protocol=protocol,
               target=classid, keys=list(keys))  # fmt: skip


def _tbf(ipr: Any, index: int) -> None:
    ipr.tc("add", "tbf", index, ROOT, rate=f"{sum(RATES.values())}bit", burst=TBF_BURST,
           latency=TBF_LATENCY_MS)  # fmt: skip


def _remove(ipr: Any, index: int) -> None:
    try:
        ipr.tc("del", index=index, root=True)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL):  # nothing there
            raise


# kind -> what puts it on a port (a test puts a kind the kernel lacks in one's place)
_INSTALL = {"htb": _htb, "tbf": _tbf}


def read_caps(lab: Lab) -> dict[str, Any]:
    """What the caps are and did, per port ("HOST:IFNAME", what that interface receives):
    its root qdisc's kind, and per class (htb) or for the qdisc (tbf) the rate in bits/s,
    packets and bytes sent, packets dropped. Read back from the kernel, not from what was
    asked."""
    ipr = lab.rtnl(FABRIC).raw
    return {port.alias or port.name: _read(ipr, port.index) for port in host_ports(lab)}


def _read(ipr: Any, index: int) -> dict[str, Any]:
    qdiscs = {msg["handle"]: msg for msg in ipr.get_qdiscs(index=index)}
    root = qdiscs.get(ROOT)
    if root is None:
        return {"kind": "none"}
    kind = root.get_attr("TCA_KIND")
    if kind == "tbf":
        parms = root.get_nested("TCA_OPTIONS", "TCA_TBF_PARMS")
        return {"kind": kind, "rate": parms["rate"] * 8, **_stats(root)}
    classes: dict[str, Any] = {}
    for msg in ipr.get_classes(index=index):
        classid = msg["handle"]
        parms = msg.get_nested("TCA_OPTIONS", "TCA_HTB_PARMS")
        leaf = qdiscs.get((classid & 0xFFFF) << 16)
        classes[NAMES.get(classid, hex(classid))] = {
            "classid": f"{classid >> 16:x}:{classid & 0xFFFF:x}",
            "rate": parms["rate"] * 8,
            "ceil": parms["ceil"] * 8,
            "prio": parms["prio"],
            "queue": leaf.get_attr("TCA_OPTIONS")["limit"] if leaf is not None else None,
            **_stats(msg),
            "dropped": _stats(leaf)["dropped"] if leaf is not None else 0,
        }
    filters = list(ipr.get_filters(index=index, parent=ROOT))
    return {"kind": kind, "classes": classes, "filters": len(_rules(filters)), **_stats(root)}


def _rules(filters: list[Any]) -> list[Any]:
    """The u32 rules themselves (a dump also lists each priority's hash table)."""
    return [msg for msg in filters if msg["handle"] & 0xFFF]


def _stats(msg: Any) -> dict[str, int]:
    basic = msg.get_nested("TCA_STATS2", "TCA_STATS_BASIC") or {}
    queue = msg.get_nested("TCA_STATS2", "TCA_STATS_QUEUE") or {}
    return {
        "packets": basic.get("packets", 0),
        "bytes": basic.get("bytes", 0),
        "dropped": queue.get("drops", 0),
    }


def save_caps(lab: Lab, path: Path) -> None:
    """The caps' readings as JSON evidence (a flood shows as the student class's drops)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(read_caps(lab), indent=2, sort_keys=True) + "\n")
