#!/usr/bin/env python3
# Graders' test data: SEED server, correct (try/except around os.write). The mistake of this
# submission is in tun_client.py (a SyntaxError).
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'miller%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: " + ifname)

os.system("ip addr add 192.168.53.1/24 dev " + ifname)
os.system("ip link set dev " + ifname + " up")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            try:
                print("from client: " + IP(data).summary())
                os.write(tun, data)
            except Exception as e:
                print("not a packet: " + repr(e))
                continue
            client = addr
        if fd is tun:
            packet = os.read(tun, 2048)
            print("to client: " + IP(packet).summary())
            if client:
                sock.sendto(packet, client)
