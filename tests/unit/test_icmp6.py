"""IPv6 without root: ICMPv6 echo building and matching, extension-header walking, what the
evidence says of an IPv6 packet, payload limits, owners of IPv6 addresses, dual-stack echo
sockets, NODAD on added addresses, and `address6` in scenarios."""

from __future__ import annotations

import dataclasses
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from vpnsim.model import Host, Interface, Network, Scenario, ScenarioError, TunnelSpec
from vpnsim.net.rtnl import Rtnl
from vpnsim.scenario.loader import validate
from vpnsim.seed import seed_tunnel
from vpnsim.testing import ipv4_packet
from vpnsim.topology import Lab
from vpnsim.traffic.echo import _bound as echo_socket
from vpnsim.traffic.errors import NoRoute, ProbeFailed
from vpnsim.traffic.evidence import describe_inner
from vpnsim.traffic.exchange import udp_exchange
from vpnsim.traffic.icmp import _heard6 as heard6
from vpnsim.traffic.icmp import echo_request6, family_of, icmp6_filter, ipv6_upper_layer, ping
from vpnsim.traffic.probes import Probes
from vpnsim.tunnel.netconf import Netconf

U_TUN6 = "fd00:53::99"
V6 = "fd00:60::5"
ROUTER6 = "fd00:60::11"
IDENT, SEQ = 0x1234, 7
WHAT = "ICMPv6 echo of 6 bytes from U to fd00:60::5"

HOP_BY_HOP, FRAGMENT, ICMPV6 = 0, 44, 58


def match6(message: bytes, ident: int, seq: int, source: str, what: str) -> bytes | None:
    """The payload of our reply to `seq`, raising the error that quotes it; None otherwise."""
    found = heard6(message, ident, {seq}, source, what)
    if found is None:
        return None
    if found.error is not None:
        raise found.error
    return found.payload


def ipv6_packet(src: str, dst: str, next_header: int, payload: bytes, hop_limit: int = 64) -> bytes:
    """An IPv6 header (version 6, no traffic class or flow label) around `payload`."""
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + payload
    )


def fragment_header(next_header: int, offset_bytes: int, more: bool, ident: int = 1) -> bytes:
    return struct.pack("!BBHI", next_header, 0, offset_bytes | int(more), ident)


def hop_by_hop(next_header: int) -> bytes:
    """A hop-by-hop options header of 8 bytes: a router alert (as MLD reports carry)."""
    return bytes([next_header, 0]) + bytes.fromhex("0502 0000 0100")


def icmp6(icmp_type: int, code: int, word: int, body: bytes) -> bytes:
    """An ICMPv6 message as a raw AF_INET6 socket delivers it: no IPv6 header before it.
    The checksum is left 0: the kernel has verified it before delivery."""
    return struct.pack("!BBHI", icmp_type, code, 0, word) + body


def error(icmp_type: int, code: int, quoted: bytes, word: int = 0) -> bytes:
    return icmp6(icmp_type, code, word, quoted)


def our_request(ident: int = IDENT, seq: int = SEQ) -> bytes:
    return ipv6_packet(U_TUN6, V6, ICMPV6, echo_request6(ident, seq, b"vpnsim"))


def test_echo_request6_is_type_128_with_ident_seq_payload_and_a_zero_checksum() -> None:
    assert echo_request6(IDENT, SEQ, b"vpnsim") == bytes.fromhex("8000 0000 1234 0007") + b"vpnsim"


@pytest.mark.parametrize(
    ("dst", "family"),
    [(V6, socket.AF_INET6), ("::1", socket.AF_INET6), ("192.168.60.5", socket.AF_INET)],
)
def test_family_of_an_address_is_ipv6_exactly_when_it_has_a_colon(
    dst: str, family: socket.AddressFamily
) -> None:
    assert family_of(dst) == family


def test_icmp6_filter_passes_only_the_given_types_and_blocks_the_rest() -> None:
    words = struct.unpack("8I", icmp6_filter(129, 1, 2, 3))

    def blocked(icmp_type: int) -> bool:  # ICMP6_FILTER_WILLBLOCK from netinet/icmp6.h
        return bool(words[icmp_type >> 5] & (1 << (icmp_type & 31)))

    assert [t for t in range(256) if not blocked(t)] == [1, 2, 3, 129]


def test_upper_layer_of_a_plain_packet_is_right_after_the_40_byte_header() -> None:
    assert ipv6_upper_layer(our_request()) == (ICMPV6, 40, True)


def test_upper_layer_skips_a_hop_by_hop_header_and_a_first_fragment_header() -> None:
    packet = ipv6_packet(
        U_TUN6, V6, HOP_BY_HOP, hop_by_hop(FRAGMENT) + fragment_header(ICMPV6, 0, more=True)
    )

    assert ipv6_upper_layer(packet) == (ICMPV6, 56, True)


