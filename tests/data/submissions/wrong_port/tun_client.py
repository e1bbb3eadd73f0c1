#!/usr/bin/env python3
# Graders' test data: SEED client that sends its datagrams to port 9091 instead of 9090
# (the server listens on 9090), so nothing ever reaches the server program.
import fcntl
import struct
import os
import threading
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

SERVER_IP = "10.9.0.11"
SERVER_PORT = 9091

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'ivanov%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: " + ifname)

os.system("ip addr add 192.168.53.99/24 dev " + ifname)
os.system("ip link set dev " + ifname + " up")
os.system("ip route add 192.168.60.0/24 dev " + ifname)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

def from_server():
    while True:
        data, addr = sock.recvfrom(2048)
        print("RECV", addr, IP(data).summary())
        os.write(tun, data)

threading.Thread(target=from_server, daemon=True).start()

while True:
    packet = os.read(tun, 2048)
    print("SEND", IP(packet).summary())
    sock.sendto(packet, (SERVER_IP, SERVER_PORT))
