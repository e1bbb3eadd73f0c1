"""The checks behind each task, with a diagnosis when one fails.

Every check probes with real packets (vpnsim's own ICMP/TCP probes from U) and, when it
fails, looks at where the packets stopped: the captures of the links around the server, the
TUN counters, routes and ip_forward, and whether a program died. A reason names what the
student should change, not only what went wrong.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vpnsim.grade.observe import Observation
from vpnsim.grade.packets import (
    ECHO_REPLY,
    ECHO_REQUEST,
    IpSummary,
    Tunneled,
    plain,
    tunneled,
)
from vpnsim.grade.sides import Side
from vpnsim.net import namespace
from vpnsim.net.rtnl import Link, NetlinkFailure
from vpnsim.net.sysctl import SysctlError, get_sysctl
from vpnsim.proc import port_bound_in
from vpnsim.topology import Lab
from vpnsim.traffic.capture import Frame
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.probes import Probes

U, SERVER, V = "U", "server", "V"
U_ADDR, SERVER_ADDR, SERVER_INNER, V_ADDR = "10.9.0.5", "10.9.0.11", "192.168.60.11", "192.168.60.5"
CLIENT_TUN = "192.168.53.99/24"
TUN_NET, PRIVATE_NET = "192.168.53.0/24", "192.168.60.0/24"
PORT = 9090
UP_TIMEOUT = 10.0  # the "no TUN within 10 s"
PROBE_TIMEOUT = 3.0  # for all tries of a ping together
PING_TRIES = 3
TCP_TIMEOUT = 5.0
GARBAGE = b"\x00vpnsim: this datagram is not an IP packet \xff\xfe"
TCP_DATA = bytes(range(200, 256)) * 4  # a telnet-sized exchange: big packets are `large`


def payload(size: int, tag: str) -> bytes:
    """A recognisable payload of exactly `size` bytes."""
    text = f"vpnsim {tag} ".encode()
    return (text * (size // len(text) + 1))[:size]


class Failed(Exception):
    """A check's finding: the task failed for `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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

    # -- small helpers --------------------------------------------------------------------

    def say(self, line: str) -> None:
        self.log.append(line)

    def ping(self, size: int, tag: str, timeout: float = PROBE_TIMEOUT) -> str | None:
        """Ping V from U with a `size`-byte payload, up to PING_TRIES times (one lost packet
        must not fail a student); None once the exact payload came back, else why not."""
        data = payload(size, tag)
        problem = ""
        for attempt in range(1, PING_TRIES + 1):
            self.say(f"$ ping from U to {V_ADDR} with a {size}-byte payload ({tag}, try {attempt})")
            try:
                reply = self.probes.ping(U, V_ADDR, data, timeout / PING_TRIES)
            except ProbeFailed as exc:
                self.say(f"  {exc}")
                problem = str(exc)
                continue
            if reply.payload == data:
                self.say(f"  reply from {reply.source}, payload intact")
                return None
            problem = f"the reply to a {size}-byte ping came back with a different payload"
            self.say(f"  {problem}")
        return problem

    def tcp(self, data: bytes = TCP_DATA) -> str | None:
        self.say(f"$ TCP exchange from U to {V_ADDR} port 7 ({len(data)} bytes, echoed back)")
        try:
            echoed = self.probes.tcp(U, V_ADDR, data, TCP_TIMEOUT)
        except ProbeFailed as exc:
            self.say(f"  {exc}")
            return str(exc)
        if echoed != data:
            self.say("  the bytes that came back differ from those sent")
            return "the TCP stream came back altered"
        self.say("  all bytes came back in order")
        return None

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
        for route in self.lab.rtnl(host).routes():
            if route.dst == dst:
                return route.dev or route.gateway or "?"
        return None

    def tun_written(self, host: str) -> int:
        """Packets programs wrote into the host's TUN (its rx counter). Its tx counter counts
        only what a program read, so it cannot show a TUN nobody reads."""
        tun = self.tun(host)
        if tun is None:
            return 0
        try:
            return self.lab.rtnl(host).counters(tun.name).rx_packets
        except NetlinkFailure:
            return 0

    def died(self, *sides: Side) -> None:
        for side in sides:
            why = side.exit_reason()
            if why is not None:
                raise Failed(why)

    def tunneled_to_server(self, since: float, kind: int, dst: str) -> list[Tunneled]:
        def wanted(found: list[Tunneled]) -> list[Tunneled]:
            return [t for t in found if t.inner is not None and t.inner.is_echo(kind, dst=dst)]

        frames = self.observe.wait_for(
            "server-eth0", since, lambda fr: bool(wanted(tunneled(fr, dst=SERVER_ADDR)))
        )
        return wanted(tunneled(frames, dst=SERVER_ADDR))

    # -- readiness ------------------------------------------------------------------------

    def wait_client_up(self, timeout: float = UP_TIMEOUT) -> str | None:
        """Wait for the client's TUN with its address, up; None once it is, else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tun = self.tun(U)
            if tun is not None and tun.up and CLIENT_TUN in tun.addresses:
                self._settle_route()
                return None
            if self.client.exit_reason() is not None:
                break
            time.sleep(0.02)
        return self._client_tun_problem(timeout)

    def _settle_route(self) -> None:
        """Students add the route right after the address: give it a moment (no verdict)."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self.route_dev(U, PRIVATE_NET) is None:
            time.sleep(0.02)

    def _client_tun_problem(self, timeout: float) -> str:
        exited = self.client.exit_reason()
        tun = self.tun(U)
        if tun is None:
            taps = self.lab.rtnl(U).tun_devices("tap")
            if taps:
                return f"your client created {taps[0].name}, a TAP device: the lab needs a TUN"
            if exited:
                return f"{exited} (before creating a TUN)"
            return f"your client did not create a TUN within {timeout:g} s"
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tun = self.tun(SERVER)
            bound = _udp_bound(self.lab, SERVER, PORT)
            if tun is not None and tun.up and tun.addresses and bound:
                return None
            if self.server.exit_reason() is not None:
                break
            time.sleep(0.02)
        exited = self.server.exit_reason()
        if exited:
            return exited
        tun = self.tun(SERVER)
        if tun is None:
            return f"{self.server.who} did not create a TUN within {timeout:g} s"
        if not (tun.up and tun.addresses):
            return f"the server's TUN {tun.name} is not up with an address"
        return f"{self.server.who} does not listen on UDP port {PORT}"

    # -- tasks ----------------------------------------------------------------------------

    def task3_to_server(self) -> str:
        since = time.time()
        answered = self.ping(64, "task3") is None
        arrived = self.tunneled_to_server(since, ECHO_REQUEST, V_ADDR)
        on_port = [t for t in arrived if t.outer.dport == PORT]
        # V answering through a server that listens on 9090 proves it as well: a flooded
        # link makes the capture, not the tunnel, drop frames. One reason either way, so a
        # regrade says the same; the log says which proof it was.
        if on_port or (answered and _udp_bound(self.lab, SERVER, PORT)):
            self.say("  seen inside UDP to port 9090" if on_port else "  answered via UDP 9090")
            return f"the ping to {V_ADDR} arrived at the server inside UDP to port {PORT}"
        raise Failed(self._why_not_at_server(arrived, since))

    def _why_not_at_server(self, arrived: list[Tunneled], since: float) -> str:
        """Why a ping from U to V did not reach the server inside UDP to port 9090."""
        if arrived:
            port = arrived[0].outer.dport
            return (
                f"your client sends the tunneled packets to UDP port {port}; "
                f"the server listens on {PORT}"
            )
        self.died(self.client)
        tun = self.tun(U)
        name = tun.name if tun else "its TUN"
        dev = self.route_dev(U, PRIVATE_NET)
        if dev is None or (tun is not None and dev != tun.name):
            into = "no route" if dev is None else f"the route goes to {dev}, not"
            return (
                f"{into} to {PRIVATE_NET} into the TUN on U: add one "
                f"(ip route add {PRIVATE_NET} dev {name})"
            )
        elsewhere = [
            t
            for t in tunneled(self.observe.frames("U-eth0", since), src=U_ADDR)
            if t.inner is not None and t.inner.is_echo(ECHO_REQUEST, dst=V_ADDR)
        ]
        if elsewhere:
            t = elsewhere[0]
            if (t.outer.dst, t.outer.dport) == (SERVER_ADDR, PORT):
                return (
                    f"the datagram left U for {SERVER_ADDR}:{PORT} but was not seen at the "
                    "server: lost on the way (is something flooding the link?)"
                )
            return (
                f"your client sends the tunneled packets to {t.outer.dst}:{t.outer.dport}; "
                f"the server is {SERVER_ADDR}:{PORT}"
            )
        return (
            f"the ping entered {name} but no UDP datagram carrying it left U: "
            f"{self.client.who} does not read its TUN or does not send what it reads"
        )

    def task4_to_v(self) -> str:
        before = self.tun_written(SERVER)
        since = time.time()
        answered = self.ping(64, "task4") is None

        def at_v(frames: list[Frame]) -> list[IpSummary]:
            return [
                ip
                for ip in plain(frames)
                if ip.is_echo(ECHO_REQUEST, dst=V_ADDR) and ip.src.startswith("192.168.53.")
            ]

        frames = self.observe.wait_for("V-eth0", since, lambda fr: bool(at_v(fr)))
        found = at_v(frames)
        if found or answered:  # V's reply is proof it got the request, whatever the capture missed
            self.say(f"  seen at V from {found[0].src}" if found else "  V answered")
            return "the ping left the server's TUN and reached V"
        raise Failed(self._why_not_at_v(before))

    def _why_not_at_v(self, before: int) -> str:
        """Why a ping that reached the server inside UDP 9090 did not reach V."""
        self.died(self.server)
        tun = self.tun(SERVER)
        if tun is None or not (tun.up and tun.addresses):
            state = f" ({tun.name}: {'up' if tun.up else 'down'})" if tun else ""
            return f"{self.server.who} has no TUN up with an address{state}"
        written = self.tun_written(SERVER) - before
        if written == 0:
            return (
                f"the tunneled packets reach the server on UDP {PORT}, but {self.server.who} "
                f"never writes them to its TUN {tun.name}"
            )
        if _forwarding(self.lab, SERVER) == "0":
            return (
                f"ip_forward is off on server: the packet came out of {tun.name} but the "
                "server does not forward it to V"
            )
        return f"the packet came out of the server's TUN {tun.name} but never reached V"

    def task5_both_ways(self) -> str:
        problem = self.ping(64, "task5")
        if problem is not None:
            raise Failed(self.diagnose_return())
        problem = self.tcp()
        if problem is not None:
            raise Failed(f"ping works, but a TCP exchange from U to V fails: {problem}")
        return "ping replies came back to U, and a TCP exchange with V worked"

    def diagnose_return(self) -> str:
        """Why a ping from U to V got no reply, once it is known to reach V (or not)."""
        before_server = self.tun_written(SERVER)
        before_client = self.tun_written(U)
        since = time.time()
        self.ping(64, "diagnosis")
        self.died(self.client, self.server)
        requests = [
            ip
            for ip in plain(self.observe.frames("V-eth0", since))
            if ip.is_echo(ECHO_REQUEST, dst=V_ADDR)
        ]
        if not requests:
            arrived = self.tunneled_to_server(since, ECHO_REQUEST, V_ADDR)
            if any(t.outer.dport == PORT for t in arrived):
                return self._why_not_at_v(before_server)
            return self._why_not_at_server(arrived, since)
        replies = [
            ip
            for ip in plain(self.observe.frames("V-eth0", since))
            if ip.is_echo(ECHO_REPLY, src=V_ADDR)
        ]
        if not replies:
            return f"V receives the ping from {requests[0].src} but does not answer it"
        tun = self.tun(SERVER)
        name = tun.name if tun else "its TUN"
        dev = self.route_dev(SERVER, TUN_NET)
        if dev is None or (tun is not None and dev != tun.name):
            return f"no route to {TUN_NET} into the TUN on server: V's replies cannot enter {name}"
        back = [
            t
            for t in tunneled(self.observe.frames("server-eth0", since), src=SERVER_ADDR)
            if t.inner is not None and t.inner.is_echo(ECHO_REPLY, src=V_ADDR)
        ]
        if not back:  # the replies are routed into the TUN (checked above) and stop there
            return (
                f"{self.server.who} never reads its TUN: requests reach V, replies stop at "
                "the server"
            )
        client_ports = {
            t.outer.sport
            for t in tunneled(self.observe.frames("server-eth0", since), dst=SERVER_ADDR)
        }
        wrong = [t for t in back if t.outer.dst != U_ADDR or t.outer.dport not in client_ports]
        if wrong and len(wrong) == len(back):
            t = wrong[0]
            ports = ", ".join(str(p) for p in sorted(client_ports)) or "?"
            return (
                f"{self.server.who} sends the replies to {t.outer.dst}:{t.outer.dport}, but "
                f"the client is at {U_ADDR}:{ports}: answer the address the datagrams came from"
            )
        written = self.tun_written(U) - before_client
        if written == 0:
            who = self.client.who
            return f"the replies reach U inside UDP, but {who} never writes them to its TUN"
        return "the replies reach U's TUN but the ping gets no answer"

    def large(self) -> str:
        for size in (1400, 3000):
            since = time.time()
            problem = self.ping(size, f"large {size}", timeout=PROBE_TIMEOUT)
            if problem is None:
                continue
            cut = self._cut(since)
            if cut:
                raise Failed(cut)
            self.died(self.client, self.server)
            raise Failed(f"no intact reply to a {size}-byte ping (64-byte pings work): {problem}")
        return "1400-byte and 3000-byte pings made the round trip intact"

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
            since = time.time()
            problem = self.ping(64, "task7")
            if problem is None:
                return f"V, with only a route to {TUN_NET} via {SERVER_INNER}, answered U"
            sources = {
                ip.src
                for ip in plain(self.observe.frames("V-eth0", since))
                if ip.is_echo(ECHO_REQUEST, dst=V_ADDR)
            }
            outside = sorted(s for s in sources if not s.startswith("192.168.53."))
            if outside:
                raise Failed(
                    f"the pings reach V from {outside[0]}, outside {TUN_NET}: with only a route "
                    f"to {TUN_NET}, V cannot answer them"
                )
            self.died(self.client, self.server)
            raise Failed(f"with only a route to {TUN_NET} on V: {problem}")
        finally:
            self.say(f"$ on V: ip route del {TUN_NET}; ip route add default via {SERVER_INNER}")
            rtnl.delete_route(TUN_NET)
            rtnl.add_route("default", gateway=SERVER_INNER)

    def task6_restart(self) -> str:
        first, second = b"typed before the restart\n", b"typed after the restart\n"
        self.say(f"$ open a TCP session from U to {V_ADDR} port 7")
        try:
            with self.probes.tcp_session(U, V_ADDR, TCP_TIMEOUT) as session:
                session.send(first)
                session.receive(len(first), TCP_TIMEOUT)
                self.say("  echoed; now kill the client")
                old_ports = self._client_ports()
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
                self.say("  echoed: the session resumed")
        except ProbeFailed as exc:
            raise Failed(f"the TCP session failed before the restart: {exc}") from None
        return "after killing and restarting the client, the TCP session resumed"

    def _client_ports(self) -> set[int]:
        frames = self.observe.frames("server-eth0", time.time() - 30)
        return {t.outer.sport for t in tunneled(frames, src=U_ADDR, dst=SERVER_ADDR)}

    def _why_not_resumed(self, probe: str, since: float, old_ports: set[int]) -> str:
        self.died(self.client, self.server)
        back = tunneled(self.observe.frames("server-eth0", since), src=SERVER_ADDR)
        new_ports = {
            t.outer.sport
            for t in tunneled(self.observe.frames("server-eth0", since), dst=SERVER_ADDR)
        } - old_ports
        stale = [t for t in back if t.outer.dport in old_ports]
        if stale and new_ports:
            return (
                f"the session did not resume: the server keeps sending to the old client's "
                f"port {stale[-1].outer.dport}, the new client is on {min(new_ports)}; learn "
                "the client's address from each datagram"
            )
        return f"the session did not resume after the client restart: {probe}"

    def robust(self) -> str:
        self.say(
            f"$ from U, a {len(GARBAGE)}-byte datagram that is no IP packet to {SERVER_ADDR}:{PORT}"
        )
        with namespace.socket_in(self.lab.ns(U), socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(GARBAGE, (SERVER_ADDR, PORT))
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and self.server.exit_reason() is None:
            time.sleep(0.02)
        why = self.server.exit_reason()
        if why is not None:
            raise Failed(f"after a garbage datagram on UDP {PORT}, {why}")
        problem = self.ping(64, "after garbage")
        if problem is not None:
            raise Failed(
                "the server runs, but the tunnel stopped working after a garbage datagram: "
                + problem
            )
        return "the server ignored a garbage datagram and the tunnel still works"

    def round_trip(self) -> str:
        """Ping and TCP from U to V (the interop tasks)."""
        if self.ping(64, "interop") is not None:
            raise Failed(self.diagnose_return())
        problem = self.tcp()
        if problem is not None:
            raise Failed(f"ping works, but a TCP exchange from U to V fails: {problem}")
        return "ping and a TCP exchange from U to V worked"


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


def _forwarding(lab: Lab, host: str) -> str:
    try:
        return get_sysctl(lab.ns(host), "net.ipv4.ip_forward")
    except SysctlError:
        return "?"
