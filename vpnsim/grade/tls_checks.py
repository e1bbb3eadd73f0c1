"""The TLS lab's checks: its ends coming up, probes through the TLS tunnel, and what the
captures and the programs show, each judged from evidence.

- Through the tunnel: the grader's ping from a client host reaches V from the client's
  TUN address (V's link saw it, and V answered), the reply comes back intact, no copy of it
  crossed the client's outer link in clear, and the outer link carried TCP to the server's
  port meanwhile.
- Encrypted: the outer links (the client's and the server's) hold none of the probes'
  payloads in clear, and they carry TLS records (handshake, application data) on that port.
- Refused: a client that must not get a tunnel (an impostor's certificate, a wrong host
  name, a wrong password) started its TLS handshake (seen on the outer link), and then
  exited, or settled, without a TUN and without its login reaching the server.

Waits end on what the programs do (`vpnsim.grade.liveness`): an end that exits, waits for
input nothing will send, keeps computing, or sleeps UP_TIMEOUT s is given up on.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyroute2.netlink.exceptions import NetlinkError

from vpnsim.grade.liveness import (
    BUSY,
    POLL,
    UP_TIMEOUT,
    UP_WALL,
    cpu_seconds,
    exit_reason,
    own_pids,
    quiet,
    stuck,
)
from vpnsim.grade.observe import Observation
from vpnsim.grade.packets import ECHO_REPLY, ECHO_REQUEST, echoes, segments
from vpnsim.grade.sides import Side
from vpnsim.grade.trace import Failed
from vpnsim.net.rtnl import Link, NetlinkFailure
from vpnsim.proc import port_bound_in
from vpnsim.topology import Lab
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.probes import Probes

TLS_RECORD_TYPES = {0x14: "change cipher spec", 0x15: "alert", 0x16: "handshake", 0x17: "data"}
PING_TRIES = 2
PING_TIMEOUT = 4.0  # per try: a wall-clock backstop, as the lab's own probes have
TCP_TIMEOUT = 10.0
STUCK_FOR = 0.5  # seconds an end must stay stuck, its peers quiet, before it is given up on


@dataclass(frozen=True)
class TlsPlaces:
    """The TLS lab's hosts and addresses (from its scenario, `vpnsim.tlslab`)."""

    server_host: str  # "gateway"
    server_address: str  # its outer address, where clients connect
    v_host: str
    v_address: str
    tun_net: str  # the tunnel's network (client TUN addresses)
    private_net: str  # V's network, routed into the client's TUN


def tls_records(data: bytes) -> list[str]:
    """The TLS records a TCP segment's payload starts with (type names), as far as they
    lie whole or begin in it; [] when it does not start with a TLS record header."""
    found = []
    at = 0
    while at + 5 <= len(data):
        kind, major, minor = data[at], data[at + 1], data[at + 2]
        if kind not in TLS_RECORD_TYPES or major != 3 or minor > 4:
            break
        found.append(TLS_RECORD_TYPES[kind])
        at += 5 + int.from_bytes(data[at + 3 : at + 5], "big")
    return found


