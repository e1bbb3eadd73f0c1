#!/usr/bin/env python3
# Graders' test data (HOSTILE, run only in a sandbox): SEED client that spins in a busy loop
# (`while True: pass`) before it creates any TUN. The server is correct.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

print("starting...")
while True:
    pass

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'lopez%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
os.system("ip addr add 192.168.53.99/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    if sock in ready:
        data, addr = sock.recvfrom(2048)
        os.write(tun, data)
    if tun in ready:
        sock.sendto(os.read(tun, 2048), ("10.9.0.11", 9090))
