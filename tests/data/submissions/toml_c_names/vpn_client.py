#!/usr/bin/env python3
# Graders' test data: a correct SEED client under another file name (vpn_client.py, named in
# vpnsim.toml; there is no tun_client.py). No mistake.
import fcntl
import struct
import os
import threading
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'johnson%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.99/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

def downstream():
    while True:
        data, addr = sock.recvfrom(2048)
        if data[:1] and data[0] >> 4 in (4, 6):
            print("<<< {}".format(IP(data).summary()))
            os.write(tun, data)

threading.Thread(target=downstream, daemon=True).start()

while True:
    packet = os.read(tun, 2048)
    print(">>> {}".format(IP(packet).summary()))
    sock.sendto(packet, ("10.9.0.11", 9090))
