"""ICMP echo with a chosen payload, over a raw socket in a host's namespace (no `ping` binary).

Large payloads are fragmented by the sending kernel (DF off, as `ping -s 3000` does) and
reassembled by the receiver's; the reply's payload must come back byte for byte.
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

    `src` names the sender in messages (a host name); the namespace name by default.
    """
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
        sent_at = time.monotonic()
        try:
            sock.sendto(echo_request(ident, seq, payload), (dst, 0))
        except OSError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                raise NoRoute(f"{what}: no route ({exc.strerror})") from None
            raise ProbeFailed(f"{what}: send failed: {exc.strerror}") from None
        deadline = sent_at + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            packet, (source, _) = sock.recvfrom(65535 + 60)
            reply = _match(packet, ident, seq, source, what)
            if reply is not None:
                ttl, data = reply
                return EchoReply(source, data, ttl, time.monotonic() - sent_at)
    raise ProbeFailed(f"{what}: no reply within {timeout:g} s")


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
