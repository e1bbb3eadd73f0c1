#!/usr/bin/env python3
# TLS VPN server (SEED TLS/SSL VPN lab): python3 tls_server.py <cert> <key> <shadow>
# Accept a client, check its password, then tunnel between it and the TUN until it leaves;
# then wait for the next client. (Only one client at a time: the listening socket is not in
# the select loop while a client is connected.)
import fcntl
import os
import select
import socket
import ssl
import struct
import sys

try:
    from crypt import crypt
except ImportError:
    import ctypes
    import ctypes.util

    _libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt"))
    _libcrypt.crypt.restype = ctypes.c_char_p

    def crypt(word, salt):
        return _libcrypt.crypt(word.encode(), salt.encode()).decode()

TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

SERVER_CERT, SERVER_PRIVATE, SHADOW = sys.argv[1], sys.argv[2], sys.argv[3]

tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack("16sH", b"lee%d", IFF_TUN | IFF_NO_PI)
ifname = fcntl.ioctl(tun, TUNSETIFF, ifr).decode("UTF-8")[:16].strip("\x00")
print("Interface Name: {}".format(ifname))
os.system("ip addr add 192.168.53.1/24 dev {}".format(ifname))
os.system("ip link set dev {} up".format(ifname))

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(SERVER_CERT, SERVER_PRIVATE)

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", 4433))
sock.listen(5)


def check_password(user, password):
    with open(SHADOW) as f:
        for line in f:
            fields = line.strip().split(":")
            if fields[0] == user:
                return crypt(password, fields[1]) == fields[1]
    return False


while True:
    newsock, addr = sock.accept()
    try:
        ssock = context.wrap_socket(newsock, server_side=True)
        login = ssock.recv(1024).decode().strip().split(" ")
    except (ssl.SSLError, OSError) as e:
        print("TLS failed: {}".format(e))
        newsock.close()
        continue
    if not (len(login) == 3 and login[0] == "LOGIN" and check_password(login[1], login[2])):
        ssock.send(b"DENIED wrong user name or password\n")
        ssock.close()
        continue
    ssock.send(b"OK 192.168.53.5/24\n")
    print("{} logged in as {}".format(addr, login[1]))
    while True:
        ready, _, _ = select.select([ssock, tun], [], [])
        if ssock in ready:
            data = ssock.recv(2048)
            if not data:
                print("client gone")
                ssock.close()
                break
            os.write(tun, data)
        if tun in ready:
            ssock.send(os.read(tun, 2048))
