#!/usr/bin/env python3
# Graders' test data (CHEAT): a SEED server that never writes to its TUN. It takes each
# tunneled packet and sends it onto eth1 itself with scapy's send(), so it reaches V without
# the kernel forwarding it; V's replies come back through the TUN as usual.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'inject%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(4096)
            if len(data) < 20 or data[0] >> 4 != 4:
                continue
            client = addr
            pkt = IP(data)
            print("Inject on eth1: {} --> {}".format(pkt.src, pkt.dst))
            send(pkt, iface="eth1", verbose=False)
        if fd is tun:
            packet = os.read(tun, 4096)
            if client is not None:
                sock.sendto(packet, client)
