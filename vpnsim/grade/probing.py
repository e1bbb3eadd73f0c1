"""The grader's view of one Tunneling-lab run: its two ends coming up (readiness) and the
grader's probes through them (probing), each probe traced by the captures and judged
(`vpnsim.grade.trace`).

Checks fail fast, and wait on what the programs do, not on the clock (a verdict must not
depend on the machine's load). A try of a ping ends when its reply or an ICMP error comes,
when a program exits, when both ends have settled (asleep, nothing unread on their
sockets) without a reply: nothing is moving any more; or when the ends used TRY_CPU s of
CPU without answering. Only that last kind is tried again, and only when a datagram
carrying the ping had left U (a flooded end may drop one).
"""

from __future__ import annotations

import errno
import itertools
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vpnsim.grade.facts import LabFacts
from vpnsim.grade.liveness import (
    BUSY,
    POLL,
    UP_TIMEOUT,
    UP_WALL,
    cpu_seconds,
    ended,
    own_pids,
    quiet,
    stuck,
)
from vpnsim.grade.observe import Observation
from vpnsim.grade.packets import (
    ECHO_REPLY,
    Echo,
    echo_answer,
    echoes,
    in_clear,
    segments,
)
from vpnsim.grade.path import PacketPath, build_path
from vpnsim.grade.sides import Side
from vpnsim.grade.trace import (
    CLIENT_TUN,
    POINTS,
    PORT,
    PRIVATE_PREFIX,
    SERVER,
    STAGE_HOPS,
    TUN_NET,
    TUN_PREFIX,
    V_ADDR,
    Failed,
    Trace,
    U,
    judge,
)
from vpnsim.net import namespace
from vpnsim.net.rtnl import Link, NetlinkFailure
from vpnsim.proc import port_bound_in
from vpnsim.topology import Lab
from vpnsim.traffic.capture import LINKTYPE_RAW
from vpnsim.traffic.echo import ECHO_PORT
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.icmp import echo_request
from vpnsim.traffic.probes import Probes

PROBE_TIMEOUT = 3.0  # the default of the lab's own probes (task1: no student program runs)
PING_TRIES = 3
TRY_CPU = 0.5  # CPU seconds the ends may use on a try without answering (one echo: ~1 ms)
TRY_WALL = 10.0  # backstop
STALL = 0.5  # seconds both ends must stay settled, without a reply, before a try gives up
SETTLE_CPU = 0.5  # CPU seconds an end may use finishing what it does before it is busy
TCP_TIMEOUT = 10.0  # after a ping made the round trip: only a broken exchange waits it out
TCP_DATA = bytes(range(200, 256)) * 4  # a telnet-sized exchange: big packets are `large`


