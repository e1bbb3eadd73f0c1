"""What the grader watches while a submission runs: the outer and inner links (and, once they
are up, the TUN devices of U and the server), captured from the start, cut into per-task
pcaps; and each host's addresses, routes and forwarding.

A verdict rests on these captures, so they must not lose the frames it needs, whatever the
machine's load or a flooding program does:

- on an Ethernet link a BPF filter keeps out, in the kernel, UDP datagrams that carry no
  IPv4 packet with ICMP or TCP (`packets.TUNNEL_FILTER`): a flood of junk to the tunnel port
  neither evicts the probes' frames from the ring nor keeps the reader busy;
- frames carry the kernel's timestamp (when they crossed the link, not when they were read);
- `sync()` returns once every frame that crossed a link before the call is in its list: the
  reader drains its socket on request and says so, so no one sleeps and hopes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vpnsim.errors import HarnessError
from vpnsim.grade.packets import bpf_program
from vpnsim.net import namespace
from vpnsim.net.buffers import enlarge
from vpnsim.net.rtnl import NetlinkFailure
from vpnsim.net.sysctl import SysctlError, get_sysctl
from vpnsim.topology import Lab
from vpnsim.traffic.capture import LINKTYPE_ETHERNET, LINKTYPE_RAW, Frame, write_pcap

# (host, interface): U's outer link, the server's outer and inner links, V's link.
LINKS = (("U", "eth0"), ("server", "eth0"), ("server", "eth1"), ("V", "eth0"))
KEEP = 20_000  # frames per link: a flood cannot eat the grader's memory
BUFFER = 8 << 20  # bytes of frames the kernel holds while the reader is busy
SYNC_TIMEOUT = 30.0  # a reader that cannot drain its socket in this long is a harness fault
SNAPLEN = 65535
ETH_P_ALL = 0x0003
ARPHRD_ETHER = 1
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
GONE = (errno.ENETDOWN, errno.ENXIO, errno.ENODEV)
_ANCILLARY = socket.CMSG_SPACE(16)


class Tap:
    """Frames crossing interface `ifname` of namespace `ns` (both directions), the newest
    `keep` of them, from construction to `stop()`."""

    def __init__(self, ns: str, ifname: str, keep: int = KEEP, device: int | None = None) -> None:
        self.ns = ns
        self.ifname = ifname
        self.device = device  # the interface's index, when the caller knows it
        self.keep = keep
        self.frames: list[Frame] = []
        # Protocol 0 receives nothing: the filter is attached before the first frame.
        sock = namespace.socket_in(ns, socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            enlarge(sock, BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((ifname, 0))
            _name, _proto, _pkttype, hatype, _addr = sock.getsockname()
            self.ethernet = hatype == ARPHRD_ETHER
            if self.ethernet:
                _attach(sock, bpf_program())
            sock.bind((ifname, ETH_P_ALL))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        self.linktype = LINKTYPE_ETHERNET if self.ethernet else LINKTYPE_RAW
        self._wake_r, self._wake_w = os.pipe()
        self._cond = threading.Condition()
        self._requests = itertools.count(1)
        self._asked = 0  # the newest sync request
        self._answered = 0  # the newest request the reader drained its socket after
        self._stopping = False
        self.gone = False  # the interface disappeared: what was captured until then is kept
        self.failed: OSError | None = None  # the reader's error: its frames cannot be trusted
        self._thread = threading.Thread(target=self._run, name=f"tap {ns}:{ifname}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data, ancillary, _flags, addr = self._sock.recvmsg(SNAPLEN, _ANCILLARY)
            except BlockingIOError:
                return
            except OSError as exc:  # the interface went away (a killed client's TUN)
                if exc.errno not in GONE:
                    raise
                if self.gone:
                    return
                # The error is reported once, before the frames still queued: those crossed
                # the link before it went away (the datagram that made a server delete it).
                self.gone = True
                continue
            self.frames.append(Frame(_stamp(ancillary), data, addr[2] == socket.PACKET_OUTGOING))
            if len(self.frames) >= 2 * self.keep:
                del self.frames[: -self.keep]  # trimmed in batches: amortised O(1) a frame

    def _run(self) -> None:
        try:
            self._loop()
        except OSError as exc:  # not the interface going away: that is `gone`
            self.failed = exc
        finally:
            with self._cond:
                self._answered = -1  # no more answers: sync() returns at once
                self._cond.notify_all()

    def _loop(self) -> None:
        while not self._stopping and not self.gone:
            readable, _, _ = select.select([self._sock.fileno(), self._wake_r], [], [])
            asked = self._asked  # read before draining: the drain comes after the request
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
            self._drain()
            with self._cond:
                self._answered = max(self._answered, asked)
                self._cond.notify_all()

    def request(self) -> int:
        """Ask the reader to drain its socket; `wait(request)` waits for it."""
        with self._cond:
            self._asked = next(self._requests)
            asked = self._asked
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        return asked

    def wait(self, asked: int, timeout: float = SYNC_TIMEOUT) -> None:
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._answered == -1 or self._answered >= asked, timeout
            )
        if not done:
            raise HarnessError(
                f"the capture of {self.ifname} did not catch up within {timeout:g} s "
                "(the grading machine is overloaded)"
            )
        if self.failed is not None and not self._stopping:
            raise HarnessError(f"the capture of {self.ifname} failed: {self.failed}")

    def stop(self) -> list[Frame]:
        """Stop capturing; returns every frame kept. Idempotent."""
        if not self._stopping:
            self._stopping = True
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
            self._thread.join()
            if not self.gone:
                with contextlib.suppress(OSError):
                    self._drain()
            self._sock.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            del self.frames[: -self.keep]
        return self.frames


def _attach(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_FILTER with a classic BPF program (struct sock_filter[], 8 bytes each)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanos = struct.unpack_from("qq", data)
            return float(seconds + nanos / 1e9)
    return time.time()


RTMGRP_LINK, RTMGRP_IPV4_IFADDR = 0x1, 0x10
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR = 16, 17, 20, 21
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND, IFA_ADDRESS = 3, 18, 1, 1
ARPHRD_NONE = 65534  # a TUN has no link-layer header (a TAP is Ethernet)
IFF_UP = 1


@dataclass(frozen=True)
class TunState:
    """A TUN device as one rtnetlink event left it."""

    name: str
    index: int
    up: bool
    addresses: frozenset[str]


class TunRecord:
    """Every state TUN devices went through, from rtnetlink link and address messages fed
    in order (`apply`): a TUN is a link of kind "tun" without a link-layer header."""

    def __init__(self) -> None:
        self.tuns: dict[int, str] = {}  # index -> name, of the TUN devices seen
        self.up: dict[int, bool] = {}
        self.addresses: dict[int, set[str]] = {}
        self.states: list[TunState] = []  # every state of a TUN, in order
        self.gone: set[int] = set()  # indexes of deleted links

    def apply(self, kind: int, body: bytes) -> None:
        index = self._apply(kind, body)
        if index is not None and index in self.tuns:
            addresses = frozenset(self.addresses.get(index, ()))
            up = self.up.get(index, False)
            self.states.append(TunState(self.tuns[index], index, up, addresses))

    def _apply(self, kind: int, body: bytes) -> int | None:
        if kind in (RTM_NEWLINK, RTM_DELLINK) and len(body) >= 16:
            _family, _pad, hatype, index, flags, _change = struct.unpack_from("=BBHiII", body)
            attrs = dict(rtattrs(body[16:]))
            kinds = dict(rtattrs(attrs.get(IFLA_LINKINFO, b"")))
            if kinds.get(IFLA_INFO_KIND, b"").rstrip(b"\0") == b"tun" and hatype == ARPHRD_NONE:
                name = attrs.get(IFLA_IFNAME, b"?").rstrip(b"\0")
                self.tuns[index] = name.decode(errors="replace")
            self.up[index] = kind == RTM_NEWLINK and bool(flags & IFF_UP)
            if kind == RTM_DELLINK:
                self.gone.add(index)
            else:
                self.gone.discard(index)
            return int(index)
        if kind in (RTM_NEWADDR, RTM_DELADDR) and len(body) >= 8:
            family, prefix, _flags, _scope, index = struct.unpack_from("=BBBBI", body)
            address = dict(rtattrs(body[8:])).get(IFA_ADDRESS)
            if family != socket.AF_INET or address is None or len(address) != 4:
                return None
            cidr = f"{socket.inet_ntoa(address)}/{prefix}"
            held = self.addresses.setdefault(index, set())
            (held.add if kind == RTM_NEWADDR else held.discard)(cidr)
            return int(index)
        return None

    def seen_up(self, cidr: str, since: int = 0) -> TunState | None:
        """The first state on record (from position `since`) of a TUN up with `cidr`."""
        for state in self.states[since:]:
            if state.up and cidr in state.addresses:
                return state
        return None

    def now(self) -> list[TunState]:
        """The TUN devices that exist, as the last events left them."""
        return [
            TunState(
                name, index, self.up.get(index, False), frozenset(self.addresses.get(index, ()))
            )
            for index, name in self.tuns.items()
            if index not in self.gone
        ]


class LinkEvents:
    """The rtnetlink link and address events of namespace `ns` from construction on, so a
    state a program set up only for a moment (a TUN up with its address, then deleted when
    the program died) is still on record. Read on demand: the kernel queues the events."""

    def __init__(self, ns: str) -> None:
        sock = namespace.socket_in(ns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            enlarge(sock, 1 << 20)
            sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        self.record = TunRecord()
        self.overflowed = False

    def poll(self) -> TunRecord:
        """Read the events queued so far."""
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return self.record
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.overflowed = True  # some events were lost; later ones still count
                continue
            for kind, body in netlink_messages(data):
                self.record.apply(kind, body)

    def seen_up(self, cidr: str, since: int = 0) -> TunState | None:
        """The first TUN state on record (from position `since`) up with `cidr`."""
        return self.poll().seen_up(cidr, since)

    def mark(self) -> int:
        """A position in the record: `seen_up(..., since=mark())` looks only after it."""
        return len(self.poll().states)

    def close(self) -> None:
        self._sock.close()


def netlink_messages(data: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of each netlink message in a datagram."""
    found = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16 or offset + length > len(data):
            break
        found.append((kind, data[offset + 16 : offset + length]))
        offset += (length + 3) & ~3
    return found


