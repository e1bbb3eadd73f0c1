"""`net.buffers.enlarge`: past the system's maximum with CAP_NET_ADMIN, up to it without."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from vpnsim.net.buffers import SO_RCVBUFFORCE, SO_SNDBUFFORCE, enlarge

SYSTEM_MAX = max(
    int(Path(f"/proc/sys/net/core/{key}").read_text()) for key in ("rmem_max", "wmem_max")
)
# Past the machine's maximum, whatever an administrator (or a benchmark) set it to.
SIZE = max(8 << 20, 2 * SYSTEM_MAX)


@pytest.mark.skipif(os.geteuid() != 0, reason="CAP_NET_ADMIN is what is tested")
def test_with_cap_net_admin_both_buffers_pass_the_system_maximum() -> None:
    assert SIZE > SYSTEM_MAX  # else this test would prove nothing
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        enlarge(sock, SIZE, send=True)

        # The kernel doubles the size asked for, to allow for its bookkeeping.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * SIZE
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * SIZE


class UnprivilegedSocket:
    """A socket without CAP_NET_ADMIN: FORCE options are refused, as the kernel refuses them."""

    def __init__(self) -> None:
        self.options: dict[int, int] = {}

    def setsockopt(self, level: int, option: int, value: int) -> None:
        assert level == socket.SOL_SOCKET
        if option in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
            raise PermissionError(1, "Operation not permitted")
        self.options[option] = value


def test_without_it_the_plain_options_ask_for_the_same_size() -> None:
    sock = UnprivilegedSocket()

    enlarge(sock, SIZE)  # type: ignore[arg-type]
    assert sock.options == {socket.SO_RCVBUF: SIZE}  # the kernel caps it at rmem_max

    enlarge(sock, SIZE, receive=False, send=True)  # type: ignore[arg-type]
    assert sock.options == {socket.SO_RCVBUF: SIZE, socket.SO_SNDBUF: SIZE}
