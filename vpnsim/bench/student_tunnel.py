"""A SEED student's tunnel with two threads, the baseline of the Hypothesis rate figure.

    python -m vpnsim.bench.student_tunnel client|server

The shape that the fastest submissions take: one thread moves TUN -> UDP, the other UDP ->
TUN, each blocking on its own read, one packet per system call, 2048-byte reads (the lab's
MTU is 1500). The SEED lab's fixed addresses, as students hardcode them; the server sends
to the last address a datagram came from. Configured over rtnetlink (vpnsim's tunnel
netconf) rather than `ip` commands: start-up is not what this baseline measures.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import sys
import threading

from vpnsim.tunnel.netconf import Netconf
from vpnsim.tunnel.tun import IFF_NO_PI, IFF_TUN, TUNSETIFF

SERVER = ("10.9.0.11", 9090)
READ_SIZE = 2048


def open_tun() -> tuple[int, str]:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"tun%d", IFF_TUN | IFF_NO_PI))
    return fd, ifr[:16].rstrip(b"\0").decode()


def main(argv: list[str]) -> int:
    side = argv[0] if argv else ""
    if side not in ("client", "server"):
        print("usage: python -m vpnsim.bench.student_tunnel client|server", file=sys.stderr)
        return 2
    tun, name = open_tun()
    with Netconf() as netconf:
        netconf.add_address(name, "192.168.53.99/24" if side == "client" else "192.168.53.1/24")
        netconf.set_up(name)
        if side == "client":
            netconf.add_route("192.168.60.0/24", name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", SERVER[1] if side == "server" else 0))
    peer: list[tuple[str, int]] = [SERVER] if side == "client" else []

    def tun_to_udp() -> None:
        while True:
            packet = os.read(tun, READ_SIZE)
            if peer:
                sock.sendto(packet, peer[-1])

    def udp_to_tun() -> None:
        while True:
            data, address = sock.recvfrom(READ_SIZE)
            if side == "server":
                peer[:] = [address]
            os.write(tun, data)

    threading.Thread(target=tun_to_udp, daemon=True).start()
    udp_to_tun()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
