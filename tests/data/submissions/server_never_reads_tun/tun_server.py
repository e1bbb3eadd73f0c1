#!/usr/bin/env python3
# Graders' test data: SEED server whose select() only watches the socket, never the TUN:
# requests from U reach V, but V's replies are never read from the TUN and never sent back.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'kim%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: " + ifname)

os.system("ip addr add 192.168.53.1/24 dev " + ifname)
os.system("ip link set dev " + ifname + " up")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
while True:
    ready, _, _ = select.select([sock], [], [])
    for fd in ready:
        if fd == sock:
            data, client = sock.recvfrom(2048)
            print("from client " + str(client) + ": " + IP(data).summary())
            os.write(tun, data)
        if fd == tun:
            packet = os.read(tun, 2048)
            print("back to client: " + IP(packet).summary())
            sock.sendto(packet, client)
