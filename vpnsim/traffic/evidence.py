"""Evidence that traffic went through the tunnel, not around it.

Around a probe, record: the packet counters of the TUN device at each end, and the UDP
datagrams to and from the tunnel port seen on the server's outer link (a pcap of that link is
kept when asked). "Through the tunnel" then means: the client's TUN carried packets out, the
server's TUN carried them in, and the outer link carried datagrams to the server's port.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vpnsim.packets import ETH_HEADER, ETH_P_ARP, ipv6_upper_layer, parse_ipv4, parse_ipv6
from vpnsim.traffic.capture import Capture, UdpDatagram

if TYPE_CHECKING:
    from vpnsim.model import TunnelSpec
    from vpnsim.net.rtnl import Counters
    from vpnsim.topology import Lab

PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP"}
PROTOCOLS6 = {58: "ICMPv6", 6: "TCP", 17: "UDP"}


@dataclass(frozen=True)
class CounterDelta:
    """How far a device's counters moved during the probe."""

    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    gone: bool = False  # the device was deleted during the probe (its program exited?)

    @classmethod
    def between(cls, before: Counters | None, after: Counters | None) -> CounterDelta:
        if before is None or after is None:
            return cls(0, 0, 0, 0, gone=True)
        return cls(
            after.rx_packets - before.rx_packets,
            after.tx_packets - before.tx_packets,
            after.rx_bytes - before.rx_bytes,
            after.tx_bytes - before.tx_bytes,
        )


@dataclass(frozen=True)
class TunnelEvidence:
    client_tun: str  # "U:tun0"
    client: CounterDelta
    server_tun: str  # "server:tun0"
    server: CounterDelta
    link: str  # the server's outer link, "server:eth0"
    server_address: str
    port: int
    to_server: tuple[UdpDatagram, ...]
    from_server: tuple[UdpDatagram, ...]
    pcap: Path | None = None
    mode: str = "tun"  # "tap": the datagrams carry Ethernet frames

    @property
    def through_tunnel(self) -> bool:
        """Packets left the client's TUN, entered the server's, and crossed the outer link."""
        return self.client.tx_packets > 0 and self.server.rx_packets > 0 and bool(self.to_server)

    def lines(self) -> list[str]:
        """A human account, one fact per line (for the demo, reports and failure messages)."""
        c, s = self.client, self.server
        lines = [
            f"{self.client_tun}: {_n(c.tx_packets, 'packet')} into the tunnel "
            f"({c.tx_bytes} bytes), {c.rx_packets} out of it ({c.rx_bytes} bytes)",
            f"{self.server_tun}: {_n(s.rx_packets, 'packet')} out of the tunnel "
            f"({s.rx_bytes} bytes), {s.tx_packets} into it ({s.tx_bytes} bytes)",
        ]
        lines = [
            f"{name}: {GONE}" if delta.gone else line
            for name, delta, line in zip(
                (self.client_tun, self.server_tun), (c, s), lines, strict=True
            )
        ]
        lines += [
            f"{self.link}: {_n(len(self.to_server), 'UDP datagram')} to {self.server_address}:"
            f"{self.port}, {len(self.from_server)} from it",
        ]
        for direction, datagrams in (("to", self.to_server), ("from", self.from_server)):
            if datagrams:
                first = datagrams[0]
                inner = describe_inner(first.payload, self.mode)
                lines.append(
                    f"  first {direction} server: {first.src}:{first.sport} > "
                    f"{first.dst}:{first.dport}, carrying {inner}"
                )
        if self.pcap is not None:
            lines.append(f"  capture: {self.pcap}")
        return lines


GONE = "deleted during the probe (did its program exit?)"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def describe_inner(payload: bytes, mode: str = "tun") -> str:
    """What a tunnel datagram carries: in TAP mode an Ethernet frame ('Ethernet aa:.. >
    bb:..: ICMP ...', 'ARP who has 192.168.53.1? tell 192.168.53.99'); else an IP packet."""
    if mode == "tap":
        return _describe_frame(payload)
    return _describe_packet(payload)


