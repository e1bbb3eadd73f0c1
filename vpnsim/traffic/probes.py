"""Probes bound to a lab: ICMP, UDP and TCP from a host, by name, with exact payload checks.

    probes = Probes(lab, tunnel)
    probes.ping("U", "192.168.60.5", b"x" * 3000).payload      # the echoed payload
    probes.udp("V", "192.168.53.99", data)                      # echo service started on U
    with probes.evidence() as rec:
        probes.tcp("U", "192.168.60.5", b"hello")
    assert rec.result.through_tunnel

UDP and TCP go to an echo service (port 7) that is started on demand, once, on the host that
owns the destination address (an interface address, or a TUN address of the tunnel).

An IPv6 destination ("fd00:60::5") is probed over IPv6: ICMPv6 echo, UDP and TCP over AF_INET6.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from pathlib import Path

from vpnsim import proc
from vpnsim.topology import Lab
from vpnsim.traffic.echo import ECHO_PORT
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.evidence import EvidenceRecorder, TunnelEnds
from vpnsim.traffic.exchange import TcpSession, tcp_exchange, udp_exchange
from vpnsim.traffic.icmp import EchoReply, EchoSeries, echo_socket, family_of, ping, ping_series

ECHO_READY_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 2.0


class Probes:
    """`timeout` is how long a probe waits for its answer unless a call says otherwise."""

    def __init__(
        self, lab: Lab, tunnel: TunnelEnds | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.lab = lab
        self.tunnel = tunnel
        self.timeout = timeout
        self.echo: dict[str, proc.Program] = {}
        # Which host owns an address, worked out once (a Hypothesis property asks thousands
        # of times; parsing every interface's address each time cost ~35 us a probe).
        self._owners: dict[str, str] = {}

    def ping(
        self, host: str, dst: str, payload: bytes = b"vpnsim", timeout: float | None = None
    ) -> EchoReply:
        """An ICMP echo (ICMPv6 to an IPv6 `dst`) from `host` to `dst`; raises ProbeFailed
        without a matching reply."""
        wait = timeout or self.timeout
        sock = self._echo_socket(host, family_of(dst) == socket.AF_INET6)
        return ping(self.lab.ns(host), dst, payload, wait, src=host, sock=sock)

    def ping_series(
        self,
        host: str,
        dst: str,
        count: int,
        payload: bytes = b"vpnsim",
        interval: float = 0.0,
        timeout: float | None = None,
    ) -> EchoSeries:
        """`count` echo requests from `host` to `dst`, as `ping -c` sends them: which were
        answered, lost, damaged or duplicated (a lossy link is a result, not an error)."""
        wait = timeout or self.timeout
        sock = self._echo_socket(host, family_of(dst) == socket.AF_INET6)
        ns = self.lab.ns(host)
        return ping_series(
            ns, dst, count, payload, interval=interval, timeout=wait, src=host, sock=sock
        )

    def reaches(self, host: str, dst: str, timeout: float = 1.0) -> bool:
        """Whether an ICMP echo from `host` to `dst` gets its reply."""
        try:
            self.ping(host, dst, timeout=timeout)
        except ProbeFailed:
            return False
        return True

    def udp(self, host: str, dst: str, payload: bytes, timeout: float | None = None) -> bytes:
        """Send `payload` from `host` to the echo service at `dst`; returns what came back."""
        self.serve_echo(self._owner(dst))
        wait = timeout or self.timeout
        return udp_exchange(
            self.lab.ns(host), dst, ECHO_PORT, payload, wait, src=host, opener=self._opener
        )

    def tcp(self, host: str, dst: str, payload: bytes, timeout: float | None = None) -> bytes:
        """A TCP connection from `host` to the echo service at `dst`; returns what came back.

        TCP gets twice the probe timeout: a whole exchange, with retransmissions."""
        self.serve_echo(self._owner(dst))
        wait = timeout or 2 * self.timeout
        return tcp_exchange(self.lab.ns(host), dst, ECHO_PORT, payload, wait, src=host)

    def tcp_session(self, host: str, dst: str, timeout: float | None = None) -> TcpSession:
        """An open TCP connection from `host` to the echo service at `dst` (use with `with`)."""
        self.serve_echo(self._owner(dst))
        wait = timeout or 2 * self.timeout
        return TcpSession(self.lab.ns(host), dst, ECHO_PORT, wait, src=host)

    def serve_echo(self, host: str) -> None:
        """Start the echo service on `host` unless one listens there already; wait until it
        listens. (One started by an earlier `vpnsim lab probe` is reused.)"""
        running = self.echo.get(host)
        if running is not None and running.running():
            return
        if proc.port_bound_in(self.lab.ns(host), ECHO_PORT, "tcp"):
            return
        argv = [sys.executable, "-m", "vpnsim.traffic.echo", "--port", str(ECHO_PORT)]
        program = self.lab.start(host, argv, log_name=f"echo-{host}")
        program.wait_ready(
            lambda: proc.port_bound(program.pid, ECHO_PORT, "tcp"),
            ECHO_READY_TIMEOUT,
            f"echo service listening on port {ECHO_PORT}",
        )
        self.echo[host] = program

    def evidence(self, pcap: Path | None = None) -> EvidenceRecorder:
        """Record TUN counters and outer datagrams around a probe (`with ... as rec`)."""
        if self.tunnel is None:
            raise ValueError("evidence needs a running tunnel: Probes(lab, tunnel)")
        return EvidenceRecorder(self.tunnel, pcap)

    def close(self) -> None:
        for program in self.echo.values():
            program.stop()
        self.echo.clear()

    # Probes go through the lab's kept namespaces, and reuse one raw ICMP socket per host and
    # family: a probe then costs its packets, not ~60 us of entering a namespace.
    def _opener(self, ns: str, family: int, type: int, proto: int) -> socket.socket:
        return self.lab.kept.socket_in(ns, family, type, proto)

    def _echo_socket(self, host: str, v6: bool) -> socket.socket:
        ns = self.lab.ns(host)
        # One per thread too: a series empties its socket first, which would eat the replies
        # of a series that another thread runs from the same host.
        key = ("icmp echo", ns, v6, threading.get_ident())
        return self.lab.kept.socket(key, lambda: echo_socket(ns, v6, self._opener))

    def _owner(self, address: str) -> str:
        owner = self._owners.get(address)
        if owner is None:
            owner = self._owners[address] = self._find_owner(address)
        return owner

    def _find_owner(self, address: str) -> str:
        ip = ipaddress.ip_address(address)
        for host in self.lab.scenario.hosts:
            for iface in host.interfaces:
                if any(
                    cidr is not None and ipaddress.ip_interface(cidr).ip == ip
                    for cidr in (iface.address, iface.address6)
                ):
                    return host.name
        spec = self.lab.scenario.tunnel
        if spec is not None:
            ends = (
                (spec.client, spec.client_tun),
                (spec.server, spec.server_tun),
                (spec.client, spec.client_tun6),
                (spec.server, spec.server_tun6),
            )
            for owner, tun_cidr in ends:
                if tun_cidr is not None and ipaddress.ip_interface(tun_cidr).ip == ip:
                    return owner
        raise ValueError(f"no host of lab {self.lab.name} owns {address}")