def test_upper_layer_of_a_later_fragment_names_the_protocol_but_not_a_first_fragment() -> None:
    packet = ipv6_packet(U_TUN6, V6, FRAGMENT, fragment_header(ICMPV6, 1448, False) + bytes(8))

    assert ipv6_upper_layer(packet) == (ICMPV6, 48, False)


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        ipv4_packet("10.9.0.5", "10.9.0.11", bytes(40)),  # IPv4
        our_request()[:39],  # short of the IPv6 header
        ipv6_packet(U_TUN6, V6, FRAGMENT, b"\x3a\0\0"),  # ends inside its fragment header
    ],
)
def test_upper_layer_of_something_not_a_whole_ipv6_header_chain_is_none(packet: bytes) -> None:
    assert ipv6_upper_layer(packet) is None


def test_match6_returns_the_payload_of_the_reply_to_our_ident_and_seq() -> None:
    reply = icmp6(129, 0, IDENT << 16 | SEQ, b"vpnsim")

    assert match6(reply, IDENT, SEQ, V6, WHAT) == b"vpnsim"


@pytest.mark.parametrize(("ident", "seq"), [(IDENT + 1, SEQ), (IDENT, SEQ + 1)])
def test_match6_ignores_a_reply_to_another_ident_or_seq(ident: int, seq: int) -> None:
    assert match6(icmp6(129, 0, ident << 16 | seq, b"vpnsim"), IDENT, SEQ, V6, WHAT) is None


def test_match6_raises_no_route_for_destination_unreachable_quoting_our_request() -> None:
    with pytest.raises(NoRoute) as raised:
        match6(error(1, 0, our_request()), IDENT, SEQ, ROUTER6, WHAT)

    assert str(raised.value) == f"{WHAT}: no route to destination (ICMPv6 from {ROUTER6})"


@pytest.mark.parametrize(
    ("code", "reason"),
    [(3, "address unreachable"), (1, "administratively prohibited"), (9, "unreachable code 9")],
)
def test_match6_names_the_unreachable_code(code: int, reason: str) -> None:
    with pytest.raises(NoRoute) as raised:
        match6(error(1, code, our_request()), IDENT, SEQ, ROUTER6, WHAT)

    assert str(raised.value) == f"{WHAT}: {reason} (ICMPv6 from {ROUTER6})"


def test_match6_finds_our_request_behind_the_fragment_header_of_its_first_fragment() -> None:
    first = ipv6_packet(
        U_TUN6, V6, FRAGMENT, fragment_header(ICMPV6, 0, True) + echo_request6(IDENT, SEQ, b"x")
    )

    with pytest.raises(NoRoute):
        match6(error(1, 3, first), IDENT, SEQ, ROUTER6, WHAT)


def test_match6_ignores_an_error_quoting_a_later_fragment() -> None:
    # Its bytes at the upper-layer offset are payload that happens to look like our request.
    later = ipv6_packet(
        U_TUN6, V6, FRAGMENT, fragment_header(ICMPV6, 1448, False) + echo_request6(IDENT, SEQ, b"")
    )

    assert match6(error(1, 3, later), IDENT, SEQ, ROUTER6, WHAT) is None


@pytest.mark.parametrize(
    "quoted",
    [
        our_request(IDENT + 1, SEQ),  # another prober's request
        our_request(IDENT, SEQ + 1),
        our_request()[:44],  # the quote stops inside our ICMPv6 header
        ipv6_packet(U_TUN6, V6, 17, struct.pack("!HHHH", 1, 7, 14, 0) + b"vpnsim"),  # UDP
    ],
)
def test_match6_ignores_an_error_that_does_not_quote_our_request(quoted: bytes) -> None:
    assert match6(error(1, 0, quoted), IDENT, SEQ, ROUTER6, WHAT) is None


def test_match6_reports_packet_too_big_with_the_mtu() -> None:
    with pytest.raises(ProbeFailed) as raised:
        match6(error(2, 0, our_request(), word=1280), IDENT, SEQ, ROUTER6, WHAT)

    assert type(raised.value) is ProbeFailed
    assert str(raised.value) == f"{WHAT}: packet too big for MTU 1280 (ICMPv6 from {ROUTER6})"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (0, "time exceeded (ICMPv6 from fd00:60::11): a routing loop?"),
        (1, "fragment reassembly time exceeded (ICMPv6 from fd00:60::11): fragments lost?"),
    ],
)
def test_match6_reports_time_exceeded_as_a_probe_failure_not_no_route(
    code: int, message: str
) -> None:
    with pytest.raises(ProbeFailed) as raised:
        match6(error(3, code, our_request()), IDENT, SEQ, ROUTER6, WHAT)

    assert type(raised.value) is ProbeFailed
    assert str(raised.value) == f"{WHAT}: {message}"


