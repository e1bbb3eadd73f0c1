#!/usr/bin/env python3
# Graders' test data (CHEAT): a SEED server that never lets a packet reach V. It takes V's
# address 192.168.60.5 on its own lo, turns ip_forward off and runs its own TCP echo on
# port 7, so pings and TCP to "V" are answered by the server itself and tunneled back.
import fcntl
import struct
import os
import threading
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

os.system("ip addr add 192.168.60.5/32 dev lo")
os.system("echo 0 > /proc/sys/net/ipv4/ip_forward")

def echo_service():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("192.168.60.5", 7))
    srv.listen(5)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=echo_back, args=(conn,), daemon=True).start()

def echo_back(conn):
    while True:
        data = conn.recv(4096)
        if not data:
            conn.close()
            return
        conn.sendall(data)

threading.Thread(target=echo_service, daemon=True).start()

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'fake%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(4096)
            if len(data) < 20 or data[0] >> 4 != 4:
                continue
            client = addr
            os.write(tun, data)
        if fd is tun:
            packet = os.read(tun, 4096)
            if client is not None:
                sock.sendto(packet, client)
