"""`--gso`'s runs (`vpnsim.tunnel.gso`): how a burst is cut into runs, a run sent and received
for real over loopback (UDP_SEGMENT and UDP_GRO need no privilege), a kernel that lacks them,
a run the kernel refuses, and a captured run counted as its datagrams."""

from __future__ import annotations

import errno
import select
import socket
import struct
from collections.abc import Iterator

import pytest

from vpnsim.packets import checksum
from vpnsim.traffic.capture import parse_udp, udp_run_frames
from vpnsim.tunnel import gso
from vpnsim.tunnel.gso import MAX_SEGMENTS, GsoTransport, Run, runs, segments

A = ("10.9.0.5", 40000)
B = ("10.9.0.6", 40000)


def packet(size: int, mark: int = 0) -> bytes:
    return bytes([mark]) * size


def test_a_burst_of_equal_packets_is_one_run_ended_by_a_shorter_one() -> None:
    burst = [(packet(1472, n), A) for n in range(5)] + [(packet(100, 9), A)]
    assert runs(burst) == [Run(tuple(p for p, _ in burst), A)]
    assert runs(burst)[0].segment == 1472


def test_a_run_ends_at_a_new_peer_a_longer_packet_and_after_a_shorter_one() -> None:
    p1472, p1000, p60 = packet(1472), packet(1000), packet(60)
    sends = [(p1000, A), (p1000, A), (p1472, A), (p1472, B), (p60, B), (p60, B), (p60, B)]
    assert runs(sends) == [
        Run((p1000, p1000), A),  # 1472 is longer than the run's segment: a new run
        Run((p1472,), A),
        Run((p1472, p60), B),  # the short one closes it
        Run((p60, p60), B),
    ]


def test_a_run_holds_at_most_max_segments_and_max_run_bytes() -> None:
    small = [(packet(100), A)] * (MAX_SEGMENTS + 1)
    assert [len(r.datagrams) for r in runs(small)] == [MAX_SEGMENTS, 1]
    big = [(packet(1472), A)] * 50  # 44 of them make 64768 bytes, 45 would pass 65000
    assert [len(r.datagrams) for r in runs(big)] == [44, 6]
    assert runs([]) == []


def test_a_datagram_that_would_fragment_goes_alone() -> None:
    p1472, p1500 = packet(1472), packet(1500)
    sends = [(p1500, A), (p1500, A), (p1472, A), (p1472, A)]
    assert runs(sends) == [Run((p1500,), A), Run((p1500,), A), Run((p1472, p1472), A)]


def test_segments_cut_a_received_run_and_leave_a_single_datagram_whole() -> None:
    data = b"a" * 10 + b"b" * 10 + b"c" * 3
    assert segments(data, 10) == [b"a" * 10, b"b" * 10, b"c" * 3]
    assert segments(data, 0) == [data]
    assert segments(b"x" * 10, 10) == [b"x" * 10]


@pytest.fixture
def pair() -> Iterator[tuple[GsoTransport, GsoTransport]]:
    sender, receiver = GsoTransport(("127.0.0.1", 0)), GsoTransport(("127.0.0.1", 0))
    try:
        yield sender, receiver
    finally:
        sender.close()
        receiver.close()


def receive_all(receiver: GsoTransport, count: int) -> list[tuple[list[bytes], tuple[str, int]]]:
    got: list[tuple[list[bytes], tuple[str, int]]] = []
    while sum(len(d) for d, _ in got) < count:
        assert select.select([receiver.fileno()], [], [], 10)[0], "nothing arrived in 10 s"
        while (received := receiver.receive_run()) is not None:
            got.append(received)
    return got


def test_a_run_crosses_loopback_in_one_call_each_way_and_arrives_as_its_datagrams(
    pair: tuple[GsoTransport, GsoTransport],
) -> None:
    sender, receiver = pair
    assert (sender.counters.segment, sender.counters.gro) == (True, True)
    to = receiver.sock.getsockname()
    burst = [bytes([n]) * 1200 for n in range(10)] + [b"last"]
    assert sender.send_runs([(d, to) for d in burst]) == []
    got = receive_all(receiver, len(burst))
    assert [d for datagrams, _ in got for d in datagrams] == burst
    assert {addr for _, addr in got} == {sender.sock.getsockname()}
    assert (sender.counters.runs_sent, sender.counters.datagrams_in_runs) == (1, 11)
    # Loopback keeps the run whole to a UDP_GRO socket: received in one call.
    assert (receiver.counters.runs_received, receiver.counters.datagrams_from_runs) == (1, 11)


