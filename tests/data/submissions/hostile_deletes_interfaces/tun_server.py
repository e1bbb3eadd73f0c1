#!/usr/bin/env python3
# Graders' test data (HOSTILE, run only in a sandbox): a SEED server that, on its first datagram,
# deletes every interface it sees but lo and its TUN (eth0, eth1) and keeps running.
import fcntl
import struct
import os
import threading
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'dubois%d', IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode('UTF-8')[:16].strip("\x00")
print("Interface Name: {}".format(ifname))

os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))

def break_everything():
    for line in os.popen("ip -o link").read().splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name not in ("lo", ifname):
            print("deleting", name)
            os.system("ip link del " + name)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client = None
timer = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            if len(data) < 20 or data[0] >> 4 not in (4, 6):
                continue
            if timer is None:
                timer = True
                break_everything()
            client = addr
            print("From socket <==: {}".format(IP(data).summary()))
            os.write(tun, data)
        if fd is tun:
            packet = os.read(tun, 2048)
            print("From tun    ==>: {}".format(IP(packet).summary()))
            if client:
                try:
                    sock.sendto(packet, client)
                except OSError as e:
                    print("sendto:", e)
