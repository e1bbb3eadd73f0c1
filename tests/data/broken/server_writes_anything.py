#!/usr/bin/env python3
# A SEED server with the textbook's bug: it writes whatever arrives on UDP 9090 into its TUN.
# A datagram whose first byte is no IPv4/IPv6 version makes the write fail with EINVAL, and the
# server dies. Used to show that the corruption property finds it and shrinks to that byte.
import fcntl, os, select, socket, struct

tun = os.open("/dev/net/tun", os.O_RDWR)
ifname = fcntl.ioctl(tun, 0x400454ca, struct.pack("16sH", b"bug%d", 0x0001 | 0x1000))
ifname = ifname.decode()[:16].strip("\x00")
os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9090))
client = None
while True:
    ready, _, _ = select.select([sock, tun], [], [])
    if sock in ready:
        data, client = sock.recvfrom(2048)
        os.write(tun, data)
    if tun in ready:
        packet = os.read(tun, 2048)
        if client:
            sock.sendto(packet, client)
