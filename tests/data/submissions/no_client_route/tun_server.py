#!/usr/bin/env python3
# Graders' test data: SEED server, correct (wraps os.write in try/except). The mistake of this
# submission is in tun_client.py (no route into the TUN).
import fcntl, struct, os
from scapy.all import *

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

tun = os.open("/dev/net/tun", os.O_RDWR)
ifname_bytes = fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', b'garcia%d', IFF_TUN | IFF_NO_PI))
ifname = ifname_bytes.decode('UTF-8')[:16].strip("\x00")
print(f"Interface Name: {ifname}")

os.system(f"ip addr add 192.168.53.1/24 dev {ifname}")
os.system(f"ip link set dev {ifname} up")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))

client_addr = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    for fd in ready:
        if fd is sock:
            data, addr = sock.recvfrom(2048)
            try:
                pkt = IP(data)
                os.write(tun, data)
            except Exception as err:
                print(f"bad packet from {addr}: {err!r}")
                continue
            client_addr = addr
            print(f"{addr[0]}:{addr[1]} ==> {pkt.src} -> {pkt.dst}")
        if fd is tun:
            packet = os.read(tun, 2048)
            pkt = IP(packet)
            print(f"<== {pkt.src} -> {pkt.dst}")
            if client_addr:
                sock.sendto(packet, client_addr)
