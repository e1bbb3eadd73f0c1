"""UDP segmentation offload batches (`--gso`, plain or AEAD wire): many datagrams per system
call, and the same datagrams on the wire (in plain mode SEED's: one raw IP packet each).

Sending, packets read from the TUN in a burst go out in runs: consecutive packets for the same
peer, all the same size but the last (which may be shorter), are joined and handed to the
kernel in one `sendmsg` with a `UDP_SEGMENT` size; the kernel cuts them back into one datagram
each, as late as it can (through veth and bridge a run stays one buffer). Receiving, the socket
asks for `UDP_GRO`: such a run arrives in one `recvmsg` with its segment size, and is cut here.
A peer without `--gso` sees ordinary datagrams, and sends them: the wire does not change.

A datagram cut from a run must cross the link unfragmented (`MAX_SEGMENT`); a longer one goes
alone, and the kernel fragments it as in plain mode. So the client's TUN MTU goes down to what
fits (`GSO_TUN_MTU`): its TCP then advertises an MSS whose segments fit, and both directions
run. The server's TUN keeps its MTU: a packet forwarded from its LAN with DF set (a UDP reply
from V) is never refused at the TUN (path MTU discovery would drop the first one), it crosses
as one fragmented datagram. A kernel without UDP GSO or GRO (before Linux 4.18 and 5.0) is
detected when the socket is made: then every datagram is its own `sendto` (without GSO) or
receive (without GRO), and the end's report says which half was missing.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

from vpnsim.tunnel.driver import UdpTransport
from vpnsim.tunnel.protocol import Address

UDP_SEGMENT = 103  # <linux/udp.h>; the socket module does not name them
UDP_GRO = 104
MAX_SEGMENTS = 64  # UDP_MAX_SEGMENTS of older kernels (newer allow 128)
MAX_RUN_BYTES = 65000  # a run is one UDP datagram until the kernel cuts it: < 65507 bytes
MAX_SEGMENT = 1472  # 1500-byte links, less the outer IPv4 and UDP headers: nothing fragments
GSO_TUN_MTU = MAX_SEGMENT  # the client's TUN with --gso: every packet fits one datagram
_SIZE = struct.Struct("=H")  # UDP_SEGMENT's cmsg: the segment size, a native u16
_GRO_CMSG_SPACE = socket.CMSG_SPACE(4)  # UDP_GRO's cmsg on receive: the segment size, an int
RECEIVE_SIZE = 65535


class Run(NamedTuple):
    """Datagrams for one peer sent in one system call: all `segment` bytes but the last."""

    datagrams: tuple[bytes, ...]
    addr: Address

    @property
    def segment(self) -> int:
        return len(self.datagrams[0])


def runs(sends: Sequence[tuple[bytes, Address]]) -> list[Run]:
    """Cut `sends` (datagram, peer), in order, into the fewest runs the kernel accepts: a run
    ends at a new peer, at a datagram longer than the run's first, after a shorter one, and
    at MAX_SEGMENTS or MAX_RUN_BYTES; a datagram over MAX_SEGMENT is a run of its own."""
    found: list[Run] = []
    current: list[bytes] = []
    addr: Address | None = None
    size = total = 0
    for datagram, peer in sends:
        length = len(datagram)
        if current and (
            peer != addr
            or length > size
            or size > MAX_SEGMENT
            or len(current[-1]) < size  # the run's short last datagram is in
            or len(current) == MAX_SEGMENTS
            or total + length > MAX_RUN_BYTES
        ):
            assert addr is not None
            found.append(Run(tuple(current), addr))
            current = []
        if not current:
            addr, size, total = peer, length, 0
        current.append(datagram)
        total += length
    if current:
        assert addr is not None
        found.append(Run(tuple(current), addr))
    return found


def segments(data: bytes, size: int) -> list[bytes]:
    """A received run cut at its segment size (0: not a run, one datagram)."""
    if not size or len(data) <= size:
        return [data]
    return [data[start : start + size] for start in range(0, len(data), size)]


@dataclass
class GsoCounters:
    """What the batches did, for the end's JSON report."""

    segment: bool  # the kernel takes UDP_SEGMENT
    gro: bool  # the kernel gives UDP_GRO runs
    runs_sent: int = 0  # sendmsg calls that carried several datagrams
    datagrams_in_runs: int = 0
    runs_received: int = 0  # recvmsg results that were several datagrams
    datagrams_from_runs: int = 0
    refused: int = 0  # runs the kernel refused (e.g. a segment over the path MTU): sent one by one


class GsoTransport(UdpTransport):
    """The UDP socket of `--gso`: runs out, runs in (`send_runs`, `receive_run`)."""

    def __init__(self, bind: Address) -> None:
        super().__init__(bind)
        self.counters = GsoCounters(
            segment=_supported(self.sock, UDP_SEGMENT, 0), gro=_supported(self.sock, UDP_GRO, 1)
        )

    def send_runs(self, sends: Sequence[tuple[bytes, Address]]) -> list[OSError]:
        """Send every datagram, runs in one call each; returns the errors of those not sent."""
        failed: list[OSError] = []
        counters = self.counters
        if not counters.segment:  # this kernel cannot: one call each
            for datagram, addr in sends:
                failed += self._sendto(datagram, addr)
            return failed
        for run in runs(sends):
            if len(run.datagrams) == 1:
                failed += self._sendto(run.datagrams[0], run.addr)
                continue
            try:
                self.sock.sendmsg(
                    [b"".join(run.datagrams)],
                    [(socket.SOL_UDP, UDP_SEGMENT, _SIZE.pack(run.segment))],
                    0,
                    run.addr,
                )
            except OSError as exc:
                if exc.errno not in (errno.EMSGSIZE, errno.EINVAL, errno.EIO):
                    failed.append(exc)
                    continue
                counters.refused += 1  # the kernel cannot cut it: one by one, it fragments
                for datagram in run.datagrams:
                    failed += self._sendto(datagram, run.addr)
                continue
            counters.runs_sent += 1
            counters.datagrams_in_runs += len(run.datagrams)
        return failed

    def receive_run(self) -> tuple[list[bytes], Address] | None:
        """The datagrams of one receive (several when the kernel kept a run whole), or None
        when nothing is waiting."""
        try:
            data, ancillary, _flags, addr = self.sock.recvmsg(RECEIVE_SIZE, _GRO_CMSG_SPACE)
        except BlockingIOError:
            return None
        size = 0
        for level, kind, value in ancillary:
            if level == socket.SOL_UDP and kind == UDP_GRO:
                size = int.from_bytes(value[:4], sys.byteorder)  # an int (a u16 in some)
        datagrams = segments(data, size)
        if len(datagrams) > 1:
            self.counters.runs_received += 1
            self.counters.datagrams_from_runs += len(datagrams)
        return datagrams, addr

    def report(self) -> dict[str, int | bool]:
        return asdict(self.counters)

    def _sendto(self, datagram: bytes, addr: Address) -> list[OSError]:
        try:
            self.sock.sendto(datagram, addr)
        except OSError as exc:
            return [exc]
        return []


def _supported(sock: socket.socket, option: int, value: int) -> bool:
    """Whether the kernel knows this UDP option (`value` 0 for UDP_SEGMENT sets no default)."""
    try:
        sock.setsockopt(socket.SOL_UDP, option, value)
    except OSError as exc:
        if exc.errno in (errno.ENOPROTOOPT, errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    return True
