"""Socket buffers sized for lab bursts: with CAP_NET_ADMIN a socket may exceed the kernel's
net.core.rmem_max / wmem_max (212992 bytes by default, about 200 small datagrams), which a
burst through a lab fills while a busy process is not reading. Standard library only: the
tunnel endpoint and the wire use it too."""

from __future__ import annotations

import contextlib
import socket

SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # asm-generic/socket.h; not in Python's socket module


def enlarge(sock: socket.socket, size: int, *, receive: bool = True, send: bool = False) -> None:
    """Give `sock` buffers of `size` bytes, past the system maximum where allowed; without
    CAP_NET_ADMIN, as large as the system maximum lets it."""
    wanted = [(SO_RCVBUFFORCE, socket.SO_RCVBUF)] if receive else []
    wanted += [(SO_SNDBUFFORCE, socket.SO_SNDBUF)] if send else []
    for forced, plain in wanted:
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, size)
        except PermissionError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, plain, size)
