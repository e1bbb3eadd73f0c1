#!/usr/bin/env python3
# TLS VPN server (SEED TLS/SSL VPN lab): python3 tls_server.py <cert> <key> <shadow>
# One select loop over the TUN, the listening socket and every client; each client's TUN
# address is learnt from the packets it sends.
import fcntl
import os
import select
import socket
import ssl
import struct
import sys

try:
    from crypt import crypt  # Python <= 3.12
except ImportError:  # removed in 3.13: the C library's crypt(3)
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

# Create the tun interface
tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = struct.pack("16sH", b"wang%d", IFF_TUN | IFF_NO_PI)
ifname_bytes = fcntl.ioctl(tun, TUNSETIFF, ifr)
ifname = ifname_bytes.decode("UTF-8")[:16].strip("\x00")
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


clients = []  # ssl sockets
routes = {}  # tun ip -> ssl socket
next_ip = 5

while True:
    ready, _, _ = select.select([sock, tun] + clients, [], [])
    for fd in ready:
        if fd is sock:
            newsock, addr = sock.accept()
            try:
                ssock = context.wrap_socket(newsock, server_side=True)
                login = ssock.recv(1024).decode().strip().split(" ")
            except (ssl.SSLError, OSError) as e:
                print("TLS failed with {}: {}".format(addr, e))
                newsock.close()
                continue
            if len(login) == 3 and login[0] == "LOGIN" and check_password(login[1], login[2]):
                ssock.send("OK 192.168.53.{}/24\n".format(next_ip).encode())
                routes["192.168.53.{}".format(next_ip)] = ssock
                next_ip += 1
                clients.append(ssock)
                print("{} logged in as {}".format(addr, login[1]))
            else:
                ssock.send(b"DENIED wrong user name or password\n")
                ssock.close()
        elif fd == tun:
            packet = os.read(tun, 2048)
            dst = socket.inet_ntoa(packet[16:20])
            if dst in routes:
                routes[dst].send(packet)
        else:
            data = fd.recv(2048)
            if not data:
                print("client gone")
                clients.remove(fd)
                for ip in [ip for ip, s in routes.items() if s is fd]:
                    del routes[ip]
                continue
            routes[socket.inet_ntoa(data[12:16])] = fd
            os.write(tun, data)
