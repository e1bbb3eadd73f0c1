#!/usr/bin/env python3
# Graders' test data: SEED server, correct (checks the IP version nibble before writing). The
# mistake of this submission is in tun_client.py (reads 1000 bytes).
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

os.system("ip addr add 192.168.53.1/24 dev %s" % name)
os.system("ip link set dev %s up" % name)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

peer = None
while True:
    r, w, x = select.select([sock, tun], [], [])
    if sock in r:
        data, addr = sock.recvfrom(2048)
        if len(data) < 20 or (data[0] >> 4) not in (4, 6):
            print("not an IP packet from %s:%d, ignored" % addr)
        else:
            peer = addr
            pkt = IP(data)
            print("sock -> tun: %s > %s len=%d" % (pkt.src, pkt.dst, len(data)))
            try:
                os.write(tun, data)
            except OSError as e:
                print("write failed: %s" % e)
    if tun in r:
        packet = os.read(tun, 2048)
        pkt = IP(packet)
        print("tun -> sock: %s > %s len=%d" % (pkt.src, pkt.dst, len(packet)))
        if peer is not None:
            sock.sendto(packet, peer)
