#!/usr/bin/env python3
# VPN client over TCP (SEED TLS/SSL VPN lab, before the TLS part): python3 tls_client.py <host> <port>
# TODO: wrap the socket with ssl (certificates did not work yet)
import fcntl
import getpass
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

def recv_packet(sock):
    """One IP packet from the stream: its header says how long it is."""
    data = b""
    while len(data) < 4:
        more = sock.recv(4 - len(data))
        if not more:
            return b""
        data += more
    total = struct.unpack("!H", data[2:4])[0]
    while len(data) < total:
        more = sock.recv(total - len(data))
        if not more:
            return b""
        data += more
    return data


hostname = sys.argv[1]
port = int(sys.argv[2])

sock = socket.create_connection((hostname, port))
username = input("Username: ")
password = getpass.getpass("Password: ")
sock.send("LOGIN {} {}\n".format(username, password).encode())
answer = sock.recv(1024).decode().strip()
print(answer)
if not answer.startswith("OK"):
    sys.exit(1)
address = answer.split(" ")[1]

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack("16sH", b"park%d", IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode("UTF-8")[:16].strip("\x00")
print("Interface Name: {}".format(ifname))
os.system("ip addr add {} dev {}".format(address, ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))

while True:
    ready, _, _ = select.select([sock, tun], [], [])
    if sock in ready:
        data = recv_packet(sock)
        if not data:
            sys.exit(0)
        os.write(tun, data)
    if tun in ready:
        sock.send(os.read(tun, 2048))