@dataclass
class Probing:
    """One lab with its two ends running: their readiness, and probes through them."""

    lab: Lab
    probes: Probes
    observe: Observation
    client: Side
    server: Side
    restart_client: Callable[[], Side]
    log: list[str] = field(default_factory=list)
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))
    up_tun: dict[str, str] = field(default_factory=dict)  # host -> its TUN, once it was up
    client_mark: int = 0  # where the client's TUN events start (a restart moves it)
    last_judged: tuple[Trace, str, str | None] | None = None  # the task's path (packet_path)
    _count: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- small helpers --------------------------------------------------------------------

    def say(self, line: str) -> None:
        self.log.append(line)

    def data(self, size: int, tag: str) -> bytes:
        """A payload of exactly `size` bytes that no other probe of this grading has."""
        text = f"vpnsim {self.nonce}{next(self._count):04d} {tag} ".encode()
        return (text * (size // len(text) + 1))[:size]

    def tun(self, host: str) -> Link | None:
        """The host's TUN device that is up with an IPv4 address, else any TUN."""
        try:
            tuns = self.lab.rtnl(host).tun_devices("tun")
        except NetlinkFailure:
            return None
        configured = [t for t in tuns if t.up and any(":" not in a for a in t.addresses)]
        found = configured or tuns
        return found[0] if found else None

    def route_dev(self, host: str, dst: str) -> str | None:
        """The device of `host`'s route to exactly `dst` (None: no such route)."""
        try:
            routes = self.lab.rtnl(host).routes()
        except NetlinkFailure:
            return None
        for route in routes:
            if route.dst == dst:
                return route.dev or route.gateway or "?"
        return None

    def facts(self) -> LabFacts:
        return LabFacts(self)

    def _watch(self, host: str, name: str, index: int) -> None:
        if self.observe.watch_tun(host, name, index) is None:
            self.say(f"  (cannot capture {host}'s {name}: it went away)")

    # -- readiness ------------------------------------------------------------------------

    def _wait_ready(
        self, side: Side, ready: Callable[[], tuple[str, int] | None], timeout: float
    ) -> tuple[tuple[str, int] | None, str | None]:
        """Poll `ready` until it gives the TUN (name, index), or `side` exits, gets stuck
        (see `stuck`), or has slept `timeout` seconds (None: "within 10 s")."""
        start = last = time.monotonic()
        asleep = 0.0
        while True:
            blocked = stuck(side)  # read before the state: stuck is a final state
            found = ready()
            if found is not None:
                self.say(f"  up after {cpu_seconds(own_pids(side)):.2f} s of CPU")
                return found, None
            if side.exit_reason() is not None:
                return None, None
            if blocked is not None:
                return None, blocked
            now = time.monotonic()
            calm = quiet(side)
            asleep += now - last if calm else 0.0
            last = now
            if asleep > timeout:
                return None, None
            if now - start > UP_WALL:
                return None, None if calm else BUSY
            time.sleep(POLL)

    def wait_client_up(self, timeout: float = UP_TIMEOUT) -> str | None:
        """Wait for the client's TUN with its address, up; None once it is, else why not."""

        def ready() -> tuple[str, int] | None:
            # From the rtnetlink events, not a dump of the links every poll: a TUN that was
            # up with its address only for a moment (the program died since) is on record.
            events = self.observe.events[U]
            seen = events.seen_up(CLIENT_TUN, self.client_mark)
            if seen is None and events.overflowed:  # events were lost: ask the kernel
                tun = self.tun(U)
                if tun is not None and tun.up and CLIENT_TUN in tun.addresses:
                    return tun.name, tun.index
            return None if seen is None else (seen.name, seen.index)

        tun, why = self._wait_ready(self.client, ready, timeout)
        if tun is None:
            return self._client_tun_problem(why, timeout)
        self.up_tun[U] = tun[0]
        self._watch(U, *tun)
        self._settle(self.client)
        return None

    def _settle(self, side: Side) -> str:
        """Let `side` finish what it is doing (setting up after its TUN came up: a route, an
        address; reading a datagram): wait until it has settled (asleep with nothing unread,
        seen twice in a row), ended, or used SETTLE_CPU s of CPU meanwhile (busy for good,
        say flooding). No verdict here: it only keeps a probe from racing the program. How
        it ended: "settled", "ended" or "busy"."""
        cpu = cpu_seconds(own_pids(side))
        deadline = time.monotonic() + UP_WALL
        calm = 0
        while time.monotonic() < deadline:
            if ended(side):
                return "ended"
            calm = calm + 1 if quiet(side) else 0
            if calm >= 2:
                return "settled"
            if cpu_seconds(own_pids(side)) - cpu >= SETTLE_CPU:
                break
            time.sleep(POLL)
        return "busy"

    def _client_tun_problem(self, why: str | None, timeout: float) -> str:
        exited = self.client.exit_reason()
        tun = self.tun(U)
        if tun is None:
            taps = self.lab.rtnl(U).tun_devices("tap")
            if taps:
                return f"your client created {taps[0].name}, a TAP device: the lab needs a TUN"
            if exited:
                return f"{exited} (before creating a TUN)"
            if why is not None:
                return f"{self.client.who} created no TUN: {why}"
            return f"{self.client.who} did not create a TUN within {timeout:g} s"
        has = ", ".join(tun.addresses) or "no address"
        if CLIENT_TUN not in tun.addresses:
            problem = f"the client's TUN {tun.name} has {has}; it needs {CLIENT_TUN}"
        else:
            problem = (
                f"the client's TUN {tun.name} is down: bring it up (ip link set dev {tun.name} up)"
            )
        return f"{problem}; also, {exited}" if exited else problem

    def wait_server_up(self, timeout: float = UP_TIMEOUT) -> str | None:
        """Wait for the server's TUN (up, with an address) and UDP 9090; else why not."""

        def ready() -> tuple[str, int] | None:
            events = self.observe.events[SERVER]
            events.poll()
            found = [(t.name, t.index) for t in events.record.now() if t.up and t.addresses]
            if events.overflowed:  # events were lost: ask the kernel
                tun = self.tun(SERVER)
                found = [(tun.name, tun.index)] if tun and tun.up and tun.addresses else []
            return found[0] if found and _udp_bound(self.lab, SERVER, PORT) else None

        found, why = self._wait_ready(self.server, ready, timeout)
        if found is not None:
            self.up_tun[SERVER] = found[0]
            self._watch(SERVER, *found)
            self._settle(self.server)
            return None
        exited = self.server.exit_reason()
        if exited:
            return exited
        tun = self.tun(SERVER)
        after = f": {why}" if why else f" within {timeout:g} s"
        if tun is None:
            return f"{self.server.who} created no TUN{after}"
        if not (tun.up and tun.addresses):
            return f"the server's TUN {tun.name} is not up with an address"
        return f"{self.server.who} does not listen on UDP port {PORT}{after}"

    # -- probing --------------------------------------------------------------------------

    def echo(self, size: int, tag: str) -> Trace:
        """Ping V from U with a `size`-byte payload; tried again only while the evidence
        says the packet was still on its way (see the module's docstring)."""
        for attempt in range(1, PING_TRIES + 1):
            trace = self._echo_once(size, f"{tag}, try {attempt}")
            if trace.ended != "timeout" or not trace.to_server:
                return trace
        return trace

    def _echo_once(self, size: int, tag: str) -> Trace:
        data = self.data(size, tag)
        ident = int.from_bytes(secrets.token_bytes(2), "big")
        self.say(f"$ ping from U to {V_ADDR} with a {size}-byte payload ({tag})")
        since = time.time()
        reply, ended, problem = None, "timeout", ""
        with _icmp_socket(self.lab.ns(U)) as sock:
            try:
                sock.sendto(echo_request(ident, 1, data), (V_ADDR, 0))
            except OSError as exc:
                unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
                ended = "no route" if unreachable else "send failed"
                problem = f"the ping from U to {V_ADDR} could not be sent: {exc.strerror}"
            else:
                ended, reply, problem = self._answer(sock, ident)
        self.observe.sync()
        seen = self._seen(data, since)
        trace = Trace(size, data, reply, ended, problem, seen)
        if reply is not None:
            self.say("  reply, payload intact" if trace.intact else "  reply, payload altered")
        else:
            self.say(f"  no reply ({problem})")
        self.log.extend(trace.lines())
        return trace

    def _answer(self, sock: socket.socket, ident: int) -> tuple[str, bytes | None, str]:
        """Wait for the echo's answer: (how it ended, the reply's payload, a problem). A try
        ends without one once both ends have settled for STALL seconds (nothing moves), or
        once they used TRY_CPU seconds of CPU on it (busy with something else)."""
        ends = (self.client, self.server)
        cpu = sum(cpu_seconds(own_pids(side)) for side in ends)
        deadline = time.monotonic() + TRY_WALL
        calm_since: float | None = None
        while True:
            left = deadline - time.monotonic()
            if left > 0 and select.select([sock], [], [], min(POLL, left))[0]:
                packet, (source, _) = sock.recvfrom(65535 + 60)
                answer = echo_answer(packet, ident, 1)
                if answer is None:
                    continue
                kind, code, payload = answer
                if kind == ECHO_REPLY:
                    return "reply", payload, ""
                return "error", None, f"ICMP type {kind} code {code} from {source}"
            now = time.monotonic()
            if now >= deadline:
                return "timeout", None, f"no reply within {TRY_WALL:g} s"
            dead = [side for side in ends if ended(side)]
            calm = all(quiet(side) for side in ends)
            # Only once the end still running has settled too: woken by the ping, it has
            # then sent it on or not, and the evidence does not depend on the machine's load.
            if dead and calm:
                return "exited", None, f"{dead[0].who} exited"
            if calm and not dead:
                calm_since = now if calm_since is None else calm_since
                if now - calm_since >= STALL:
                    return "stalled", None, "no reply, and both ends wait with nothing to do"
                continue
            calm_since = None
            if sum(cpu_seconds(own_pids(side)) for side in ends) - cpu >= TRY_CPU:
                return "timeout", None, f"no reply while the ends used {TRY_CPU:g} s of CPU"

    def _seen(self, data: bytes, since: float) -> dict[str, list[Echo]]:
        seen = {}
        for key in POINTS[:4]:
            found = echoes(self.observe.frames(key, since), self.observe.linktypes[key])
            seen[key] = [e for e in found if e.carries(data)]
        for host, key in ((U, "U-tun"), (SERVER, "server-tun")):
            found = echoes(self.observe.tun_frames(host, since), LINKTYPE_RAW)
            seen[key] = [e for e in found if e.carries(data)]
        return seen

    def check_trace(self, trace: Trace, stage: str = "back") -> str | None:
        """`judge` the trace, and keep it as the task's path (`packet_path`)."""
        problem = judge(trace, stage, self.facts())
        self.last_judged = (trace, stage, problem)
        return problem

    def packet_path(self) -> PacketPath | None:
        """Where the last judged probe was seen, hop by hop (None: no probe was judged)."""
        if self.last_judged is None:
            return None
        trace, stage, problem = self.last_judged
        names = {host: self.up_tun.get(host) for host in (U, SERVER)}
        watched = {f"{host}-tun" for host in (U, SERVER) if self.observe.tuns.get(host)}
        probe = f"{trace.size}-byte ping from U to {V_ADDR}"
        return build_path(probe, trace.hops(), STAGE_HOPS[stage], problem, names, watched)

    def ping_path(self, size: int, tag: str, stage: str = "back") -> Trace:
        """An echo that must prove the path up to `stage`; Failed with the reason if not."""
        trace = self.echo(size, tag)
        problem = self.check_trace(trace, stage)
        if problem is not None:
            raise Failed(problem)
        return trace

    def tcp(self, data: bytes) -> str | None:
        """A TCP exchange from U with V's echo service, proven by V's link: None, or why not."""
        self.say(f"$ TCP exchange from U to {V_ADDR} port 7 ({len(data)} bytes, echoed back)")
        since = time.time()
        try:
            echoed = self.probes.tcp(U, V_ADDR, data, TCP_TIMEOUT)
        except ProbeFailed as exc:
            self.say(f"  {exc}")
            return str(exc)
        if echoed != data:
            self.say("  the bytes that came back differ from those sent")
            return "the TCP stream came back altered"
        self.say("  all bytes came back in order")
        return self.tcp_seen(data, since)

    def tcp_seen(self, data: bytes, since: float) -> str | None:
        """Whether V's link carried `data` from the client's TUN address to V's echo
        service and back, with nothing sent to the private net in clear from U."""
        self.observe.sync()
        clear = in_clear(self.observe.frames("U-eth0", since), PRIVATE_PREFIX)
        if clear:
            return (
                f"the TCP connection to V left U in clear on eth0 (to {clear[0].dst}), not "
                "inside UDP to the server"
            )
        at_v = segments(self.observe.frames("V-eth0", since))
        got = [
            s
            for s in at_v
            if not s.outgoing and (s.dst, s.dport) == (V_ADDR, ECHO_PORT) and s.data in data
        ]
        got = [s for s in got if s.data]
        answered = [
            s
            for s in at_v
            if s.outgoing and (s.src, s.sport) == (V_ADDR, ECHO_PORT) and s.data and s.data in data
        ]
        if not got:
            return "the TCP bytes came back, but V's link saw none of them: V did not echo them"
        if not any(s.src.startswith(TUN_PREFIX) for s in got):
            return (
                f"the TCP bytes reach V from {got[0].src}, outside {TUN_NET}: the packets "
                "must leave the server as they came out of the TUN"
            )
        if not answered:
            return "the TCP bytes came back, but V's link shows no answer from V"
        self.say("  seen on V's link: the bytes from the client's TUN address, and V's answer")
        return None


def _icmp_socket(ns: str) -> socket.socket:
    """A raw ICMP socket in `ns` that lets only echo replies and errors through; large
    payloads are fragmented by the kernel, as `ping -s 3000` does."""
    sock = namespace.socket_in(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    wanted = (1 << ECHO_REPLY) | (1 << 3) | (1 << 11)  # echo reply, unreachable, time exceeded
    sock.setsockopt(255, 1, struct.pack("I", ~wanted & 0xFFFFFFFF))  # SOL_RAW, ICMP_FILTER
    sock.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER: IP_PMTUDISC_DONT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


def _udp_bound(lab: Lab, host: str, port: int) -> bool:
    try:
        return port_bound_in(lab.ns(host), port, "udp")
    except OSError:
        return False
