#!/usr/bin/env python3
# Graders' test data: SEED client, correct (two threads instead of select). The mistake of this
# submission is in tun_server.py (it crashes on the first packet).
import fcntl
import struct
import os
import threading
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'mueller%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.99/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

def sock_to_tun():
    while True:
        data, addr = sock.recvfrom(2048)
        pkt = IP(data)
        print("[sock->tun] {} -> {}".format(pkt.src, pkt.dst))
        os.write(tun, data)

t = threading.Thread(target=sock_to_tun)
t.start()

while True:
    packet = os.read(tun, 2048)
    pkt = IP(packet)
    print("[tun->sock] {} -> {}".format(pkt.src, pkt.dst))
    sock.sendto(packet, ("10.9.0.11", 9090))
