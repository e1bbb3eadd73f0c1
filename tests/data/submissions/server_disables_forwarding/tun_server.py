#!/usr/bin/env python3
# Graders' test data: SEED server that writes 0 to /proc/sys/net/ipv4/ip_forward (a "cleanup"
# line copied from elsewhere): packets reach its TUN, but the kernel no longer forwards them to V.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

# make sure the kernel does not route by itself, our program does the forwarding
os.system("echo 0 > /proc/sys/net/ipv4/ip_forward")

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'okafor%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: %s" % ifname)

os.system("ip addr add 192.168.53.1/24 dev %s" % ifname)
os.system("ip link set dev %s up" % ifname)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            if data[:1] and data[0] >> 4 == 4:
                client = addr
                print("IN : %s from %s:%d" % (IP(data).summary(), addr[0], addr[1]))
                os.write(tun, data)
            else:
                print("junk from %s:%d" % addr)
        if fd is tun:
            packet = os.read(tun, 2048)
            print("OUT: %s" % IP(packet).summary())
            if client:
                sock.sendto(packet, client)
