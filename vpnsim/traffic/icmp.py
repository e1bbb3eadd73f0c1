"""ICMP echo with a chosen payload, over a raw socket in a host's namespace (no `ping` binary).

Large payloads are fragmented by the sending kernel (DF off, as `ping -s 3000` does) and
reassembled by the receiver's; the reply's payload must come back byte for byte.

An IPv6 destination gets ICMPv6 echo (chosen by `ping` from the address): the kernel
computes the ICMPv6 checksum (it covers a pseudo-header with the addresses it picks), delivers
the message without its IPv6 header, and fragments a large request itself, as IPv6 senders do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Container
from dataclasses import dataclass

from vpnsim.net import namespace
from vpnsim.packets import (
    ICMP_DEST_UNREACHABLE,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_HEADER,
    ICMP_TIME_EXCEEDED,
    IcmpHeader,
    icmp_echo,
    parse_icmp,
    quoted_icmp,
)
from vpnsim.packets import ipv6_upper_layer as ipv6_upper_layer  # re-exported
from vpnsim.traffic.errors import NoRoute, ProbeFailed

# How a socket is made in a namespace: (namespace, family, type, proto) -> socket.
SocketOpener = Callable[[str, int, int, int], socket.socket]

ECHO_REPLY = ICMP_ECHO_REPLY
DEST_UNREACHABLE = ICMP_DEST_UNREACHABLE
ECHO_REQUEST = ICMP_ECHO_REQUEST
TIME_EXCEEDED = ICMP_TIME_EXCEEDED

MAX_ICMP_PAYLOAD = 65507  # 65535 - 20 (IPv4 header) - 8 (ICMP header)
SOL_RAW = 255
ICMP_FILTER = 1
IP_MTU_DISCOVER = 10  # linux/in.h; not exported by Python's socket module
IP_PMTUDISC_DONT = 0

UNREACHABLE_CODES = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
}


@dataclass(frozen=True)
class EchoReply:
    source: str
    payload: bytes
    ttl: int
    rtt: float  # seconds


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    return icmp_echo(ECHO_REQUEST, ident, seq, payload)


_idents = itertools.count(os.getpid() & 0xFFFF)


@dataclass(frozen=True)
class Heard:
    """An answer to one of our requests: its reply (ttl, payload) or the ICMP error about it."""

    seq: int
    ttl: int = -1
    payload: bytes = b""
    error: ProbeFailed | None = None


@dataclass(frozen=True)
class EchoSeries:
    """What `ping_series` saw: replies by sequence number (1..sent), and errors about requests."""

    dst: str
    payload: bytes
    sent: int
    replies: dict[int, EchoReply]
    errors: dict[int, ProbeFailed]
    duplicates: int  # extra replies to a request already answered

    @property
    def lost(self) -> list[int]:
        """Sequence numbers that got no reply."""
        return [seq for seq in range(1, self.sent + 1) if seq not in self.replies]

    @property
    def damaged(self) -> list[int]:
        """Sequence numbers whose reply carried another payload than the request."""
        return [seq for seq, reply in sorted(self.replies.items()) if reply.payload != self.payload]

    @property
    def loss(self) -> float:
        return len(self.lost) / self.sent if self.sent else 0.0

    def line(self) -> str:
        """The series in one line, as `ping -c` sums it up: losses, damage, duplicates, RTTs."""
        answered = len(self.replies)
        line = f"{self.sent} sent, {answered} answered, {self.loss:.0%} lost"
        if self.lost:
            line += f" ({numbered(self.lost)})"
        if self.damaged:
            line += f", {len(self.damaged)} damaged ({numbered(self.damaged)})"
        if self.duplicates:
            line += f", {self.duplicates} duplicate replies"
        if answered:
            rtts = sorted(reply.rtt * 1000 for reply in self.replies.values())
            line += f"; rtt min/avg/max {rtts[0]:.2f}/{sum(rtts) / answered:.2f}/{rtts[-1]:.2f} ms"
        if self.errors:
            line += f"; {len(self.errors)} ICMP errors, first: {self.errors[min(self.errors)]}"
        return line


def numbered(seqs: list[int], most: int = 20) -> str:
    """Sequence numbers as ping-like reports name them, '#3 #7 #12', the first `most` of them
    and then how many more; 'none' for none."""
    shown = " ".join(f"#{seq}" for seq in seqs[:most]) or "none"
    return shown if len(seqs) <= most else f"{shown} and {len(seqs) - most} more"


def ping(
    ns: str,
    dst: str,
    payload: bytes = b"vpnsim",
    timeout: float = 2.0,
    *,
    src: str = "",
    sock: socket.socket | None = None,
) -> EchoReply:
    """One echo request from namespace `ns` to `dst`; the matching reply, or ProbeFailed
    (NoRoute when an ICMP error says the destination is unreachable).

    `src` names the sender in messages (a host name); the namespace name by default. An IPv6
    `dst` gets an ICMPv6 echo; the reply's `ttl` is then the hop limit it arrived with.
    `sock`: an `echo_socket` of `ns` to use (and keep open) instead of a new one.
    """
    series = ping_series(ns, dst, 1, payload, timeout=timeout, src=src, sock=sock)
    if 1 in series.errors:
        raise series.errors[1]
    if 1 not in series.replies:
        raise ProbeFailed(f"{_what(series.dst, payload, src or ns)}: no reply within {timeout:g} s")
    return series.replies[1]


def ping_series(
    ns: str,
    dst: str,
    count: int,
    payload: bytes = b"vpnsim",
    *,
    interval: float = 0.0,
    timeout: float = 2.0,
    src: str = "",
    sock: socket.socket | None = None,
) -> EchoSeries:
    """`count` echo requests (seq 1..count, one socket, `interval` s apart) from namespace `ns`
    to `dst`, as `ping -c` sends them; waits up to `timeout` s after the last for the answers.

    Ends early once every request is answered (a reply or an ICMP error), so a duplicate
    arriving after that is not counted. Raises NoRoute when the kernel has no route to `dst`.
    A given `sock` (an `echo_socket` of `ns`, kept open by the caller) is emptied of what
    earlier series left, then used: each series has its own ident, so nothing older matches.
    """
    if count < 1:
        raise ValueError(f"a series of {count} echo requests: at least 1")
    v6 = family_of(dst) == socket.AF_INET6
    limit = MAX_ICMP6_PAYLOAD if v6 else MAX_ICMP_PAYLOAD
    if len(payload) > limit:
        name = "ICMPv6" if v6 else "ICMP"
        raise ValueError(f"{name} payload of {len(payload)} bytes: at most {limit}")
    ident = next(_idents) & 0xFFFF
    what = _what(dst, payload, src or ns)
    kept = sock is not None
    replies: dict[int, EchoReply] = {}
    errors: dict[int, ProbeFailed] = {}
    sent_at: dict[int, float] = {}
    duplicates = 0
    opened = contextlib.nullcontext(sock) if sock is not None else echo_socket(ns, v6)
    with opened as sock:
        if kept:
            _drain(sock)
        receive = _receiver6 if v6 else _receiver4
        request = echo_request6 if v6 else echo_request
        seqs = range(1, count + 1)
        next_send = time.monotonic()
        deadline = float("inf")
        while len(replies) + len(errors) < count:
            now = time.monotonic()
            if len(sent_at) < count and now >= next_send:
                seq = len(sent_at) + 1
                _send(sock, request(ident, seq, payload), dst, what)
                sent_at[seq] = now
                next_send = now + interval
                if seq == count:
                    deadline = now + timeout
                continue
            wake = next_send if len(sent_at) < count else deadline
            if wake <= now:
                break
            if not select.select([sock], [], [], wake - now)[0]:
                continue
            heard, source = receive(sock, ident, seqs, what)
            if heard is None or heard.seq not in sent_at:
                continue
            if heard.error is not None:
                errors.setdefault(heard.seq, heard.error)
            elif heard.seq in replies:
                duplicates += 1
            else:
                rtt = time.monotonic() - sent_at[heard.seq]
                replies[heard.seq] = EchoReply(source, heard.payload, heard.ttl, rtt)
    return EchoSeries(dst, payload, len(sent_at), replies, errors, duplicates)


def _what(dst: str, payload: bytes, src: str) -> str:
    name = "ICMPv6" if family_of(dst) == socket.AF_INET6 else "ICMP"
    return f"{name} echo of {len(payload)} bytes from {src} to {dst}"


def echo_socket(
    ns: str, v6: bool = False, opener: SocketOpener = namespace.socket_in
) -> socket.socket:
    """A raw ICMP (or ICMPv6) socket in `ns` that lets only echo replies and errors through
    (`opener(ns, family, type, proto)` makes the socket: a `namespace.Handles`' is cheaper)."""
    if v6:
        sock = opener(ns, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        passed = (ICMP6_ECHO_REPLY, ICMP6_DEST_UNREACHABLE, ICMP6_PACKET_TOO_BIG)
        sock.setsockopt(
            socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(*passed, ICMP6_TIME_EXCEEDED)
        )
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    else:
        sock = opener(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        wanted = (1 << ECHO_REPLY) | (1 << DEST_UNREACHABLE) | (1 << TIME_EXCEEDED)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~wanted & 0xFFFFFFFF))
        # Large payloads are fragmented by the kernel, as `ping -s 3000` does.
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


def _drain(sock: socket.socket) -> None:
    """Throw away what a kept socket received since its last series (replies to others)."""
    while True:
        try:
            sock.recv(65535 + 60, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # a queued ICMP error report about an earlier send: gone now
            continue


def _send(sock: socket.socket, request: bytes, dst: str, what: str) -> None:
    try:
        sock.sendto(request, (dst, 0))
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            raise NoRoute(f"{what}: no route ({exc.strerror})") from None
        raise ProbeFailed(f"{what}: send failed: {exc.strerror}") from None


def _receiver4(
    sock: socket.socket, ident: int, seqs: Container[int], what: str
) -> tuple[Heard | None, str]:
    packet, (source, _) = sock.recvfrom(65535 + 60)
    return _heard(packet, ident, seqs, source, what), source


def _heard(packet: bytes, ident: int, seqs: Container[int], source: str, what: str) -> Heard | None:
    """Our echo reply, or the ICMP error about one of our requests, in an IPv4 packet from a
    raw socket; None for anything else."""
    ihl = (packet[0] & 0x0F) * 4
    icmp = parse_icmp(packet, ihl)
    if icmp is None:
        return None
    if icmp.type == ECHO_REPLY:
        if icmp.ident == ident and icmp.seq in seqs:
            return Heard(icmp.seq, packet[8], packet[ihl + ICMP_HEADER :])
        return None
    # An error quotes our request's IP header and first 8 bytes: match its ident and seq.
    quoted = quoted_icmp(packet, ihl)
    if quoted is None or quoted.type != ECHO_REQUEST or quoted.ident != ident:
        return None
    if quoted.seq not in seqs:
        return None
    icmp_type, code, q_seq = icmp.type, icmp.code, quoted.seq
    if icmp_type == DEST_UNREACHABLE:
        reason = UNREACHABLE_CODES.get(code, f"unreachable code {code}")
        return Heard(q_seq, error=NoRoute(f"{what}: {reason} (ICMP from {source})"))
    return Heard(
        q_seq, error=ProbeFailed(f"{what}: time exceeded (ICMP from {source}): a routing loop?")
    )


# ICMPv6 (RFC 4443) ------------------------------------------------------------------------

ICMP6_DEST_UNREACHABLE = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
# The IPv6 payload length (16 bits) excludes the 40-byte header: 65535 - 8 (ICMPv6 header).
MAX_ICMP6_PAYLOAD = 65527
ICMP6_FILTER = 1  # linux/icmpv6.h ICMPV6_FILTER, at level IPPROTO_ICMPV6

UNREACHABLE6_CODES = {
    0: "no route to destination",
    1: "administratively prohibited",
    2: "beyond scope of source address",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed policy",
    6: "reject route to destination",
}


def family_of(dst: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address ("fd00:60::5"), AF_INET otherwise."""
    return socket.AF_INET6 if ":" in dst else socket.AF_INET


def echo_request6(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMPv6 echo request with checksum 0: a raw ICMPv6 socket's kernel fills it in."""
    return IcmpHeader(ICMP6_ECHO_REQUEST, 0, 0, ident, seq).pack() + payload


def icmp6_filter(*passed: int) -> bytes:
    """struct icmp6_filter letting only the `passed` ICMPv6 types through (a set bit blocks)."""
    words = [0xFFFFFFFF] * 8
    for icmp_type in passed:
        words[icmp_type >> 5] &= ~(1 << (icmp_type & 31)) & 0xFFFFFFFF
    return struct.pack("8I", *words)


def _hop_limit(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancillary:
        if (level, kind) == (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT) and len(data) >= 4:
            return int(struct.unpack("i", data[:4])[0])
    return -1  # not reported (cannot happen with IPV6_RECVHOPLIMIT on)


def _receiver6(
    sock: socket.socket, ident: int, seqs: Container[int], what: str
) -> tuple[Heard | None, str]:
    message, ancillary, _flags, address = sock.recvmsg(65535, socket.CMSG_SPACE(4))
    heard = _heard6(message, ident, seqs, address[0], what)
    if heard is not None and heard.error is None:
        heard = dataclasses.replace(heard, ttl=_hop_limit(ancillary))
    return heard, address[0]


def _heard6(
    message: bytes, ident: int, seqs: Container[int], source: str, what: str
) -> Heard | None:
    """Our ICMPv6 echo reply (`message` starts at the ICMPv6 header: raw IPv6 sockets get no
    IP header), or the error quoting one of our requests; None otherwise."""
    icmp = parse_icmp(message)
    if icmp is None:
        return None
    icmp_type, code = icmp.type, icmp.code
    if icmp_type == ICMP6_ECHO_REPLY:
        if icmp.ident == ident and icmp.seq in seqs:
            return Heard(icmp.seq, payload=message[ICMP_HEADER:])
        return None
    if icmp_type not in (ICMP6_DEST_UNREACHABLE, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED):
        return None
    # An error quotes as much of our request as fits: its IPv6 header, any extension headers
    # (a fragment header if it was fragmented), then our ICMPv6 header.
    quoted = message[8:]
    found = ipv6_upper_layer(quoted)
    if found is None:
        return None
    next_header, offset, first = found
    request = parse_icmp(quoted, offset)
    if next_header != socket.IPPROTO_ICMPV6 or not first or request is None:
        return None
    if request.type != ICMP6_ECHO_REQUEST or request.ident != ident or request.seq not in seqs:
        return None
    q_seq = request.seq
    error: ProbeFailed
    if icmp_type == ICMP6_DEST_UNREACHABLE:
        reason = UNREACHABLE6_CODES.get(code, f"unreachable code {code}")
        error = NoRoute(f"{what}: {reason} (ICMPv6 from {source})")
    elif icmp_type == ICMP6_PACKET_TOO_BIG:
        mtu = icmp.ident << 16 | icmp.seq  # the 4 bytes after the checksum
        error = ProbeFailed(f"{what}: packet too big for MTU {mtu} (ICMPv6 from {source})")
    elif code == 1:
        error = ProbeFailed(
            f"{what}: fragment reassembly time exceeded (ICMPv6 from {source}): fragments lost?"
        )
    else:
        error = ProbeFailed(f"{what}: time exceeded (ICMPv6 from {source}): a routing loop?")
    return Heard(q_seq, error=error)
