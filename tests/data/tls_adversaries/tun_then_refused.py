"""A client that makes its TUN before the handshake, then says it was refused and exits 2:
the refusal text is right, but a TUN came up."""

import sys

from vpnsim.tunnel.tun import TunFile

tun = TunFile("tun%d")
print("client: refused: the server's certificate is not signed by a trusted CA", file=sys.stderr)
sys.exit(2)
