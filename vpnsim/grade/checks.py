"""The checks behind each task: a verdict only from evidence that the task's path was taken.

Every check probes with the grader's own packets (ICMP echoes and TCP bytes from U, each
probe with a payload no other probe has) and judges by where the captures saw them: U's
link and TUN, the server's links and TUN, V's link (`observe`). A task passes only when
the frames its path needs were captured; a failure names the first place where the packet
was not seen and why (routes, ip_forward, a dead program). A reply that V never sent is no
pass: the reason says where it came from. Reasons hold nothing that changes from run to
run (no ephemeral port, PID or time), so two gradings of a class differ only where a
verdict did.

Checks fail fast, and wait on what the programs do, not on the clock (a verdict must not
depend on the machine's load). A try of a ping ends when its reply or an ICMP error comes,
when a program exits, when both ends have settled (asleep, nothing unread on their
sockets) without a reply: nothing is moving any more; or when the ends used TRY_CPU s of
CPU without answering. Only that last kind is tried again, and only when a datagram
carrying the ping had left U (a flooded end may drop one). An end that will not come up is
given up on when it exits, waits for input that will never come (blocked in recvfrom(),
say), uses UP_CPU s of CPU, or sleeps UP_TIMEOUT s; wall clocks are only backstops.
"""

from __future__ import annotations

import errno
import itertools
import os
import platform
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pyroute2.netlink.exceptions import NetlinkError

from vpnsim import proc
from vpnsim.grade.observe import Observation
from vpnsim.grade.packets import (
    ECHO_REPLY,
    ECHO_REQUEST,
    Echo,
    echo_answer,
    echoes,
    in_clear,
    segments,
    tunneled,
)
from vpnsim.grade.path import PacketPath, build_path
from vpnsim.grade.sides import Side, crash_summary
from vpnsim.net import namespace
from vpnsim.net.rtnl import Link, NetlinkFailure
from vpnsim.net.sysctl import SysctlError, get_sysctl
from vpnsim.proc import port_bound_in, process_tree
from vpnsim.topology import Lab
from vpnsim.traffic.capture import LINKTYPE_RAW
from vpnsim.traffic.echo import ECHO_PORT
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.icmp import echo_request
from vpnsim.traffic.probes import Probes

U, SERVER, V = "U", "server", "V"
U_ADDR, SERVER_ADDR, SERVER_INNER, V_ADDR = "10.9.0.5", "10.9.0.11", "192.168.60.11", "192.168.60.5"
CLIENT_TUN = "192.168.53.99/24"
TUN_NET, PRIVATE_NET = "192.168.53.0/24", "192.168.60.0/24"
TUN_PREFIX, PRIVATE_PREFIX = "192.168.53.", "192.168.60."
PORT = 9090
# Waits end on what the programs did, not on how long the machine took: CPU seconds they
# used, seconds they slept. Wall-clock limits are only backstops for starved programs.
UP_TIMEOUT = 10.0  # the "no TUN within 10 s": seconds an end may sleep before it
UP_CPU = 3.0  # CPU seconds an end may use before its TUN is up (a SEED client: 0.6-0.9)
UP_WALL = 60.0  # backstop
BUSY = "it kept computing"  # ... whether UP_CPU or UP_WALL stopped the wait
EXIT_GRACE = 15.0  # for a jail to report the exit of a program whose processes are gone
PROBE_TIMEOUT = 3.0  # the default of the lab's own probes (task1: no student program runs)
PING_TRIES = 3
TRY_CPU = 0.5  # CPU seconds the ends may use on a try without answering (one echo: ~1 ms)
TRY_WALL = 10.0  # backstop
STALL = 0.5  # seconds both ends must stay settled, without a reply, before a try gives up
POLL = 0.02
SETTLE_CPU = 0.5  # CPU seconds an end may use finishing what it does before it is busy
TCP_TIMEOUT = 10.0  # after a ping made the round trip: only a broken exchange waits it out
GARBAGE = b"\x00vpnsim: this datagram is not an IP packet \xff\xfe"
TCP_DATA = bytes(range(200, 256)) * 4  # a telnet-sized exchange: big packets are `large`
EPHEMERAL = (32768, 60999)  # the kernel's ip_local_port_range: ports no student chose
POINTS = ("U-eth0", "server-eth0", "server-eth1", "V-eth0", "U-tun", "server-tun")
STAGE_HOPS = {"server": 3, "v": 7, "back": 12}  # the hops of Trace.hops() a stage needs


