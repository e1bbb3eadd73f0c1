"""ICMP echo with a chosen payload, over a raw socket in a host's namespace (no `ping` binary).

Large payloads are fragmented by the sending kernel (DF off, as `ping -s 3000` does) and
reassembled by the receiver's; the reply's payload must come back byte for byte.

An IPv6 destination gets ICMPv6 echo (`ping6`, chosen by `ping` from the address): the kernel
computes the ICMPv6 checksum (it covers a pseudo-header with the addresses it picks), delivers
the message without its IPv6 header, and fragments a large request itself, as IPv6 senders do.
"""

from __future__ import annotations

import array
import errno
import itertools
import os
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from vpnsim.net import namespace
from vpnsim.traffic.errors import NoRoute, ProbeFailed

ECHO_REPLY = 0
DEST_UNREACHABLE = 3
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
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


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071), summed in native order: the result packs with '=H'."""
    if len(data) % 2:
        data += b"\0"
    total = sum(array.array("H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    csum = checksum(header + payload)
    return header[:2] + struct.pack("=H", csum) + header[4:] + payload


_idents = itertools.count(os.getpid() & 0xFFFF)


def ping(
    ns: str, dst: str, payload: bytes = b"vpnsim", timeout: float = 2.0, *, src: str = ""
) -> EchoReply:
    """One echo request from namespace `ns` to `dst`; the matching reply, or ProbeFailed.

    `src` names the sender in messages (a host name); the namespace name by default. An IPv6
    `dst` gets an ICMPv6 echo (`ping6`).
    """
    if family_of(dst) == socket.AF_INET6:
        return ping6(ns, dst, payload, timeout, src=src)
    if len(payload) > MAX_ICMP_PAYLOAD:
        raise ValueError(f"ICMP payload of {len(payload)} bytes: at most {MAX_ICMP_PAYLOAD}")
    ident = next(_idents) & 0xFFFF
    seq = 1
    what = f"ICMP echo of {len(payload)} bytes from {src or ns} to {dst}"
    with namespace.socket_in(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        wanted = (1 << ECHO_REPLY) | (1 << DEST_UNREACHABLE) | (1 << TIME_EXCEEDED)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~wanted & 0xFFFFFFFF))
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

        def receive(sent_at: float) -> EchoReply | None:
            packet, (source, _) = sock.recvfrom(65535 + 60)
            reply = _match(packet, ident, seq, source, what)
            if reply is None:
                return None
            ttl, data = reply
            return EchoReply(source, data, ttl, time.monotonic() - sent_at)

        return _exchange(sock, echo_request(ident, seq, payload), dst, what, timeout, receive)


def _match(packet: bytes, ident: int, seq: int, source: str, what: str) -> tuple[int, bytes] | None:
    """(ttl, payload) of our echo reply; raises on an error about our request; None otherwise."""
    ihl = (packet[0] & 0x0F) * 4
    ttl = packet[8]
    icmp_type, code, _csum, r_ident, r_seq = struct.unpack_from("!BBHHH", packet, ihl)
    if icmp_type == ECHO_REPLY:
        return (ttl, packet[ihl + 8 :]) if (r_ident, r_seq) == (ident, seq) else None
    # An error quotes our request's IP header and first 8 bytes: match its ident and seq.
    inner = ihl + 8
    if len(packet) < inner + 28 or packet[inner + 9] != socket.IPPROTO_ICMP:
        return None
    quoted = inner + (packet[inner] & 0x0F) * 4
    if len(packet) < quoted + 8:  # the quote stops short of our ICMP header
        return None
    q_type, _, _, q_ident, q_seq = struct.unpack_from("!BBHHH", packet, quoted)
    if (q_type, q_ident, q_seq) != (ECHO_REQUEST, ident, seq):
        return None
    if icmp_type == DEST_UNREACHABLE:
        reason = UNREACHABLE_CODES.get(code, f"unreachable code {code}")
        raise NoRoute(f"{what}: {reason} (ICMP from {source})")
    raise ProbeFailed(f"{what}: time exceeded (ICMP from {source}): a routing loop?")


# ICMPv6 (RFC 4443) ------------------------------------------------------------------------

ICMP6_DEST_UNREACHABLE = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
# The IPv6 payload length (16 bits) excludes the 40-byte header: 65535 - 8 (ICMPv6 header).
MAX_ICMP6_PAYLOAD = 65527
ICMP6_FILTER = 1  # linux/icmpv6.h ICMPV6_FILTER, at level IPPROTO_ICMPV6
NEXT_HEADER_FRAGMENT = 44
# Extension headers sized (hdr ext len + 1) * 8: hop-by-hop, routing, destination options.
EXTENSION_HEADERS = (0, 43, 60)

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
    return struct.pack("!BBHHH", ICMP6_ECHO_REQUEST, 0, 0, ident, seq) + payload


def icmp6_filter(*passed: int) -> bytes:
    """struct icmp6_filter letting only the `passed` ICMPv6 types through (a set bit blocks)."""
    words = [0xFFFFFFFF] * 8
    for icmp_type in passed:
        words[icmp_type >> 5] &= ~(1 << (icmp_type & 31)) & 0xFFFFFFFF
    return struct.pack("8I", *words)


def ipv6_upper_layer(packet: bytes) -> tuple[int, int, bool] | None:
    """(next header, offset, first fragment) of the upper-layer header of an IPv6 packet,
    past hop-by-hop, routing, destination options and fragment headers; None if the packet
    ends inside its headers. A non-first fragment names its protocol but carries no header
    of it at `offset` (the data there continues the first fragment's)."""
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    next_header, offset, first = packet[6], 40, True
    while next_header in (*EXTENSION_HEADERS, NEXT_HEADER_FRAGMENT):
        if len(packet) < offset + 8:
            return None
        if next_header == NEXT_HEADER_FRAGMENT:
            first = first and struct.unpack_from("!H", packet, offset + 2)[0] >> 3 == 0
            next_header, offset = packet[offset], offset + 8
        else:
            next_header, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
    return next_header, offset, first


def ping6(
    ns: str, dst: str, payload: bytes = b"vpnsim", timeout: float = 2.0, *, src: str = ""
) -> EchoReply:
    """One ICMPv6 echo request from namespace `ns` to `dst`; the matching reply (its `ttl`
    is the hop limit it arrived with), or ProbeFailed."""
    if len(payload) > MAX_ICMP6_PAYLOAD:
        raise ValueError(f"ICMPv6 payload of {len(payload)} bytes: at most {MAX_ICMP6_PAYLOAD}")
    ident = next(_idents) & 0xFFFF
    seq = 1
    what = f"ICMPv6 echo of {len(payload)} bytes from {src or ns} to {dst}"
    with namespace.socket_in(ns, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        passed = (ICMP6_ECHO_REPLY, ICMP6_DEST_UNREACHABLE, ICMP6_PACKET_TOO_BIG)
        sock.setsockopt(
            socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(*passed, ICMP6_TIME_EXCEEDED)
        )
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

        def receive(sent_at: float) -> EchoReply | None:
            message, ancillary, _flags, address = sock.recvmsg(65535, socket.CMSG_SPACE(4))
            data = _match6(message, ident, seq, address[0], what)
            if data is None:
                return None
            return EchoReply(address[0], data, _hop_limit(ancillary), time.monotonic() - sent_at)

        return _exchange(sock, echo_request6(ident, seq, payload), dst, what, timeout, receive)


def _exchange(
    sock: socket.socket,
    request: bytes,
    dst: str,
    what: str,
    timeout: float,
    receive: Callable[[float], EchoReply | None],
) -> EchoReply:
    """Send `request`; call `receive(sent_at)` for each packet that arrives until it returns
    our reply or `timeout` passes. Errors about our request raise from `receive`."""
    sent_at = time.monotonic()
    try:
        sock.sendto(request, (dst, 0))
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            raise NoRoute(f"{what}: no route ({exc.strerror})") from None
        raise ProbeFailed(f"{what}: send failed: {exc.strerror}") from None
    deadline = sent_at + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        reply = receive(sent_at)
        if reply is not None:
            return reply
    raise ProbeFailed(f"{what}: no reply within {timeout:g} s")


def _hop_limit(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancillary:
        if (level, kind) == (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT) and len(data) >= 4:
            return int(struct.unpack("i", data[:4])[0])
    return -1  # not reported (cannot happen with IPV6_RECVHOPLIMIT on)


def _match6(message: bytes, ident: int, seq: int, source: str, what: str) -> bytes | None:
    """The payload of our ICMPv6 echo reply (`message` starts at the ICMPv6 header: raw IPv6
    sockets get no IP header); raises on an error quoting our request; None otherwise."""
    if len(message) < 8:
        return None
    icmp_type, code, _csum, word = struct.unpack_from("!BBHI", message)
    if icmp_type == ICMP6_ECHO_REPLY:
        return message[8:] if word == (ident << 16 | seq) else None
    if icmp_type not in (ICMP6_DEST_UNREACHABLE, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED):
        return None
    # An error quotes as much of our request as fits: its IPv6 header, any extension headers
    # (a fragment header if it was fragmented), then our ICMPv6 header.
    quoted = message[8:]
    found = ipv6_upper_layer(quoted)
    if found is None:
        return None
    next_header, offset, first = found
    if next_header != socket.IPPROTO_ICMPV6 or not first or len(quoted) < offset + 8:
        return None
    q_type, _, _, q_ident, q_seq = struct.unpack_from("!BBHHH", quoted, offset)
    if (q_type, q_ident, q_seq) != (ICMP6_ECHO_REQUEST, ident, seq):
        return None
    if icmp_type == ICMP6_DEST_UNREACHABLE:
        reason = UNREACHABLE6_CODES.get(code, f"unreachable code {code}")
        raise NoRoute(f"{what}: {reason} (ICMPv6 from {source})")
    if icmp_type == ICMP6_PACKET_TOO_BIG:
        raise ProbeFailed(f"{what}: packet too big for MTU {word} (ICMPv6 from {source})")
    if icmp_type == ICMP6_TIME_EXCEEDED and code == 1:
        raise ProbeFailed(
            f"{what}: fragment reassembly time exceeded (ICMPv6 from {source}): fragments lost?"
        )
    raise ProbeFailed(f"{what}: time exceeded (ICMPv6 from {source}): a routing loop?")
