#!/usr/bin/env python3
# Graders' test data: SEED server, correct (try/except around os.write). The hostile part of
# this submission is in tun_client.py (a busy loop).
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'lopez%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    if sock in ready:
        data, addr = sock.recvfrom(2048)
        try:
            os.write(tun, data)
            client = addr
            print("{} ==> {}".format(addr, IP(data).summary()))
        except Exception as e:
            print("dropped {} bytes from {}: {}".format(len(data), addr, e))
    if tun in ready:
        packet = os.read(tun, 2048)
        print("<== {}".format(IP(packet).summary()))
        if client:
            sock.sendto(packet, client)