class Failed(Exception):
    """A check's finding: the task failed for `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- what one ping left behind -------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """One echo from U to V: what came back, how the try ended, and where the captures saw
    the request and the reply (`seen`, by point: see POINTS)."""

    size: int
    payload: bytes
    reply: bytes | None  # the echoed payload that came back to U, if any
    ended: str  # "reply", "error", "no route", "exited", "stalled", "timeout", "send failed"
    problem: str  # the probe's own words when no reply came ("" otherwise)
    seen: dict[str, list[Echo]] = field(default_factory=dict)

    def at(
        self, point: str, kind: int, *, outgoing: bool | None = None, inside: bool | None = None
    ) -> list[Echo]:
        return [
            e
            for e in self.seen.get(point, ())
            if e.kind == kind
            and (outgoing is None or e.outgoing == outgoing)
            and (inside is None or (e.outer is not None) == inside)
        ]

    # the request, hop by hop
    @property
    def entered_u_tun(self) -> list[Echo]:
        return self.at("U-tun", ECHO_REQUEST, outgoing=True)

    @property
    def sent_inside(self) -> list[Echo]:
        return self.at("U-eth0", ECHO_REQUEST, outgoing=True, inside=True)

    @property
    def sent_clear(self) -> list[Echo]:
        return self.at("U-eth0", ECHO_REQUEST, outgoing=True, inside=False)

    @property
    def to_server(self) -> list[Echo]:
        return [e for e in self.sent_inside if _outer(e) == (SERVER_ADDR, PORT)]

    @property
    def arrived(self) -> list[Echo]:
        return [
            e
            for e in self.at("server-eth0", ECHO_REQUEST, outgoing=False, inside=True)
            if _outer(e) == (SERVER_ADDR, PORT)
        ]

    @property
    def written(self) -> list[Echo]:
        """Written into the server's TUN by a program (a TUN's incoming frames)."""
        return self.at("server-tun", ECHO_REQUEST, outgoing=False)

    @property
    def at_v(self) -> list[Echo]:
        return self.at("V-eth0", ECHO_REQUEST, outgoing=False, inside=False)

    @property
    def v_replied(self) -> list[Echo]:
        return self.at("V-eth0", ECHO_REPLY, outgoing=True, inside=False)

    # the reply, hop by hop
    @property
    def into_server_tun(self) -> list[Echo]:
        return self.at("server-tun", ECHO_REPLY, outgoing=True)

    @property
    def back_from_server(self) -> list[Echo]:
        return [
            e
            for e in self.at("server-eth0", ECHO_REPLY, outgoing=True, inside=True)
            if e.outer is not None and e.outer.src == SERVER_ADDR
        ]

    @property
    def back_at_u(self) -> list[Echo]:
        return [
            e
            for e in self.at("U-eth0", ECHO_REPLY, outgoing=False, inside=True)
            if e.outer is not None and e.outer.src == SERVER_ADDR
        ]

    @property
    def back_clear(self) -> list[Echo]:
        return self.at("U-eth0", ECHO_REPLY, outgoing=False, inside=False)

    @property
    def into_u_tun(self) -> list[Echo]:
        """Written into U's TUN by a program."""
        return self.at("U-tun", ECHO_REPLY, outgoing=False)

    @property
    def intact(self) -> bool:
        return self.reply == self.payload

    def hops(self) -> list[tuple[str, str, bool]]:
        """The probe's path out and back, hop by hop: (capture point, "out" or "back", seen
        there as the tunnel carries it: inside UDP to the server's port between U and the
        server, from the client's TUN address between the server and V). `vpnsim.grade.path`
        draws it."""
        return [
            ("U-tun", "out", bool(self.entered_u_tun)),
            ("U-eth0", "out", bool(self.to_server)),
            ("server-eth0", "out", bool(self.arrived)),
            ("server-tun", "out", bool(self.written)),
            ("server-eth1", "out", bool(self._from_tun("server-eth1", ECHO_REQUEST, True))),
            ("V-eth0", "out", bool(self._from_tun("V-eth0", ECHO_REQUEST, False))),
            ("V-eth0", "back", bool(self.v_replied)),
            ("server-eth1", "back", bool(self.at("server-eth1", ECHO_REPLY, outgoing=False))),
            ("server-tun", "back", bool(self.into_server_tun)),
            ("server-eth0", "back", bool(self.back_from_server)),
            ("U-eth0", "back", bool(self.back_at_u)),
            ("U-tun", "back", bool(self.into_u_tun)),
        ]

    def _from_tun(self, point: str, kind: int, outgoing: bool) -> list[Echo]:
        found = self.at(point, kind, outgoing=outgoing, inside=False)
        return [e for e in found if e.src.startswith(TUN_PREFIX)]

    def lines(self) -> list[str]:
        """What the captures saw, hop by hop, for the log."""
        hops = [
            ("into U's TUN", self.entered_u_tun),
            ("out of U in clear", self.sent_clear),
            ("out of U inside UDP", self.sent_inside),
            ("at the server inside UDP to 9090", self.arrived),
            ("written into the server's TUN", self.written),
            ("out of the server's eth1", self.at("server-eth1", ECHO_REQUEST, outgoing=True)),
            ("at V", self.at_v),
            ("V's reply", self.v_replied),
            ("reply into the server's TUN", self.into_server_tun),
            ("reply out of the server inside UDP", self.back_from_server),
            ("reply at U inside UDP from the server", self.back_at_u),
            ("reply at U in clear", self.back_clear),
            ("reply written into U's TUN", self.into_u_tun),
        ]
        seen = [f"{what} ({_where(found[0])})" for what, found in hops if found]
        return [f"  seen: {'; '.join(seen) or 'nowhere'}"]


