"""The Tunneling lab's task checks (task3-task7, large, robust, the interop round trip), each
a method of `Tunnel`: probes through the two ends, judged by the captures.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from vpnsim.grade.liveness import POLL, UP_WALL, cpu_seconds, ended, exit_reason, own_pids
from vpnsim.grade.packets import (
    tunneled,
)
from vpnsim.grade.probing import SETTLE_CPU, TCP_DATA, TCP_TIMEOUT, Probing
from vpnsim.grade.trace import (
    PORT,
    SERVER,
    SERVER_ADDR,
    SERVER_INNER,
    TUN_NET,
    U_ADDR,
    V_ADDR,
    Failed,
    U,
    V,
)
from vpnsim.net import namespace
from vpnsim.net.rtnl import NetlinkFailure
from vpnsim.topology import Lab
from vpnsim.traffic.errors import ProbeFailed

GARBAGE = b"\x00vpnsim: this datagram is not an IP packet \xff\xfe"


class Tunnel(Probing):
    """A Tunneling-lab run: its ends, their readiness and probes (`Probing`), and the tasks."""

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
        cpu = cpu_seconds(own_pids(side))
        deadline = time.monotonic() + UP_WALL
        while time.monotonic() < deadline and not ended(side):
            if _udp_read(self.lab, SERVER) > before:
                how = self._settle(side)
                self.say(f"  the server read it and {'is still busy' if how == 'busy' else how}")
                return
            if cpu_seconds(own_pids(side)) - cpu >= SETTLE_CPU:
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
