"""What the grader keeps of rtnetlink events (`observe.TunRecord`): every state a TUN went
through, so a TUN that was up with its address only for a moment is still on record. The
messages are built byte for byte as the kernel sends them (struct ifinfomsg, ifaddrmsg and
route attributes)."""

from __future__ import annotations

import socket
import struct

from vpnsim.grade.observe import (
    ARPHRD_NONE,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    TunRecord,
    TunState,
    netlink_messages,
    rtattrs,
)

ARPHRD_ETHER = 1


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _link(
    index: int, name: str, up: bool, kind: str | None = "tun", hatype: int = ARPHRD_NONE
) -> bytes:
    attrs = _attr(3, name.encode() + b"\0")  # IFLA_IFNAME
    if kind is not None:
        attrs += _attr(18 | 0x8000, _attr(1, kind.encode() + b"\0"))  # nested IFLA_LINKINFO
    return struct.pack("=BBHiII", 0, 0, hatype, index, 1 if up else 0, 0xFFFFFFFF) + attrs


def _addr(index: int, cidr: str) -> bytes:
    address, prefix = cidr.split("/")
    head = struct.pack("=BBBBI", socket.AF_INET, int(prefix), 0, 0, index)
    return head + _attr(1, socket.inet_aton(address)) + _attr(2, socket.inet_aton(address))


def _message(kind: int, body: bytes, seq: int = 0) -> bytes:
    length = 16 + len(body)
    return struct.pack("=IHHII", length, kind, 0, seq, 0) + body + b"\0" * (-length % 4)


def test_rtattrs_and_nested_flags() -> None:
    data = _attr(3, b"tun0\0") + _attr(18 | 0x8000, _attr(1, b"tun\0"))
    assert rtattrs(data) == [(3, b"tun0\0"), (18, _attr(1, b"tun\0"))]
    assert rtattrs(b"") == []
    assert rtattrs(struct.pack("=HH", 2, 3)) == []  # a length shorter than the header: stop
    assert rtattrs(struct.pack("=HH", 40, 3) + b"x") == []  # longer than the data: stop


def test_netlink_messages_split_a_datagram() -> None:
    data = _message(RTM_NEWLINK, b"a" * 5) + _message(RTM_NEWADDR, b"b" * 8)
    assert netlink_messages(data) == [(RTM_NEWLINK, b"a" * 5), (RTM_NEWADDR, b"b" * 8)]
    assert netlink_messages(data[:10]) == []


def _record(*messages: tuple[int, bytes]) -> TunRecord:
    record = TunRecord()
    for kind, body in messages:
        record.apply(kind, body)
    return record


def test_a_tun_brought_up_with_its_address() -> None:
    record = _record(
        (RTM_NEWLINK, _link(7, "tun0", up=False)),
        (RTM_NEWADDR, _addr(7, "192.168.53.99/24")),
        (RTM_NEWLINK, _link(7, "tun0", up=True)),
    )
    assert record.states == [
        TunState("tun0", 7, False, frozenset()),
        TunState("tun0", 7, False, frozenset({"192.168.53.99/24"})),
        TunState("tun0", 7, True, frozenset({"192.168.53.99/24"})),
    ]
    assert record.seen_up("192.168.53.99/24") == record.states[2]
    assert record.seen_up("192.168.53.99/24", since=3) is None
    assert record.seen_up("192.168.53.100/24") is None


def test_a_tun_up_for_a_moment_stays_on_record() -> None:
    record = _record(
        (RTM_NEWLINK, _link(4, "brown0", up=False)),
        (RTM_NEWADDR, _addr(4, "192.168.53.99/24")),
        (RTM_NEWLINK, _link(4, "brown0", up=True)),
        (RTM_DELADDR, _addr(4, "192.168.53.99/24")),
        (RTM_DELLINK, _link(4, "brown0", up=True)),
    )
    assert record.states[-1] == TunState("brown0", 4, False, frozenset())
    assert record.seen_up("192.168.53.99/24") == TunState(
        "brown0", 4, True, frozenset({"192.168.53.99/24"})
    )


def test_a_down_tun_or_a_wrong_address_is_never_up_with_it() -> None:
    down = _record(
        (RTM_NEWLINK, _link(4, "silva0", up=False)), (RTM_NEWADDR, _addr(4, "192.168.53.99/24"))
    )
    assert down.seen_up("192.168.53.99/24") is None
    wrong = _record(
        (RTM_NEWLINK, _link(4, "wang0", up=True)), (RTM_NEWADDR, _addr(4, "192.168.53.100/24"))
    )
    assert wrong.seen_up("192.168.53.99/24") is None
    assert wrong.seen_up("192.168.53.100/24") == TunState(
        "wang0", 4, True, frozenset({"192.168.53.100/24"})
    )


def test_other_links_are_not_tuns() -> None:
    record = _record(
        (RTM_NEWLINK, _link(2, "eth0", up=True, kind="veth", hatype=ARPHRD_ETHER)),
        (RTM_NEWLINK, _link(3, "tap0", up=True, kind="tun", hatype=ARPHRD_ETHER)),  # a TAP
        (RTM_NEWLINK, _link(1, "lo", up=True, kind=None, hatype=772)),
        (RTM_NEWADDR, _addr(2, "192.168.53.99/24")),
        (RTM_NEWADDR, _addr(3, "192.168.53.99/24")),
    )
    assert record.states == []
    assert record.tuns == {}


def test_ipv6_addresses_and_short_messages_are_ignored() -> None:
    six = struct.pack("=BBBBI", socket.AF_INET6, 64, 0, 0, 7) + _attr(1, b"\xfd" + b"\0" * 15)
    record = _record(
        (RTM_NEWLINK, _link(7, "tun0", up=True)),
        (RTM_NEWADDR, six),
        (RTM_NEWADDR, b"\0" * 4),
        (RTM_NEWLINK, b"\0" * 8),
    )
    assert record.states == [TunState("tun0", 7, True, frozenset())]


def test_now_lists_the_tuns_that_exist() -> None:
    record = _record(
        (RTM_NEWLINK, _link(4, "brown0", up=True)),
        (RTM_NEWADDR, _addr(4, "192.168.53.99/24")),
        (RTM_NEWLINK, _link(5, "brown1", up=False)),
    )
    assert record.now() == [
        TunState("brown0", 4, True, frozenset({"192.168.53.99/24"})),
        TunState("brown1", 5, False, frozenset()),
    ]
    record.apply(RTM_DELLINK, _link(4, "brown0", up=True))
    assert record.now() == [TunState("brown1", 5, False, frozenset())]
    assert record.gone == {4}
