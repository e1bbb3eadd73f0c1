#!/usr/bin/env python3
# Graders' test data: SEED server, correct (ignores non-IP datagrams). The mistake of this
# submission is in tun_client.py (it never creates its TUN).
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'rossi%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name:", ifname)

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
            if len(data) < 20 or data[0] >> 4 != 4:
                print("ignoring junk from", addr)
                continue
            client = addr
            print("sock:", IP(data).summary())
            try:
                os.write(tun, data)
            except OSError as e:
                print("tun write error:", e)
        if fd is tun:
            packet = os.read(tun, 2048)
            print("tun: ", IP(packet).summary())
            if client:
                sock.sendto(packet, client)