class TlsProbe:
    """Probes and readiness in one TLS-lab run."""

    def __init__(
        self, lab: Lab, observe: Observation, probes: Probes, places: TlsPlaces, port: int
    ) -> None:
        self.lab = lab
        self.observe = observe
        self.probes = probes
        self.places = places
        self.port = port
        self.log: list[str] = []
        self.sent: list[bytes] = []  # every probe payload, in order
        self.nonce = f"{time.monotonic_ns() % 10**8:08d}"

    def say(self, line: str) -> None:
        self.log.append(line)

    def data(self, size: int, tag: str) -> bytes:
        """A payload of exactly `size` bytes that no other probe of this grading has."""
        text = f"vpnsim-tls {self.nonce}{len(self.sent) + 1:04d} {tag} ".encode()
        payload = (text * (size // len(text) + 1))[:size]
        self.sent.append(payload)
        return payload

    def mark(self) -> tuple[int, float]:
        """Where the probes from now on start: (payloads so far, the time)."""
        return len(self.sent), time.time()

    @staticmethod
    def now() -> float:
        return time.time()

    # -- readiness ------------------------------------------------------------------------

    def tun(self, host: str) -> Link | None:
        """`host`'s TUN that is up with an IPv4 address in the tunnel's network, if any."""
        try:
            tuns = self.lab.rtnl(host).tun_devices("tun")
        except NetlinkFailure:
            return None
        net = ipaddress.ip_network(self.places.tun_net)
        for tun in tuns:
            inside = [a for a in tun.addresses if ":" not in a]
            if tun.up and any(ipaddress.ip_interface(a).ip in net for a in inside):
                return tun
        return None

    def routed_into(self, host: str) -> str | None:
        """The device `host` routes V's address through, if any."""
        try:
            rtnl = self.lab.rtnl(host)
            names = {link.index: link.name for link in rtnl.links()}
            found = rtnl.raw.route("get", dst=self.places.v_address)
        except (NetlinkError, NetlinkFailure):
            return None
        return names.get(found[0].get("RTA_OIF")) if found else None

    def client_ready(self, host: str) -> bool:
        tun = self.tun(host)
        return tun is not None and self.routed_into(host) == tun.name

    def server_ready(self) -> bool:
        host = self.places.server_host
        try:
            bound = port_bound_in(self.lab.ns(host), self.port, "tcp")
        except OSError:
            bound = False
        return bound and self.tun(host) is not None

    def wait(self, side: Side, ready: str, peers: tuple[Side | None, ...] = ()) -> str | None:
        """Wait until `side` is up ("client": a TUN in the tunnel's network that V's address
        is routed into; "server": a TUN up and the TCP port listening). None once it is,
        else why not: its exit, what it is stuck in, or that it slept UP_TIMEOUT s. A client
        blocked on its socket is stuck only while its `peers` (the server) are quiet too:
        until then it waits for their answer."""

        def check() -> bool:
            return self.client_ready(side.host) if ready == "client" else self.server_ready()

        what = (
            f"TUN in {self.places.tun_net} with {self.places.private_net} routed into it"
            if ready == "client"
            else f"TUN up with an address, and TCP port {self.port} listening"
        )
        self.say(f"$ wait for {side.who} on {side.host}: a {what}")
        start = last = time.monotonic()
        asleep = 0.0
        held, unaccepted = _Held(), _Held()
        server = peers[0] if peers else None
        while True:
            blocked = held.check(_stuck(side, peers))  # read first: stuck is a final state
            ignored = server is not None and self.ignores_connection(server)
            ignoring = unaccepted.check("ignored" if ignored else None)
            if check():
                self.say(f"  up after {cpu_seconds(own_pids(side)):.2f} s of CPU")
                return None
            why = side.exit_reason()
            if why is not None:
                return why
            if blocked is not None:
                return f"{side.who} has no {what}: {blocked}"
            if ignoring is not None and server is not None:
                return (
                    f"{server.who} does not accept the connection: it sleeps while the "
                    f"connection waits in the queue of its TCP port {self.port}"
                )
            now = time.monotonic()
            asleep += now - last if _quiet(side, peers) else 0.0
            last = now
            if asleep > UP_TIMEOUT or now - start > UP_WALL:
                return f"{side.who} has no {what} within {UP_TIMEOUT:g} s"
            time.sleep(POLL)

    def ignores_connection(self, server: Side) -> bool:
        """Whether every process of `server` sleeps while a connection waits in the accept
        queue of its listening TCP port (it does not accept it, or not any more)."""
        pids = own_pids(server)
        if not pids:
            return False
        for pid in pids:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
                states = [Path(f"/proc/{pid}/task/{t}/stat").read_text() for t in tasks]
            except OSError:
                return False
            if any(stat.rsplit(")", 1)[1].split()[0] != "S" for stat in states):
                return False
        return _accept_queue(pids[0], self.port) > 0

    def settle_refused(
        self, side: Side, logged_in: Callable[[], bool], peers: tuple[Side | None, ...] = ()
    ) -> str:
        """Wait until a client that should be refused has shown what it does: "exited",
        "stuck" (waits for input that will not come, or keeps computing), "quiet" (slept
        UP_TIMEOUT s), "tunnel" (its TUN came up) or "login" (the server let it in)."""
        start = last = time.monotonic()
        asleep = 0.0
        held = _Held()
        while True:
            blocked = held.check(_stuck(side, peers))
            if logged_in():
                return "login"
            if self.client_ready(side.host):
                return "tunnel"
            if side.exit_reason() is not None:
                return "exited"
            if blocked is not None:
                return "stuck"
            now = time.monotonic()
            asleep += now - last if _quiet(side, peers) else 0.0
            last = now
            if asleep > UP_TIMEOUT or now - start > UP_WALL:
                return "quiet"
            time.sleep(POLL)

    # -- probes ---------------------------------------------------------------------------

    def through(self, host: str, size: int, tag: str) -> str:
        """A ping from `host` to V through the tunnel, proven by the captures; the words of
        what it showed, else Failed with the first thing missing."""
        v = self.places.v_address
        data = self.data(size, tag)
        since = time.time()
        reply, problem = None, ""
        for attempt in range(1, PING_TRIES + 1):
            self.say(f"$ ping from {host} to {v} with a {size}-byte payload ({tag}, try {attempt})")
            try:
                reply = self.probes.ping(host, v, data, timeout=PING_TIMEOUT).payload
                break
            except ProbeFailed as exc:
                problem = str(exc)
                self.say(f"  no reply ({problem})")
        self.observe.sync()
        outer = self.observe.frames(f"{host}-eth0", since)
        at_v = self.observe.frames(f"{self.places.v_host}-eth0", since)
        clear = [
            e
            for e in echoes(outer)
            if e.kind == ECHO_REQUEST and e.outgoing and e.outer is None and e.carries(data)
        ]
        requests = [e for e in echoes(at_v) if e.kind == ECHO_REQUEST and e.carries(data)]
        answers = [e for e in echoes(at_v) if e.kind == ECHO_REPLY and e.carries(data)]
        carried = [s for s in segments(outer) if self.port in (s.sport, s.dport) and s.data]
        net = ipaddress.ip_network(self.places.tun_net)
        from_tun = [e for e in requests if ipaddress.ip_address(e.src) in net]
        self.say(
            f"  seen: {len(clear)} in clear on {host}'s eth0, {len(carried)} TCP segments with "
            f"data on port {self.port} there, {len(requests)} at V ({len(from_tun)} from "
            f"{self.places.tun_net}), {len(answers)} answers from V"
        )
        if clear:
            raise Failed(
                f"the ping left {host} in clear on eth0 (to {clear[0].dst}), not through the "
                f"tunnel: route {self.places.private_net} into the TUN"
            )
        if reply is None:
            if not carried:
                raise Failed(
                    f"no reply to a {size}-byte ping from {host} to {v}, and nothing crossed "
                    f"{host}'s outer link on TCP port {self.port}"
                )
            if not requests:
                raise Failed(
                    f"no reply to a {size}-byte ping from {host} to {v}: the tunnel carried "
                    "data, but the ping never reached V"
                )
            if not answers:
                raise Failed(f"the ping reached V from {requests[0].src}, but V did not answer")
            raise Failed(
                f"V answered the {size}-byte ping, but the reply never came back to {host}"
            )
        if reply != data:
            raise Failed(f"the reply to a {size}-byte ping came back with a different payload")
        if not from_tun:
            where = f"from {requests[0].src}" if requests else "nowhere: V's link saw nothing"
            raise Failed(
                f"a reply came back, but V got the ping {where}, not from the tunnel's "
                f"{self.places.tun_net}"
            )
        if not answers:
            raise Failed("a reply came back that V never sent (V's link shows no answer)")
        if not carried:
            raise Failed(
                f"a reply came back, but {host}'s outer link carried nothing on TCP port "
                f"{self.port}: the packets did not go through the TLS tunnel"
            )
        self.say("  reply, payload intact")
        return (
            f"a {size}-byte ping from {host} reached V from {from_tun[0].src} inside the tunnel "
            f"(TCP port {self.port} on the outer link) and came back intact"
        )

    def tcp(self, host: str, tag: str) -> str:
        """A TCP exchange from `host` with V's echo service through the tunnel."""
        data = self.data(600, tag)
        v = self.places.v_address
        self.say(f"$ TCP exchange from {host} to {v} port 7 ({len(data)} bytes, echoed back)")
        since = time.time()
        try:
            echoed = self.probes.tcp(host, v, data, TCP_TIMEOUT)
        except ProbeFailed as exc:
            raise Failed(
                f"ping works, but a TCP exchange from {host} with V fails: {exc}"
            ) from None
        if echoed != data:
            raise Failed("the TCP stream came back altered")
        self.observe.sync()
        net = ipaddress.ip_network(self.places.tun_net)
        at_v = segments(self.observe.frames(f"{self.places.v_host}-eth0", since))
        got = [s for s in at_v if s.data and s.data in data and not s.outgoing]
        if not any(ipaddress.ip_address(s.src) in net for s in got):
            raise Failed("the TCP bytes came back, but V's link never saw them from the tunnel")
        self.say("  all bytes came back; V's link saw them from the tunnel's addresses")
        return "a TCP exchange with V worked"

    def cleartext(self, mark: tuple[int, float]) -> str | None:
        """Where a payload of the probes since `mark` crossed an outer link in clear."""
        payloads, since = self.sent[mark[0] :], mark[1]
        self.observe.sync()
        for key in self.outer_links():
            for frame in self.observe.frames(key, since):
                for payload in payloads:
                    if payload[:32] in frame.data:
                        return key
        return None

    def outer_links(self) -> list[str]:
        held = self.observe.keys()
        return [k for k in held if k.endswith("-eth0") and not k.startswith(self.places.v_host)]

    def records(self, key: str, since: float) -> dict[str, int]:
        """TLS records on TCP to or from the server's port on link `key`, by type."""
        count: dict[str, int] = {}
        for s in segments(self.observe.frames(key, since)):
            if self.port in (s.sport, s.dport):
                for kind in tls_records(s.data):
                    count[kind] = count.get(kind, 0) + 1
        return count

    def hello_sent(self, host: str, since: float) -> bool:
        """Whether `host` sent a TLS handshake record to the server's port since `since`."""
        self.observe.sync()
        for s in segments(self.observe.frames(f"{host}-eth0", since)):
            if s.outgoing and s.dport == self.port and tls_records(s.data)[:1] == ["handshake"]:
                return True
        return False


def _accept_queue(pid: int, port: int) -> int:
    """Connections waiting to be accepted on TCP `port` (a LISTEN socket's rx_queue in the
    namespace of `pid`)."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    waiting = 0
    for line in lines:
        fields = line.split()  # sl local rem st tx_queue:rx_queue ...
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            waiting += int(fields[4].split(":")[1], 16)
    return waiting


class _Held:
    """A stuck state counts once it has held STUCK_FOR seconds without a break: a small TLS
    record may wait in the sender's queue (Nagle, a delayed ACK) while both ends sleep."""

    def __init__(self) -> None:
        self.since: float | None = None

    def check(self, why: str | None) -> str | None:
        now = time.monotonic()
        if why is None:
            self.since = None
            return None
        self.since = now if self.since is None else self.since
        return why if now - self.since >= STUCK_FOR else None


def _quiet(side: Side, peers: tuple[Side | None, ...]) -> bool:
    return quiet(side) and all(quiet(peer) for peer in peers if peer is not None)


def _stuck(side: Side, peers: tuple[Side | None, ...]) -> str | None:
    """`stuck(side)`, unless a peer is still working (the client may wait for its answer):
    computing for good counts whatever the peers do."""
    why = stuck(side)
    if why is None or why == BUSY:
        return why
    return why if _quiet(side, peers) else None


def exit_words(side: Side) -> str:
    """How a program ended, read now (a jail may report it a moment later)."""
    return exit_reason(side) or f"{side.who} is still running"