@pytest.mark.parametrize(
    "message",
    [
        b"\x81\0\0",  # shorter than an ICMPv6 header
        error(4, 0, our_request()),  # parameter problem: not an answer a probe waits for
        icmp6(128, 0, IDENT << 16 | SEQ, b"vpnsim"),  # our own request, looped back
        icmp6(135, 0, 0, socket.inet_pton(socket.AF_INET6, V6)),  # neighbour solicitation
    ],
)
def test_match6_ignores_other_messages(message: bytes) -> None:
    assert match6(message, IDENT, SEQ, ROUTER6, WHAT) is None


def test_an_icmpv6_payload_over_65527_bytes_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match=r"^ICMPv6 payload of 65528 bytes: at most 65527$"):
        ping("no-such-namespace", V6, bytes(65528))


def test_ipv4_ping_keeps_its_own_limit_of_65507_bytes() -> None:
    with pytest.raises(ValueError, match=r"^ICMP payload of 65508 bytes: at most 65507$"):
        ping("no-such-namespace", "192.168.60.5", bytes(65508))


@pytest.mark.parametrize(
    ("dst", "size", "limit"), [(V6, 65528, 65527), ("192.168.60.5", 65508, 65507)]
)
def test_udp_payload_limits_are_per_family(dst: str, size: int, limit: int) -> None:
    with pytest.raises(ValueError, match=rf"^UDP payload of {size} bytes: 1 to {limit}$"):
        udp_exchange("no-such-namespace", dst, 7, bytes(size))


def test_describe_inner_names_an_icmpv6_packet_and_its_addresses() -> None:
    assert describe_inner(our_request()) == "ICMPv6 fd00:53::99 > fd00:60::5"


def test_describe_inner_names_the_protocol_behind_extension_headers() -> None:
    tcp_fragment = ipv6_packet(V6, U_TUN6, FRAGMENT, fragment_header(6, 0, True) + bytes(20))
    mld_report = ipv6_packet("fe80::1", "ff02::16", HOP_BY_HOP, hop_by_hop(ICMPV6) + bytes(8))
    cut_short = ipv6_packet(U_TUN6, V6, HOP_BY_HOP, b"")

    assert describe_inner(tcp_fragment) == "TCP fd00:60::5 > fd00:53::99"
    assert describe_inner(mld_report) == "ICMPv6 fe80::1 > ff02::16"
    assert describe_inner(cut_short) == "IPv6 fd00:53::99 > fd00:60::5"
    assert describe_inner(ipv6_packet(U_TUN6, V6, 132, b"")) == (
        "next header 132 fd00:53::99 > fd00:60::5"
    )


def test_describe_inner_still_names_ipv4_and_refuses_what_is_neither() -> None:
    ipv4 = ipv4_packet("192.168.53.99", "192.168.60.5", bytes(8), socket.IPPROTO_ICMP)

    assert describe_inner(ipv4) == "ICMP 192.168.53.99 > 192.168.60.5"
    assert describe_inner(bytes(12)) == "12 bytes that are not an IPv4 or IPv6 packet"


def dual_stack() -> Scenario:
    """The SEED scenario with IPv6 addresses on the private net and in the tunnel."""
    seed = seed_tunnel()
    inside = Network("net-192.168.60.0", "192.168.60.0/24", "fd00:60::/64")
    v = seed.host("V")
    v6 = dataclasses.replace(
        v, interfaces=(dataclasses.replace(v.interfaces[0], address6=V6 + "/64"),)
    )
    assert seed.tunnel is not None
    return dataclasses.replace(
        seed,
        networks=(seed.networks[0], inside),
        hosts=tuple(v6 if h.name == "V" else h for h in seed.hosts),
        tunnel=dataclasses.replace(
            seed.tunnel, client_tun6=U_TUN6 + "/64", server_tun6="fd00:53::1/64"
        ),
    )


@pytest.mark.parametrize(
    ("address", "owner"),
    [(V6, "V"), (U_TUN6, "U"), ("fd00:53::1", "server"), ("192.168.60.5", "V")],
)
def test_probes_find_the_owner_of_ipv6_interface_and_tun_addresses(
    address: str, owner: str
) -> None:
    probes = Probes(Lab("unit", dual_stack(), Path("/nonexistent")))

    assert probes._owner(address) == owner


def test_probes_refuse_an_ipv6_address_no_host_owns() -> None:
    probes = Probes(Lab("unit", dual_stack(), Path("/nonexistent")))

    with pytest.raises(ValueError, match=r"^no host of lab unit owns fd00:60::99$"):
        probes._owner("fd00:60::99")


def test_a_scenario_with_ipv6_addresses_in_their_networks_subnet6_is_valid() -> None:
    validate(dual_stack())  # the scenario files' rules, for a scenario built in code