def _outer(echo: Echo) -> tuple[str, int] | None:
    return None if echo.outer is None else (echo.outer.dst, echo.outer.dport)


def _where(echo: Echo) -> str:
    inner = f"{echo.src} > {echo.dst}"
    if echo.outer is None:
        return inner
    o = echo.outer
    return f"{inner} in UDP {o.src}:{o.sport} > {o.dst}:{o.dport}"


def port_words(port: int) -> str:
    """A port as a reason may name it: one a program chose, not the kernel's ephemeral one."""
    return "another port" if EPHEMERAL[0] <= port <= EPHEMERAL[1] else f"port {port}"


# -- what the lab says, read at the moment of judgment ---------------------------------------


class Facts(Protocol):
    """The state a diagnosis may need, read when asked (a program may have died since)."""

    client: str  # "your client", "the reference client"
    server: str

    def exited(self, role: str) -> str | None: ...
    def tun_name(self, host: str) -> str | None: ...
    def tun_ready(self, host: str) -> bool: ...
    def route(self, host: str, dst: str) -> tuple[str, str | None, str | None] | None:
        """How `host` routes to `dst`: (type, device, gateway); None: no route."""
        ...

    def owner(self, host: str, address: str) -> str | None: ...
    def forwarding(self, host: str) -> str: ...
    def crashes(self, role: str) -> str:
        """The last traceback a running program's processes wrote (see crash_summary)."""
        ...

    def crash_count(self, role: str) -> int:
        """How many tracebacks the program's processes wrote."""
        ...


def judge(t: Trace, stage: str, f: Facts) -> str | None:
    """None when the trace proves the path up to `stage` ("server": the request reached the
    server inside UDP to its tunnel port; "v": it came out of the server's TUN to V, which
    answered; "back": the answer came back through the tunnel to U, intact), else the first
    thing missing, in words."""
    if t.reply is not None and not t.sent_inside and not t.sent_clear:
        return _answered_on_u(t, f)
    if t.sent_clear:
        return _left_in_clear(t, f)
    if not t.to_server:
        return _wrong_destination(t.sent_inside[0], f) if t.sent_inside else _not_sent(t, f)
    if not t.arrived:
        return (
            f"the datagram left U for {SERVER_ADDR}:{PORT} but did not arrive at the server's eth0"
        )
    if t.reply is not None and not t.back_at_u:
        return _reply_not_from_server(t, f)
    if stage == "server":
        return None
    if t.reply is not None and not t.v_replied:
        return _answered_without_v(t, f)
    if not t.written:
        return _not_written(t, f)
    if not t.at_v:
        return _not_at_v(f)
    inside = [e for e in t.at_v if e.src.startswith(TUN_PREFIX)]
    if not inside:
        return (
            f"the ping reaches V from {t.at_v[0].src}, outside {TUN_NET}: the packet must "
            "leave the server as it came out of the TUN"
        )
    if not t.v_replied:
        return f"V receives the ping from {inside[0].src} but does not answer it"
    if stage == "v":
        return None
    return _return_problem(t, f)


