#!/usr/bin/env python3
# A SEED client with a classic bug: it reads 1000 bytes from its TUN, so any packet longer than
# 1000 bytes is cut (and then dropped as malformed by the server). Used to show that the
# property tests find it and shrink to the smallest failing payload.
import fcntl, os, select, socket, struct

tun = os.open("/dev/net/tun", os.O_RDWR)
ifname = fcntl.ioctl(tun, 0x400454ca, struct.pack("16sH", b"bug%d", 0x0001 | 0x1000))
ifname = ifname.decode()[:16].strip("\x00")
os.system("ip addr add 192.168.53.99/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    if sock in ready:
        data, _ = sock.recvfrom(2048)
        os.write(tun, data)
    if tun in ready:
        sock.sendto(os.read(tun, 1000), ("10.9.0.11", 9090))
