"""Open a TUN (or TAP) device the way the SEED programs do: /dev/net/tun and TUNSETIFF."""

from __future__ import annotations

import fcntl
import os
import struct
from typing import Literal

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_PACKET = 65535


class TunFile:
    """A TUN/TAP file descriptor in non-blocking mode; the device lives while it is open."""

    def __init__(self, name_template: str = "tun%d", mode: Literal["tun", "tap"] = "tun") -> None:
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        flags = (IFF_TUN if mode == "tun" else IFF_TAP) | IFF_NO_PI
        try:
            ifr = fcntl.ioctl(
                self.fd, TUNSETIFF, struct.pack("16sH", name_template.encode(), flags)
            )
        except OSError:
            os.close(self.fd)
            raise
        self.name = ifr[:16].rstrip(b"\0").decode()
        self.mode = mode

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        """One packet, or None when none is waiting."""
        try:
            return os.read(self.fd, MAX_PACKET)
        except BlockingIOError:
            return None

    def write(self, packet: bytes) -> None:
        os.write(self.fd, packet)

    def persist(self) -> None:
        """Keep the device after this descriptor closes (until deleted or its netns goes)."""
        fcntl.ioctl(self.fd, TUNSETPERSIST, 1)

    def close(self) -> None:
        os.close(self.fd)
