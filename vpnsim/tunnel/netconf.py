"""Configure the endpoint's own TUN: address, MTU, up, routes, over one rtnetlink socket.

Why not pyroute2 here, as everywhere else: importing it costs ~150 ms, and the tunnel's
start-up is on the critical path of every lab (the harness waits for both ends). The
endpoint only ever needs three requests, all in its own namespace, so they are built here
from the stable rtnetlink ABI (linux/rtnetlink.h) and each is acknowledged or raises.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

RTM_NEWLINK = 16
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_ERROR = 2
IFF_UP = 0x1
IFLA_MTU = 4
IFLA_GSO_MAX_SIZE = 41
IFA_LOCAL = 2
IFA_ADDRESS = 1
IFA_F_NODAD = 0x02  # ifaddrmsg flags: skip duplicate address detection (IPv6)
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)


class Netconf:
    """An rtnetlink socket in the calling process's namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Netconf:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, kind: int, flags: int, body: bytes, what: str) -> None:
        self._seq += 1
        header = struct.pack(
            "IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self._seq, 0
        )
        self._sock.send(header + body)
        reply = self._sock.recv(65536)
        _length, msg_type, _flags, seq, _pid = struct.unpack_from("IHHII", reply)
        if msg_type != NLMSG_ERROR or seq != self._seq:
            raise OSError(f"{what}: unexpected netlink reply type {msg_type}")
        (error,) = struct.unpack_from("i", reply, 16)
        if error:
            raise OSError(-error, f"{what}: {os.strerror(-error)}")

    def set_up(self, ifname: str, mtu: int | None = None, gso_max_size: int | None = None) -> None:
        index = socket.if_nametoindex(ifname)
        # struct ifinfomsg: family, pad, type, index, flags, change
        body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)
        if mtu is not None:
            body += _attr(IFLA_MTU, struct.pack("I", mtu))
        if gso_max_size is not None:  # the largest super-packet the device is handed
            body += _attr(IFLA_GSO_MAX_SIZE, struct.pack("I", gso_max_size))
        self._request(RTM_NEWLINK, 0, body, f"set {ifname} up")

    def add_address(self, ifname: str, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        packed = iface.ip.packed
        # struct ifaddrmsg: family, prefixlen, flags, scope, index
        body = struct.pack(
            "BBBBI",
            family,
            iface.network.prefixlen,
            # IPv6: usable at once, with no duplicate address detection to wait for.
            IFA_F_NODAD if iface.version == 6 else 0,
            RT_SCOPE_UNIVERSE,
            socket.if_nametoindex(ifname),
        )
        body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add {cidr} on {ifname}")

    def add_route(self, cidr: str, ifname: str, gateway: str | None = None) -> None:
        """A route to `cidr` into device `ifname` (like `ip route add CIDR dev TUN`), or via
        `gateway` on it (`ip route add CIDR via GATEWAY dev TAP`)."""
        net = ipaddress.ip_network(cidr)
        family = socket.AF_INET if net.version == 4 else socket.AF_INET6
        # struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
        on_link = net.version == 4 and gateway is None
        scope = RT_SCOPE_LINK if on_link else RT_SCOPE_UNIVERSE  # as `ip route` sets
        body = struct.pack(
            "BBBBBBBBI",
            family,
            net.prefixlen,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            scope,
            RTN_UNICAST,
            0,
        )
        body += _attr(RTA_DST, net.network_address.packed)
        body += _attr(RTA_OIF, struct.pack("i", socket.if_nametoindex(ifname)))
        what = f"route {cidr} dev {ifname}"
        if gateway is not None:
            body += _attr(RTA_GATEWAY, ipaddress.ip_address(gateway).packed)
            what = f"route {cidr} via {gateway} dev {ifname}"
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, what)
