#!/usr/bin/env python3
# Graders' test data (CHEAT): a SEED client that creates its TUN as asked but routes
# 192.168.60.0/24 via 10.9.0.11 on eth0, so pings to V travel in clear through the server
# (which forwards) and never enter the tunnel.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'detour%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.99/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 via 10.9.0.11 dev eth0")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, (ip, port) = sock.recvfrom(4096)
            os.write(tun, data)
        if fd is tun:
            packet = os.read(tun, 4096)
            sock.sendto(packet, ("10.9.0.11", 9090))