def test_a_plain_socket_receives_a_run_as_separate_datagrams(
    pair: tuple[GsoTransport, GsoTransport],
) -> None:
    sender, _ = pair
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    plain.bind(("127.0.0.1", 0))
    try:
        burst = [bytes([n]) * 500 for n in range(4)]
        sender.send_runs([(d, plain.getsockname()) for d in burst])
        plain.settimeout(10)
        assert [plain.recv(65535) for _ in burst] == burst  # the wire a SEED program sees
    finally:
        plain.close()


class RefusingSocket:
    """A socket double whose kernel lacks UDP GSO and GRO, or refuses every run."""

    def __init__(self, setsockopt_errno: int | None, sendmsg_errno: int | None) -> None:
        self.setsockopt_errno, self.sendmsg_errno = setsockopt_errno, sendmsg_errno
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if self.setsockopt_errno is not None:
            raise OSError(self.setsockopt_errno, "no")

    def sendmsg(self, buffers: list[bytes], *args: object) -> int:
        raise OSError(self.sendmsg_errno, "refused")

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        self.sent.append((data, addr))
        return len(data)


def transport_over(double: RefusingSocket) -> GsoTransport:
    transport = GsoTransport.__new__(GsoTransport)
    transport.sock = double  # type: ignore[assignment]
    transport.counters = gso.GsoCounters(
        segment=gso._supported(double, gso.UDP_SEGMENT, 0),  # type: ignore[arg-type]
        gro=gso._supported(double, gso.UDP_GRO, 1),  # type: ignore[arg-type]
    )
    return transport


def test_a_kernel_without_udp_gso_gets_one_sendto_per_datagram_and_says_so() -> None:
    double = RefusingSocket(errno.ENOPROTOOPT, None)
    transport = transport_over(double)
    assert transport.report()["segment"] is False and transport.report()["gro"] is False
    sends = [(packet(1472, n), A) for n in range(3)]
    assert transport.send_runs(sends) == []
    assert double.sent == sends
    assert transport.counters.runs_sent == 0


def test_a_run_the_kernel_refuses_is_sent_one_by_one_and_counted() -> None:
    double = RefusingSocket(None, errno.EMSGSIZE)  # a link smaller than 1500 bytes
    transport = transport_over(double)
    sends = [(packet(1400, n), A) for n in range(3)]
    assert transport.send_runs(sends) == []
    assert double.sent == sends
    assert (transport.counters.refused, transport.counters.runs_sent) == (1, 0)


def test_another_send_error_is_returned_not_raised() -> None:
    double = RefusingSocket(None, errno.ENETUNREACH)
    failed = transport_over(double).send_runs([(packet(100), A), (packet(100), A)])
    assert [e.errno for e in failed] == [errno.ENETUNREACH]
    assert double.sent == []


def ethernet_run(pieces: list[bytes]) -> bytes:
    """A UDP/IPv4 GSO run as AF_PACKET shows it: one frame, lengths of the whole."""
    payload = b"".join(pieces)
    udp = struct.pack("!HHHH", 40000, 9090, 8 + len(payload), 0)
    addresses = socket.inet_aton("10.9.0.5") + socket.inet_aton("10.9.0.11")
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 28 + len(payload), 7, 0x4000, 64, 17, 0) + addresses
    return bytes(12) + b"\x08\x00" + ip + udp + payload


def test_a_captured_run_becomes_the_datagrams_a_socket_would_receive() -> None:
    pieces = [b"a" * 1000, b"b" * 1000, b"c" * 33]
    frames = udp_run_frames(ethernet_run(pieces), 1000)
    datagrams = [parse_udp(f) for f in frames]
    assert [d.payload for d in datagrams if d] == pieces
    assert [d.length for d in datagrams if d] == [1000, 1000, 33]
    for index, frame in enumerate(frames):
        ip = frame[14:34]
        assert struct.unpack("!HH", ip[2:6]) == (28 + len(pieces[index]), 7 + index)
        assert checksum(ip) == 0  # a valid header checksum
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, 8 + len(pieces[index]))
        assert checksum(pseudo + frame[34:]) == 0  # a valid UDP checksum


def test_a_frame_that_is_not_a_udp_run_is_kept_as_it_is() -> None:
    single = ethernet_run([b"x" * 100])
    assert udp_run_frames(single, 100) == [single]
    assert udp_run_frames(single, 0) == [single]
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert udp_run_frames(arp, 10) == [arp]
