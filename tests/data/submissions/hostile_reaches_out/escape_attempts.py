#!/usr/bin/env python3
# Graders' test data (HOSTILE, run only in a sandbox): everything a root program in a lab host
# can try to reach beyond it. Each attempt reports what happened; `attempt_all()` returns
# them as a dict (the jail tests assert each value, the corpus client prints them).
import ctypes
import errno
import importlib.util
import os
import socket
import struct

RTM_NEWLINK, RTM_GETLINK, NLMSG_ERROR, NLMSG_DONE = 16, 18, 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300
IFLA_IFNAME, IFLA_MASTER, IFLA_LINK, IFLA_LINKINFO, IFLA_LINK_NETNSID, IFLA_TARGET_NETNSID = 3, 10, 5, 18, 37, 46
IFLA_INFO_KIND = 1
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PTRACE_ATTACH = 16


def _attr(kind, data):
    length = 4 + len(data)
    return struct.pack("HH", length, kind) + data + b"\0" * (-length % 4)


def _request(kind, flags, attrs=b"", index=0):
    body = struct.pack("BxHiII", 0, 0, index, 0, 0) + attrs
    return struct.pack("IHHII", 16 + len(body), kind, flags, 1, 0) + body


def _talk(message):
    """Send one rtnetlink request; (error or 0, [attributes of each link in the answer])."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(2)
        sock.send(message)
        links = []
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset < len(data):
                length, kind = struct.unpack_from("IH", data, offset)
                if kind == NLMSG_ERROR:
                    return -struct.unpack_from("i", data, offset + 16)[0], links
                if kind == NLMSG_DONE:  # a dump's end; it carries the dump's error
                    return -struct.unpack_from("i", data, offset + 16)[0], links
                attrs = _attrs(data[offset + 32 : offset + length])
                attrs[-1] = data[offset + 20 : offset + 24]  # ifinfomsg's index
                links.append(attrs)
                offset += (length + 3) & ~3
            if not struct.unpack_from("H", message, 6)[0] & (NLM_F_DUMP | NLM_F_ACK):
                return 0, links  # a single answer, with no end marker


def _attrs(data):
    found, offset = {}, 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("HH", data, offset)
        found[kind & 0x3FFF] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def fabric_of_eth0():
    """(nsid, peer ifindex) of the namespace on the other end of eth0, as the kernel tells."""
    _, links = _talk(_request(RTM_GETLINK, NLM_F_REQUEST, _attr(IFLA_IFNAME, b"eth0\0")))
    attrs = links[0]
    return struct.unpack("i", attrs[IFLA_LINK_NETNSID])[0], struct.unpack("I", attrs[IFLA_LINK])[0]


def _errno_name(code):
    return errno.errorcode.get(code, str(code)) if code else "ok"


def attempt_all():
    libc = ctypes.CDLL(None, use_errno=True)
    found = {}
    nsid, peer = fabric_of_eth0()
    # The whole fabric's links, by its id (IFLA_TARGET_NETNSID).
    code, links = _talk(_request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP,
                                 _attr(IFLA_TARGET_NETNSID, struct.pack("i", nsid))))
    found["list_fabric_links"] = _errno_name(code) if code or not links else f"{len(links)} links"
    # A macvlan of ours on the bridge eth0's peer is a port of (then it talks to every host).
    bridge = peer
    for link in links:
        if struct.unpack("i", link[-1])[0] == peer and IFLA_MASTER in link:
            bridge = struct.unpack("I", link[IFLA_MASTER])[0]
    info = _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"macvlan\0"))
    attrs = (_attr(IFLA_IFNAME, b"sneak0\0") + _attr(IFLA_LINK, struct.pack("I", bridge))
             + _attr(IFLA_LINK_NETNSID, struct.pack("i", nsid)) + info)
    code, _ = _talk(_request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                             attrs))
    found["macvlan_on_fabric"] = _errno_name(code)
    for name, flags in (("new_user_namespace", CLONE_NEWUSER), ("new_net_namespace", CLONE_NEWNET)):
        found[name] = _errno_name(0 if libc.unshare(flags) == 0 else ctypes.get_errno())
    with open("/proc/self/ns/net") as ns:  # the jail's init's is out of reach already
        found["setns"] = _errno_name(0 if libc.setns(ns.fileno(), 0) == 0 else ctypes.get_errno())
    try:
        open("/proc/1/ns/net").close()
        found["init_namespaces"] = "ok"
    except OSError as exc:
        found["init_namespaces"] = _errno_name(exc.errno)
    result = libc.ptrace(PTRACE_ATTACH, 1, None, None)
    found["ptrace_init"] = _errno_name(0 if result == 0 else ctypes.get_errno())
    try:
        open("/proc/1/mem", "rb").close()
        found["init_memory"] = "ok"
    except OSError as exc:
        found["init_memory"] = _errno_name(exc.errno)
    found["root"] = sorted(os.listdir("/"))
    # The grader's folder of work copies: only its own copy (its workdir) may be there.
    try:
        copies = os.listdir("/var/lib/vpnsim/grade")
    except FileNotFoundError:
        copies = []
    found["other_work_copies"] = [c for c in copies if c != os.path.basename(os.getcwd())]
    found["environment"] = sorted(os.environ)
    found["vpnsim_importable"] = importlib.util.find_spec("vpnsim") is not None
    found["pyroute2_importable"] = importlib.util.find_spec("pyroute2") is not None
    return found


if __name__ == "__main__":
    import json

    print(json.dumps(attempt_all()), flush=True)