def _answered_on_u(t: Trace, f: Facts) -> str:
    owner = f.owner(U, V_ADDR)
    note = f" ({V_ADDR} is an address of U, on {owner})" if owner else ""
    return f"answered on U itself: no request left U{note}"


def _left_in_clear(t: Trace, f: Facts) -> str:
    route = f.route(U, V_ADDR)
    how = _route_words(route) if route else "somewhere"
    tun = f.tun_name(U) or "the TUN"
    where = "U routes" if route else "the packet goes"
    also = " (a copy also left inside UDP)" if t.sent_inside else ""
    answered = "; V answered it in clear" if t.v_replied and t.back_clear else ""
    return (
        f"the ping left U in clear on eth0, not inside UDP to {SERVER_ADDR}:{PORT}{also}: "
        f"{where} {V_ADDR} {how}, not into {tun}{answered}"
    )


def _route_words(route: tuple[str, str | None, str | None]) -> str:
    kind, dev, gateway = route
    if kind == "local":
        return "to itself (a local address)"
    via = f"via {gateway} " if gateway else ""
    return f"{via}dev {dev or '?'}"


def _wrong_destination(e: Echo, f: Facts) -> str:
    assert e.outer is not None
    if e.outer.dst == SERVER_ADDR:
        return (
            f"{f.client} sends the tunneled packets to UDP {port_words(e.outer.dport)}; "
            f"the server listens on {PORT}"
        )
    return (
        f"{f.client} sends the tunneled packets to {e.outer.dst} "
        f"{port_words(e.outer.dport)}; the server is {SERVER_ADDR} port {PORT}"
    )


def _not_sent(t: Trace, f: Facts) -> str:
    """Nothing carrying the request left U."""
    if f.crash_count("client") > 1:
        # Processes of the program keep crashing (a fork bomb at its process or memory
        # limit): whether its first process is dead yet is the kernel's pick, not a finding.
        return (
            f"no UDP datagram carrying the ping left U: {f.client}'s processes crash: "
            + f.crashes("client")
        )
    exited = f.exited("client")
    if exited:
        return exited
    tun = f.tun_name(U)
    name = tun or "its TUN"
    route = f.route(U, V_ADDR)
    if route is None:
        return (
            f"no route to {PRIVATE_NET} into the TUN on U: add one "
            f"(ip route add {PRIVATE_NET} dev {name})"
        )
    if route[1] != tun:
        return (
            f"U routes {V_ADDR} {_route_words(route)}, not into {name}: route {PRIVATE_NET} "
            f"into the TUN (ip route add {PRIVATE_NET} dev {name})"
        )
    if t.entered_u_tun:
        crashes = f.crashes("client")
        return (
            f"the ping entered {name} but no UDP datagram carrying it left U: "
            f"{f.client} does not read its TUN or does not send what it reads"
            + (f"; its processes crash: {crashes}" if crashes else "")
        )
    return t.problem or f"the ping did not leave U ({t.ended})"


def _reply_not_from_server(t: Trace, f: Facts) -> str:
    if t.back_clear:
        return (
            f"the reply came back to U in clear from {t.back_clear[0].src}, not inside UDP "
            "from the server"
        )
    tun = f.tun_name(U) or "its TUN"
    if t.into_u_tun:
        return (
            f"answered on U by {f.client}: it wrote a reply into {tun} that no datagram "
            "from the server carried"
        )
    return "answered on U itself: no reply came from the server"


def _answered_without_v(t: Trace, f: Facts) -> str:
    owner = f.owner(SERVER, V_ADDR)
    note = f" ({V_ADDR} is an address of the server, on {owner})" if owner else ""
    if t.at_v:
        return f"answered by the server itself: V got the ping but sent no reply{note}"
    return f"answered by the server itself: V's link saw nothing{note}"


def _not_written(t: Trace, f: Facts) -> str:
    tun = f.tun_name(SERVER)
    name = tun or "its TUN"
    if t.at_v:
        return (
            f"the ping reached V without coming out of the server's TUN {name} (nothing was "
            f"written to it): {f.server} sent it onto eth1 another way; write it to the TUN"
        )
    exited = f.exited("server")
    if exited:
        return exited
    if tun is None or not f.tun_ready(SERVER):
        return f"{f.server} has no TUN up with an address"
    return (
        f"the tunneled packets reach the server on UDP {PORT}, but {f.server} never "
        f"writes them to its TUN {name}"
    )


