#!/usr/bin/env python3
# Graders' test data: SEED server, correct (drops non-IP datagrams; learns the client only from
# valid ones). The hostile part of this submission is in tun_client.py (a UDP flood).
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'tanaka%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
junk = 0
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            if len(data) < 20 or data[0] >> 4 not in (4, 6):
                junk += 1
                if junk % 10000 == 1:
                    print("{} junk datagrams so far (last from {})".format(junk, addr))
                continue
            client = addr
            print("From socket <==: {}".format(IP(data).summary()))
            try:
                os.write(tun, data)
            except OSError as e:
                print("os.write: {}".format(e))
        if fd is tun:
            packet = os.read(tun, 2048)
            print("From tun    ==>: {}".format(IP(packet).summary()))
            if client:
                sock.sendto(packet, client)
