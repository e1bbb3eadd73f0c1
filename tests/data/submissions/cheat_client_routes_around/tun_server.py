#!/usr/bin/env python3
# Graders' test data (CHEAT partner): a correct, careful SEED tunnel server; the client in
# this folder is the cheat.
import fcntl
import struct
import os
import select
import socket
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'nguyen%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name:", ifname)

os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None  # (ip, port) of the client, learned from its packets
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(4096)
            if len(data) < 20 or data[0] >> 4 not in (4, 6):
                print("Dropped {} bytes from {}:{}: not an IP packet".format(len(data), *addr))
                continue
            try:
                os.write(tun, data)
            except OSError as e:
                print("Dropped bad packet from {}:{}: {}".format(addr[0], addr[1], e))
                continue
            client = addr
            pkt = IP(data)
            print("{}:{} --> 0.0.0.0:9090  Inside: {} --> {}".format(addr[0], addr[1], pkt.src, pkt.dst))
        if fd is tun:
            packet = os.read(tun, 4096)
            pkt = IP(packet)
            if client is None:
                print("No client yet, dropping {} --> {}".format(pkt.src, pkt.dst))
                continue
            print("Return: {} --> {} to {}:{}".format(pkt.src, pkt.dst, client[0], client[1]))
            sock.sendto(packet, client)