def _not_at_v(f: Facts) -> str:
    name = f.tun_name(SERVER) or "its TUN"
    if f.forwarding(SERVER) == "0":
        return (
            f"ip_forward is off on server: the packet came out of {name} but the server "
            "does not forward it to V"
        )
    return f"the packet came out of the server's TUN {name} but never reached V"


def _return_problem(t: Trace, f: Facts) -> str | None:
    """V answered: the way back, server's TUN -> UDP to U -> U's TUN -> the ping."""
    tun = f.tun_name(SERVER)
    name = tun or "its TUN"
    if not t.into_server_tun:
        exited = f.exited("server")  # its TUN, and the route into it, went with it
        if exited:
            return exited
        route = f.route(SERVER, t.v_replied[0].dst)
        if route is None or route[1] != tun:
            return f"no route to {TUN_NET} into the TUN on server: V's replies cannot enter {name}"
        return f"V's reply reached the server but did not enter its TUN {name}"
    if not t.back_from_server:
        exited = f.exited("server")
        if exited:
            return exited
        return f"{f.server} never reads its TUN: requests reach V, replies stop at the server"
    ports = {e.outer.sport for e in t.to_server if e.outer is not None}
    right = [
        e
        for e in t.back_from_server
        if e.outer is not None and e.outer.dst == U_ADDR and e.outer.dport in ports
    ]
    if not right:
        o = t.back_from_server[0].outer
        assert o is not None
        if o.dst != U_ADDR:
            return (
                f"{f.server} sends the replies to {o.dst}, but the client is {U_ADDR}: "
                "answer the address the datagrams came from"
            )
        return (
            f"{f.server} sends the replies to {port_words(o.dport)} on U, not to the port "
            "the client's datagrams come from: answer the address and port they came from"
        )
    if not t.back_at_u:
        return f"the replies left the server for {U_ADDR} but did not arrive at U"
    if t.intact:
        return None
    if not t.into_u_tun:
        exited = f.exited("client")
        if exited:
            return exited
        return f"the replies reach U inside UDP, but {f.client} never writes them to its TUN"
    if t.reply is None:
        return "the replies reach U's TUN but the ping gets no answer"
    return f"the reply to a {t.size}-byte ping came back with a different payload"


# -- the lab's ends, as processes --------------------------------------------------------


def _own(side: Side) -> list[int]:
    """The processes of `side`'s program, without the jail's own (its supervisor and init
    run the grader's code, not the student's)."""
    members = process_tree(side.program.pid)
    if not side.jail:
        return members
    jail = [arg.encode() for arg in side.program.argv]
    own = []
    for pid in members:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        jailer = argv == jail or any(arg.startswith(b"vpnsim.grade.") for arg in argv[:3])
        if not jailer and not _exiting(pid):
            own.append(pid)
    return own


PF_EXITING = 0x4  # linux/sched.h: the process is in do_exit()


