#!/usr/bin/env python3
# Graders' test data (HOSTILE, run only in a sandbox): tries to escape (writes files in /etc,
# /root, /tmp; enters every netns it finds; mounts; kill -9 1), then is a correct SEED server.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

for path in ("/etc/vpnsim-pwned", "/root/vpnsim-pwned", "/tmp/vpnsim-pwned"):
    try:
        with open(path, "a") as f:
            f.write("novak was here (server)\n")
        print("wrote", path)
    except Exception as e:
        print("cannot write", path, e)
names = [line.split()[0] for line in os.popen("ip netns list").read().splitlines() if line.strip()]
print("netns:", names)
for name in names:
    os.system("ip netns exec {} ip link add vpnsim-pwned type dummy".format(name))
os.system("mount -t tmpfs none /mnt")
os.system("kill -9 1")

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack('16sH', b'novak%d', IFF_TUN | IFF_NO_PI)
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
            data, addr = sock.recvfrom(2048)
            if len(data) < 20 or data[0] >> 4 not in (4, 6):
                print("not IP: {} bytes from {}".format(len(data), addr))
                continue
            client = addr
            print("From socket <==: {}".format(IP(data).summary()))
            try:
                os.write(tun, data)
            except OSError as e:
                print("os.write:", e)
        if fd is tun:
            packet = os.read(tun, 2048)
            print("From tun    ==>: {}".format(IP(packet).summary()))
            if client:
                sock.sendto(packet, client)
