#!/usr/bin/env python3
# Graders' test data: SEED client that never routes 192.168.60.0/24 into its TUN (no
# `ip route add`), so U still has no route to V and nothing enters the tunnel.
import fcntl, struct, os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifname_bytes = fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', b'garcia%d', IFF_TUN | IFF_NO_PI))
ifname = ifname_bytes.decode('UTF-8')[:16].strip("\x00")
print(f"Interface Name: {ifname}")

os.system(f"ip addr add 192.168.53.99/24 dev {ifname}")
os.system(f"ip link set dev {ifname} up")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server = ("10.9.0.11", 9090)

while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            pkt = IP(data)
            print(f"<== {pkt.src} -> {pkt.dst} ({len(data)} bytes)")
            os.write(tun, data)
        if fd is tun:
            packet = os.read(tun, 2048)
            pkt = IP(packet)
            print(f"==> {pkt.src} -> {pkt.dst} ({len(packet)} bytes)")
            sock.sendto(packet, server)