def _describe_frame(frame: bytes) -> str:
    if len(frame) < ETH_HEADER:
        return f"{len(frame)} bytes that are not an Ethernet frame"
    dst, src = (":".join(f"{b:02x}" for b in frame[i : i + 6]) for i in (0, 6))
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == ETH_P_ARP and len(frame) >= 42:
        sender, target = socket.inet_ntoa(frame[28:32]), socket.inet_ntoa(frame[38:42])
        if frame[21] == 1:
            return f"ARP who has {target}? tell {sender}"
        return f"ARP {sender} is at {src}"
    return f"Ethernet {src} > {dst}: {_describe_packet(frame[ETH_HEADER:])}"


def _describe_packet(payload: bytes) -> str:
    """'ICMP 192.168.53.99 > 192.168.60.5' for an IPv4 packet inside a datagram;
    'ICMPv6 fd00:53::99 > fd00:60::5' for an IPv6 one (its protocol found past any extension
    headers, a fragment header included)."""
    v6 = parse_ipv6(payload)
    if v6 is not None:
        found = ipv6_upper_layer(payload)  # None: cut short inside its extension headers
        proto = "IPv6" if found is None else PROTOCOLS6.get(found[0], f"next header {found[0]}")
        return f"{proto} {v6.src} > {v6.dst}"
    v4 = parse_ipv4(payload)
    if v4 is None:
        return f"{len(payload)} bytes that are not an IPv4 or IPv6 packet"
    proto = PROTOCOLS.get(v4.proto, f"protocol {v4.proto}")
    return f"{proto} {v4.src} > {v4.dst}"


class TunnelEnds(Protocol):
    """Where a tunnel runs: a `vpnsim.vpn.RunningTunnel`, or one found in a running lab."""

    @property
    def lab(self) -> Lab: ...
    @property
    def spec(self) -> TunnelSpec: ...
    @property
    def client_tun(self) -> str: ...
    @property
    def server_tun(self) -> str: ...


class EvidenceRecorder:
    """`with EvidenceRecorder(tunnel) as rec: <probe>`, then `rec.result`."""

    def __init__(self, tunnel: TunnelEnds, pcap: Path | None = None) -> None:
        self.tunnel = tunnel
        self.pcap = pcap
        self._result: TunnelEvidence | None = None

    @property
    def result(self) -> TunnelEvidence:
        if self._result is None:
            raise RuntimeError("evidence is ready once the `with` block has ended")
        return self._result

    def __enter__(self) -> EvidenceRecorder:
        tunnel, spec = self.tunnel, self.tunnel.spec
        lab = tunnel.lab
        self._outer = outer_interface(lab, spec.server, spec.server_address)
        self._capture = Capture(lab.ns(spec.server), self._outer, split_udp_runs=True)
        self._before = self._counters()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._counters()
        self._capture.stop()
        spec = self.tunnel.spec
        datagrams = self._capture.udp(spec.port)
        if self.pcap is not None:
            self._capture.save(self.pcap)
        self._result = TunnelEvidence(
            client_tun=f"{spec.client}:{self.tunnel.client_tun}",
            client=CounterDelta.between(self._before[0], after[0]),
            server_tun=f"{spec.server}:{self.tunnel.server_tun}",
            server=CounterDelta.between(self._before[1], after[1]),
            link=f"{spec.server}:{self._outer}",
            server_address=spec.server_address,
            port=spec.port,
            to_server=tuple(
                d for d in datagrams if (d.dst, d.dport) == (spec.server_address, spec.port)
            ),
            from_server=tuple(
                d for d in datagrams if (d.src, d.sport) == (spec.server_address, spec.port)
            ),
            pcap=self.pcap,
            mode=spec.mode,
        )

    def _counters(self) -> tuple[Counters | None, Counters | None]:
        """Both TUN devices' counters; None for one that no longer exists."""
        lab, spec = self.tunnel.lab, self.tunnel.spec
        return (
            _counters_of(lab, spec.client, self.tunnel.client_tun),
            _counters_of(lab, spec.server, self.tunnel.server_tun),
        )


def _counters_of(lab: Lab, host: str, device: str) -> Counters | None:
    from vpnsim.net.rtnl import NetlinkFailure  # loaded already: the lab's rtnl uses it

    try:
        return lab.rtnl(host).counters(device)
    except NetlinkFailure:  # deleted: a program that exits takes its TUN device with it
        return None


def outer_interface(lab: Lab, host: str, address: str) -> str:
    """The interface of `host` that holds `address` (the server's link toward the clients)."""
    for iface in lab.scenario.host(host).interfaces:
        if iface.address.split("/")[0] == address:
            return iface.name
    raise ValueError(f"host {host} has no interface with address {address}")
