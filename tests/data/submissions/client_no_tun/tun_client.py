#!/usr/bin/env python3
# Graders' test data: SEED client with an ordering bug: it waits on sock.recvfrom() for the
# server to "say hello" before creating its TUN, so it blocks forever and no TUN ever exists.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

SERVER = ("10.9.0.11", 9090)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

print("Waiting for the server...")
data, server_addr = sock.recvfrom(2048)
print("Server is up:", server_addr)

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'rossi%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name:", ifname)

os.system("ip addr add 192.168.53.99/24 dev " + ifname)
os.system("ip link set dev " + ifname + " up")
os.system("ip route add 192.168.60.0/24 dev " + ifname)

while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            print("sock:", IP(data).summary())
            os.write(tun, data)
        if fd is tun:
            packet = os.read(tun, 2048)
            print("tun: ", IP(packet).summary())
            sock.sendto(packet, SERVER)
