#!/usr/bin/env python3
# Graders' test data: SEED server, correct (threads; try/except around os.write). The mistake
# of this submission is in tun_client.py (wrong port).
import fcntl
import struct
import os
import threading
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'ivanov%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: " + ifname)

os.system("ip addr add 192.168.53.1/24 dev " + ifname)
os.system("ip link set dev " + ifname + " up")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))
client = []

def from_client():
    while True:
        data, addr = sock.recvfrom(2048)
        try:
            print("RECV", addr, IP(data).summary())
        except Exception as e:
            print("BAD ", addr, repr(e))
            continue
        client[:] = [addr]  # before writing: the reply may be read from the TUN at once
        try:
            os.write(tun, data)
        except OSError as e:
            print("BAD ", addr, repr(e))

threading.Thread(target=from_client, daemon=True).start()

while True:
    packet = os.read(tun, 2048)
    print("SEND", IP(packet).summary())
    if client:
        sock.sendto(packet, client[0])
