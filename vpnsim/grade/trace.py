"""One probe's trace through the Tunneling lab, and the judgment of it: a verdict only from
evidence that the task's path was taken.

Every check probes with the grader's own packets (ICMP echoes and TCP bytes from U, each
probe with a payload no other probe has) and judges by where the captures saw them: U's
link and TUN, the server's links and TUN, V's link (`observe`). A task passes only when
the frames its path needs were captured; `judge` names the first place where the packet
was not seen and why (routes, ip_forward, a dead program). A reply that V never sent is no
pass: the reason says where it came from. Reasons hold nothing that changes from run to
run (no ephemeral port, PID or time), so two gradings of a class differ only where a
verdict did.

The lab's names and addresses are the SEED lab's, taken from `vpnsim.seed`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Protocol

from vpnsim.grade.packets import (
    ECHO_REPLY,
    ECHO_REQUEST,
    Echo,
)
from vpnsim.seed import seed_tunnel

_LAB = seed_tunnel()
_SPEC = _LAB.tunnel
assert _SPEC is not None  # the SEED lab has its tunnel


def _cidr(host: str, ifname: str) -> str:
    """The address/prefix of `host`'s interface `ifname` in the SEED lab."""
    interfaces = next(h.interfaces for h in _LAB.hosts if h.name == host)
    return next(i.address for i in interfaces if i.name == ifname)


def _address(host: str, ifname: str) -> str:
    return str(ipaddress.ip_interface(_cidr(host, ifname)).ip)


U, SERVER, V = _SPEC.client, _SPEC.server, "V"
U_ADDR, SERVER_ADDR = _address(U, "eth0"), _SPEC.server_address
SERVER_INNER, V_ADDR = _address(SERVER, "eth1"), _address(V, "eth0")
CLIENT_TUN = _SPEC.client_tun
TUN_NET = str(ipaddress.ip_interface(CLIENT_TUN).network)
PRIVATE_NET = _SPEC.client_routes[0]
OUTER_NET = str(ipaddress.ip_interface(_cidr(U, "eth0")).network)
TUN_PREFIX = str(ipaddress.ip_network(TUN_NET).network_address).rsplit(".", 1)[0] + "."
PRIVATE_PREFIX = str(ipaddress.ip_network(PRIVATE_NET).network_address).rsplit(".", 1)[0] + "."
PORT = _SPEC.port
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