def rtattrs(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each route attribute (nested ones keep their flag bits off)."""
    found = []
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4 or offset + length > len(data):
            break
        found.append((kind & 0x3FFF, data[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    return found


class Observation:
    """The lab's links captured for the whole run; TUNs from `watch_tun` on."""

    def __init__(
        self,
        lab: Lab,
        links: tuple[tuple[str, str], ...] = LINKS,
        tun_hosts: tuple[str, ...] = ("U", "server"),
    ) -> None:
        self.lab = lab
        self.links = links
        self.taps: dict[str, Tap] = {}
        self.retired: dict[str, list[Frame]] = {}  # frames of taps replaced since
        self.linktypes: dict[str, int] = {}
        self.tuns: dict[str, list[str]] = {}  # host -> keys of its TUN taps, oldest first
        self.events: dict[str, LinkEvents] = {}
        try:
            for host in tun_hosts:  # before any program starts: every TUN on record
                self.events[host] = LinkEvents(lab.ns(host))
            for host, ifname in links:
                self._start(f"{host}-{ifname}", host, ifname)
        except BaseException:
            self.stop()
            raise

    def _start(self, key: str, host: str, ifname: str, device: int | None = None) -> Tap:
        tap = Tap(self.lab.ns(host), ifname, device=device)
        self.taps[key] = tap
        self.linktypes[key] = tap.linktype
        return tap

    def watch_tun(self, host: str, ifname: str, ifindex: int) -> str | None:
        """Capture `host`'s TUN `ifname` (up) from now on; a TUN already watched is kept, one
        replaced by a new device of the same name gets a new capture. The key of its frames,
        or None when it cannot be captured (it went away)."""
        key = f"{host}-{ifname}"
        tap = self.taps.get(key)
        if tap is not None and not tap.gone and tap.device == ifindex:
            return key
        if tap is not None:
            self.retired.setdefault(key, []).extend(tap.stop())
            del self.taps[key]
        try:
            self._start(key, host, ifname, ifindex)
        except OSError:
            return None
        keys = self.tuns.setdefault(host, [])
        if key not in keys:
            keys.append(key)
        return key

    def keys(self) -> list[str]:
        return sorted({*self.taps, *self.retired}, key=self._order)

    def _order(self, key: str) -> tuple[int, str]:
        fixed = [f"{h}-{i}" for h, i in self.links]
        return (fixed.index(key), "") if key in fixed else (len(fixed), key)

    def frames(self, key: str, since: float) -> list[Frame]:
        tap = self.taps.get(key)
        held = [*self.retired.get(key, ()), *(tap.frames if tap is not None else ())]
        return [f for f in held if f.time >= since]

    def tun_frames(self, host: str, since: float) -> list[Frame]:
        """Frames of every TUN of `host` watched so far (raw IP, no link header)."""
        return [f for key in self.tuns.get(host, ()) for f in self.frames(key, since)]

    def sync(self) -> None:
        """Return once every frame that crossed a watched link before the call is held."""
        asked = [(tap, tap.request()) for tap in self.taps.values()]
        for tap, request in asked:
            tap.wait(request)

    def save(self, folder: Path, since: float, until: float) -> list[Path]:
        """Each link's frames in [since, until] as `folder/<host>-<if>.pcap`."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for key in self.keys():
            frames = [f for f in self.frames(key, since) if f.time <= until]
            path = folder / f"{key}.pcap"
            write_pcap(path, frames, self.linktypes[key])
            written.append(path)
        return written

    def stop(self) -> None:
        for tap in self.taps.values():
            tap.stop()
        for events in self.events.values():
            events.close()


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
