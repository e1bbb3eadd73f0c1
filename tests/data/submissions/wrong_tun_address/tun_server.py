#!/usr/bin/env python3
# Graders' test data: SEED server, correct (try/except around os.write). The mistake of this
# submission is in tun_client.py (wrong TUN address).
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'wang%d', IFF_TUN | IFF_NO_PI)
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
            data, addr = sock.recvfrom(2048)
            try:
                os.write(tun, data)
                client = addr
                print("From {}: {}".format(addr, IP(data).summary()))
            except Exception:
                print("Garbage from {} ({} bytes), skipped".format(addr, len(data)))
        if fd is tun:
            packet = os.read(tun, 2048)
            print("Return: {}".format(IP(packet).summary()))
            if client is not None:
                sock.sendto(packet, client)