def _exiting(pid: int) -> bool:
    """Dead, or on its way out (a zombie, or exiting: it closes its files, its TUN goes)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)


def ended(side: Side) -> bool:
    """Whether `side`'s program is over: exited, or (jailed) its own processes are all gone
    while the jail winds down. Only for a program known to have started (it is up)."""
    return not side.program.running() or (bool(side.jail) and not _own(side))


def exit_reason(side: Side, grace: float = EXIT_GRACE) -> str | None:
    """`side.exit_reason()`, read now; when the program is over but its jail has not
    reported the exit yet, once it has (within `grace` seconds)."""
    deadline = time.monotonic() + grace
    while side.program.running() and ended(side) and time.monotonic() < deadline:
        time.sleep(POLL)
    return side.exit_reason()


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time used by `pids` and their reaped children."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / _TICK


# x86_64 system calls that wait for input with no timeout: (name, index of the timeout
# argument that must be NULL, or -1 for "never times out"). Others: not known to wait forever.
_UNTIMED: dict[int, tuple[str, int]] = {
    0: ("read", -1),
    17: ("pread64", -1),
    19: ("readv", -1),
    43: ("accept", -1),
    45: ("recvfrom", -1),
    47: ("recvmsg", -1),
    61: ("wait4", -1),
    247: ("waitid", -1),
    288: ("accept4", -1),
    34: ("pause", -1),
    130: ("rt_sigsuspend", -1),
    23: ("select", 4),
    270: ("select", 4),  # pselect6
    271: ("poll", 2),  # ppoll
    441: ("epoll_pwait2", 3),
    202: ("futex", 3),
}
_NO_TIMEOUT_MS = {7: ("poll", 2), 232: ("epoll_wait", 3), 281: ("epoll_wait", 3)}  # -1: none
_MACHINE = platform.machine()


def waits_forever(pid: int) -> str | None:
    """The system call every thread of `pid` is blocked in without a timeout (its name),
    or None (running, sleeping on a timer, or not known to wait forever)."""
    if _MACHINE != "x86_64":
        return None
    names = []
    try:
        for task in sorted(os.listdir(f"/proc/{pid}/task"), key=int):  # the main thread first
            fields = Path(f"/proc/{pid}/task/{task}/syscall").read_text().split()
            if len(fields) < 7 or not fields[0].isdigit():
                return None  # "running", or blocked outside a system call
            number, args = int(fields[0]), [int(a, 16) for a in fields[1:7]]
            if number in _UNTIMED:
                name, timeout = _UNTIMED[number]
                if timeout >= 0 and args[timeout] != 0:
                    return None
            elif number in _NO_TIMEOUT_MS:
                name, timeout = _NO_TIMEOUT_MS[number]
                if args[timeout] & 0xFFFFFFFF != 0xFFFFFFFF:
                    return None
            else:
                return None
            names.append(name)
    except (OSError, ValueError):
        return None
    return names[0] if names else None


def stuck(side: Side) -> str | None:
    """Why `side` will not get any further on its own: it waits for input that nothing will
    send (blocked in recvfrom(), say, with nothing unread), or it keeps computing; None
    while it may still get somewhere (and once it exited: see exit_reason)."""
    program = side.program
    if not program.running():
        return None
    own = _own(side)
    if _cpu_seconds(own) >= UP_CPU:
        return BUSY
    if not own or not proc.settled(program.pid):
        return None
    calls = [waits_forever(pid) for pid in own]
    if not calls or not all(calls) or not proc.settled(program.pid):
        return None
    return f"it waits in {calls[0]}() for input that nothing sends it"


def quiet(side: Side) -> bool:
    """Exited, or asleep with nothing unread on its sockets."""
    return not side.program.running() or proc.settled(side.program.pid)


# -- the checks ----------------------------------------------------------------------------


@dataclass
class Tunnel:
    """One lab with its two ends running; what the checks need."""

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
                self.say(f"  up after {_cpu_seconds(_own(side)):.2f} s of CPU")
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
        cpu = _cpu_seconds(_own(side))
        deadline = time.monotonic() + UP_WALL
        calm = 0
        while time.monotonic() < deadline:
            if ended(side):
                return "ended"
            calm = calm + 1 if quiet(side) else 0
            if calm >= 2:
                return "settled"
            if _cpu_seconds(_own(side)) - cpu >= SETTLE_CPU:
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
        cpu = sum(_cpu_seconds(_own(side)) for side in ends)
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
            if sum(_cpu_seconds(_own(side)) for side in ends) - cpu >= TRY_CPU:
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

    # -- tasks ----------------------------------------------------------------------------

    def task3_to_server(self) -> str:
        trace = self.ping_path(64, "task3", "server")
        back = ", and the reply came back inside UDP from the server" if trace.reply else ""
        return (
            f"the ping to {V_ADDR} left U only inside UDP to {SERVER_ADDR}:{PORT} and "
            f"arrived at the server{back}"
        )

    def task4_to_v(self) -> str:
        trace = self.ping_path(64, "task4", "v")
        name = self.facts().tun_name(SERVER) or "its TUN"
        return (
            f"the ping came out of the server's TUN {name}, reached V from "
            f"{trace.at_v[0].src}, and V answered"
        )

    def task5_both_ways(self) -> str:
        self.ping_path(64, "task5")
        problem = self.tcp(self.data(24, "task5 tcp") + TCP_DATA)
        if problem is not None:
            raise Failed(f"ping works, but a TCP exchange from U to V fails: {problem}")
        return (
            "V's replies to the ping came back through the tunnel to U, and a TCP exchange "
            "with V worked (V's link carried its bytes)"
        )

    def large(self) -> str:
        for size in (1400, 3000):
            since = time.time()
            trace = self.echo(size, f"large {size}")
            problem = self.check_trace(trace)
            if problem is None:
                continue
            cut = self._cut(since)
            if cut:
                raise Failed(cut)
            raise Failed(f"no intact reply to a {size}-byte ping (64-byte pings work): {problem}")
        return "1400-byte and 3000-byte pings went through the tunnel to V and came back intact"

    def _cut(self, since: float) -> str | None:
        for link, src, who in (
            ("server-eth0", U_ADDR, self.client.who),
            ("U-eth0", SERVER_ADDR, self.server.who),
        ):
            frames = self.observe.frames(link, since)
            # The datagram (its UDP length, even when the capture holds only its first
            # fragment) is shorter than the packet inside says it is.
            cut = [
                t
                for t in tunneled(frames, src=src)
                if t.inner is not None and t.inner.total_length > t.outer.length
            ]
            if cut:
                size = max(t.outer.length for t in cut)
                return (
                    f"packets longer than {size} bytes are cut to {size} by {who}: read "
                    "from the TUN and the socket with a buffer larger than the MTU (e.g. 2048)"
                )
        return None

    def task7_routes_on_v(self) -> str:
        rtnl = self.lab.rtnl(V)
        self.say(f"$ on V: ip route del default; ip route add {TUN_NET} via {SERVER_INNER}")
        rtnl.delete_route("default")
        rtnl.add_route(TUN_NET, gateway=SERVER_INNER)
        try:
            trace = self.echo(64, "task7")
            problem = self.check_trace(trace)
            if problem is not None:
                raise Failed(f"with only a route to {TUN_NET} on V: {problem}")
            return (
                f"V, with only a route to {TUN_NET} via {SERVER_INNER}, answered U through "
                "the tunnel"
            )
        finally:
            self.say(f"$ on V: ip route del {TUN_NET}; ip route add default via {SERVER_INNER}")
            rtnl.delete_route(TUN_NET)
            rtnl.add_route("default", gateway=SERVER_INNER)

    def task6_restart(self) -> str:
        first = self.data(24, "before") + b" typed before the restart\n"
        second = self.data(24, "after") + b" typed after the restart\n"
        self.say(f"$ open a TCP session from U to {V_ADDR} port 7")
        try:
            with self.probes.tcp_session(U, V_ADDR, TCP_TIMEOUT) as session:
                session.send(first)
                session.receive(len(first), TCP_TIMEOUT)
                self.say("  echoed; now kill the client")
                old_ports = self._client_ports()
                self.client_mark = self.observe.events[U].mark()
                self.client = self.restart_client()
                self.say("$ start the client again")
                problem = self.wait_client_up()
                if problem is not None:
                    raise Failed(f"the restarted client did not come up: {problem}")
                since = time.time()
                session.send(second)
                self.say(f"  sent {len(second)} more bytes on the same session")
                try:
                    session.receive(len(second), 10.0)
                except ProbeFailed as exc:
                    raise Failed(self._why_not_resumed(str(exc), since, old_ports)) from None
                self.say("  echoed")
                seen = self.tcp_seen(second, since)
                if seen is not None:
                    raise Failed(f"after the client restart: {seen}")
        except ProbeFailed as exc:
            raise Failed(f"the TCP session failed before the restart: {exc}") from None
        return (
            "after killing and restarting the client, the TCP session resumed through the "
            "tunnel (V's link carried the bytes sent after the restart)"
        )

    def _client_ports(self) -> set[int]:
        self.observe.sync()
        frames = self.observe.frames("server-eth0", time.time() - 30)
        return {t.outer.sport for t in tunneled(frames, src=U_ADDR, dst=SERVER_ADDR)}

    def _why_not_resumed(self, probe: str, since: float, old_ports: set[int]) -> str:
        for side in (self.client, self.server):
            why = exit_reason(side)
            if why is not None:
                return why
        self.observe.sync()
        frames = self.observe.frames("server-eth0", since)
        back = tunneled(frames, src=SERVER_ADDR)
        new_ports = {t.outer.sport for t in tunneled(frames, dst=SERVER_ADDR)} - old_ports
        stale = [t for t in back if t.outer.dport in old_ports]
        if stale and new_ports:
            return (
                "the session did not resume: the server keeps sending to the old client's "
                "port, not the new client's; learn the client's address from each datagram"
            )
        return f"the session did not resume after the client restart: {probe}"

    def robust(self) -> str:
        before = _udp_read(self.lab, SERVER)
        self.say(
            f"$ from U, a {len(GARBAGE)}-byte datagram that is no IP packet to {SERVER_ADDR}:{PORT}"
        )
        with namespace.socket_in(self.lab.ns(U), socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(GARBAGE, (SERVER_ADDR, PORT))
        self._settle_after_garbage(before)
        why = exit_reason(self.server)
        if why is not None:
            raise Failed(f"after a garbage datagram on UDP {PORT}, {why}")
        trace = self.echo(64, "after garbage")
        problem = self.check_trace(trace)
        if problem is not None:
            why = exit_reason(self.server)  # it may have died since, on a busy machine
            if why is not None:
                raise Failed(f"after a garbage datagram on UDP {PORT}, {why}")
            raise Failed(
                "the server runs, but the tunnel stopped working after a garbage datagram: "
                + problem
            )
        return "the server ignored a garbage datagram and the tunnel still works"

    def _settle_after_garbage(self, before: int) -> None:
        """Wait until the server has read the garbage (its namespace's UDP reads moved) and
        then settled, or has ended; a server kept busy (flooded) is judged by the ping,
        whose failure reads its exit status again."""
        side = self.server
        cpu = _cpu_seconds(_own(side))
        deadline = time.monotonic() + UP_WALL
        while time.monotonic() < deadline and not ended(side):
            if _udp_read(self.lab, SERVER) > before:
                how = self._settle(side)
                self.say(f"  the server read it and {'is still busy' if how == 'busy' else how}")
                return
            if _cpu_seconds(_own(side)) - cpu >= SETTLE_CPU:
                self.say("  the server is busy with other datagrams")
                return
            time.sleep(POLL)

    def round_trip(self) -> str:
        """Ping and TCP from U to V (the interop tasks), proven by the captures."""
        self.ping_path(64, "interop")
        problem = self.tcp(self.data(24, "interop tcp") + TCP_DATA)
        if problem is not None:
            raise Failed(f"ping works, but a TCP exchange from U to V fails: {problem}")
        return "ping and a TCP exchange from U to V went through the tunnel, and V answered both"


class LabFacts:
    """Facts read from the running lab when a diagnosis asks for them."""

    def __init__(self, tunnel: Tunnel) -> None:
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


def _icmp_socket(ns: str) -> socket.socket:
    """A raw ICMP socket in `ns` that lets only echo replies and errors through; large
    payloads are fragmented by the kernel, as `ping -s 3000` does."""
    sock = namespace.socket_in(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    wanted = (1 << ECHO_REPLY) | (1 << 3) | (1 << 11)  # echo reply, unreachable, time exceeded
    sock.setsockopt(255, 1, struct.pack("I", ~wanted & 0xFFFFFFFF))  # SOL_RAW, ICMP_FILTER
    sock.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER: IP_PMTUDISC_DONT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


def lab_damage(lab: Lab) -> str | None:
    """The lab's own interfaces that are gone (a program deleted them), or None."""
    missing = []
    for host in lab.scenario.hosts:
        try:
            present = {link.name for link in lab.rtnl(host.name).links()}
        except NetlinkFailure:
            continue
        gone = [i.name for i in host.interfaces if i.name not in present]
        if gone:
            missing.append(f"{host.name} lost {', '.join(gone)}")
    return "; ".join(missing) or None


def _udp_bound(lab: Lab, host: str, port: int) -> bool:
    try:
        return port_bound_in(lab.ns(host), port, "udp")
    except OSError:
        return False


def _udp_read(lab: Lab, host: str) -> int:
    """UDP datagrams programs in `host` have read so far (the kernel counts InDatagrams
    when a program receives one, not when it arrives)."""
    try:
        with namespace.entered(lab.ns(host)):
            lines = Path("/proc/thread-self/net/snmp").read_text().splitlines()
    except OSError:
        return 0
    rows = [line.split() for line in lines if line.startswith("Udp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:], strict=False)).get("InDatagrams", 0))


def _forwarding(lab: Lab, host: str) -> str:
    try:
        return get_sysctl(lab.ns(host), "net.ipv4.ip_forward")
    except SysctlError:
        return "?"