@pytest.mark.parametrize(
    ("address6", "message"),
    [
        (
            "fd00:61::5/64",
            r"fd00:61::5/64 is not an address of network net-192\.168\.60\.0 \(fd00:60::/64\)",
        ),
        (
            "192.168.60.50/24",
            r"192\.168\.60\.50/24 is not an address of network net-192\.168\.60\.0 "
            r"\(fd00:60::/64\)",
        ),
        ("fd00:60::zz/64", r"expected an address with a prefix, like 10\.9\.0\.5/24, got 'fd00"),
    ],
)
def test_an_ipv6_address_outside_subnet6_or_not_ipv6_is_rejected_naming_the_interface(
    address6: str, message: str
) -> None:
    scenario = dual_stack()
    bad_v = Host("V", (Interface("eth0", "net-192.168.60.0", "192.168.60.5/24", address6),))
    broken = dataclasses.replace(
        scenario, hosts=tuple(bad_v if h.name == "V" else h for h in scenario.hosts)
    )

    with pytest.raises(ScenarioError, match=r"hosts\.V\.interfaces\[0\]\.address6: " + message):
        validate(broken)


def test_a_duplicate_ipv6_address_is_rejected() -> None:
    scenario = dual_stack()
    twin = Host("W", (Interface("eth0", "net-192.168.60.0", "192.168.60.7/24", V6 + "/64"),))

    with pytest.raises(
        ScenarioError,
        match=r"hosts\.W\.interfaces\[0\]\.address6: duplicate address fd00:60::5 \(also at "
        r"hosts\.V\.interfaces\[0\]\.address6\)$",
    ):
        validate(dataclasses.replace(scenario, hosts=(*scenario.hosts, twin)))


def test_an_ipv6_address_needs_its_network_to_have_a_subnet6() -> None:
    """As in a scenario file: the one set of rules (it was accepted in code before)."""
    net = Network("n", "10.0.0.0/24")
    host = Host("h", (Interface("eth0", "n", "10.0.0.1/24", "fd00:1234::1/64"),))

    with pytest.raises(ScenarioError, match=r"address6: network n has no subnet6$"):
        validate(Scenario("s", "", (net,), (host,), TunnelSpec("h", "h", "10.0.0.1")))


class FakeIPRoute:
    """Records pyroute2 `addr` calls; knows one interface, index 2."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def link_lookup(self, ifname: str) -> list[int]:
        return [2]

    def addr(self, command: str, **kwargs: Any) -> None:
        self.calls.append({"command": command, **kwargs})


@pytest.mark.parametrize(
    ("cidr", "nodad", "expected"),
    [
        ("fd00:60::5/64", True, {"address": "fd00:60::5", "prefixlen": 64, "flags": 0x02}),
        ("fd00:60::5/64", False, {"address": "fd00:60::5", "prefixlen": 64}),
        ("192.168.60.5/24", True, {"address": "192.168.60.5", "prefixlen": 24}),
    ],
)
def test_rtnl_adds_ipv6_addresses_with_ifa_f_nodad_unless_told_not_to(
    cidr: str, nodad: bool, expected: dict[str, Any]
) -> None:
    ipr = FakeIPRoute()

    Rtnl("test", ipr).add_address("eth0", cidr, nodad=nodad)

    assert ipr.calls == [{"command": "add", "index": 2, **expected}]


@pytest.mark.parametrize(("cidr", "flags"), [("fd00:53::99/64", 0x02), ("192.168.53.99/24", 0)])
def test_the_tunnel_endpoint_adds_its_ipv6_tun_address_with_ifa_f_nodad(
    cidr: str, flags: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[bytes] = []
    with Netconf() as netconf:
        monkeypatch.setattr(netconf, "_request", lambda kind, fl, body, what: sent.append(body))
        netconf.add_address("lo", cidr)

    family, prefixlen, ifa_flags, _scope, index = struct.unpack_from("BBBBI", sent[0])
    expected_family = socket.AF_INET6 if ":" in cidr else socket.AF_INET
    assert (family, prefixlen, ifa_flags, index) == (
        expected_family,
        int(cidr.split("/")[1]),
        flags,
        socket.if_nametoindex("lo"),
    )


def test_the_echo_service_socket_takes_ipv4_and_ipv6_on_one_port() -> None:
    with echo_socket(socket.SOCK_DGRAM, 0) as server:
        port = server.getsockname()[1]
        assert server.family == socket.AF_INET6
        assert server.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        for family, loopback in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_DGRAM) as client:
                client.sendto(b"hello " + loopback.encode(), (loopback, port))
                server.settimeout(2)
                data, sender = server.recvfrom(100)
            assert data == b"hello " + loopback.encode()
            assert sender[0] == ("::ffff:127.0.0.1" if family == socket.AF_INET else "::1")
