#!/usr/bin/env python3
# Graders' test data: SEED client that reads only 1000 bytes from its TUN (os.read(tun, 1000)),
# so every packet longer than 1000 bytes is cut short and then dropped. Small traffic works.
import fcntl
import struct
import os
import select
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'patel%d', IFF_TUN | IFF_NO_PI)
name = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: %s" % name)

os.system("ip addr add 192.168.53.99/24 dev %s" % name)
os.system("ip link set dev %s up" % name)
os.system("ip route add 192.168.60.0/24 dev %s" % name)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

while True:
    r, w, x = select.select([sock, tun], [], [])
    if sock in r:
        data, addr = sock.recvfrom(2048)
        pkt = IP(data)
        print("sock -> tun: %s > %s len=%d" % (pkt.src, pkt.dst, len(data)))
        os.write(tun, data)
    if tun in r:
        packet = os.read(tun, 1000)
        pkt = IP(packet)
        print("tun -> sock: %s > %s len=%d" % (pkt.src, pkt.dst, len(packet)))
        sock.sendto(packet, ("10.9.0.11", 9090))
