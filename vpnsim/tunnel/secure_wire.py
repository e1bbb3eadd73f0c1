"""The AEAD mode's three datagram formats, parsed strictly (little-endian, reserved bytes zero).

```
initiation  type=1 | 0 0 0 | sender index (4) | peer hint (4)     | ephemeral key (32) | mac (16)
response    type=2 | 0 0 0 | sender index (4) | receiver index (4) | ephemeral key (32) | mac (16)
data        type=4 | 0 0 0 | receiver index (4) | counter (8) | AES-256-GCM(packet) + tag (16)
```

An index names a session at the end that chose it, so a receiver finds its keys without
looking at the sender's address (which may change: roaming). The peer hint is the server's
index of the client's current session when it rekeys (0 for a new client), so the server
moves that client's routes to the new session. The data header (16 bytes) is the AEAD's
associated data: a changed index or counter fails authentication. A data packet with an empty
plaintext is a keepalive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vpnsim.errors import PacketError
from vpnsim.tunnel.crypto import MAC_BYTES, PUBLIC_KEY_BYTES, TAG_BYTES

INITIATION = 1
RESPONSE = 2
DATA = 4

_HANDSHAKE = struct.Struct(f"<B3xII{PUBLIC_KEY_BYTES}s")
HANDSHAKE_BYTES = _HANDSHAKE.size + MAC_BYTES  # 60
DATA_HEADER = struct.Struct("<B3xIQ")
DATA_HEADER_BYTES = DATA_HEADER.size  # 16
DATA_MIN_BYTES = DATA_HEADER_BYTES + TAG_BYTES
_RESERVED = b"\0\0\0"


class MalformedMessage(PacketError, ValueError):
    """Bytes that are none of the three messages."""


@dataclass(frozen=True)
class Initiation:
    sender_index: int
    peer_hint: int
    ephemeral: bytes
    mac: bytes
    signed: bytes  # the bytes the mac covers


@dataclass(frozen=True)
class Response:
    sender_index: int
    receiver_index: int
    ephemeral: bytes
    mac: bytes
    signed: bytes


@dataclass(frozen=True)
class DataHeader:
    receiver_index: int
    counter: int


def message_type(datagram: bytes) -> int:
    """The type byte of a well-framed message; raises MalformedMessage otherwise."""
    if len(datagram) < DATA_HEADER_BYTES or datagram[1:4] != _RESERVED:
        raise MalformedMessage(f"{len(datagram)} bytes, not a message")
    kind = datagram[0]
    if kind == DATA:
        if len(datagram) < DATA_MIN_BYTES:
            raise MalformedMessage(f"data message of {len(datagram)} bytes")
        return kind
    if kind in (INITIATION, RESPONSE):
        if len(datagram) != HANDSHAKE_BYTES:
            raise MalformedMessage(f"handshake message of {len(datagram)} bytes")
        return kind
    raise MalformedMessage(f"message type {kind}")


def build_initiation(sender_index: int, peer_hint: int, ephemeral: bytes) -> bytes:
    """The initiation without its mac (append `handshake_mac` of these bytes)."""
    return _HANDSHAKE.pack(INITIATION, sender_index, peer_hint, ephemeral)


def build_response(sender_index: int, receiver_index: int, ephemeral: bytes) -> bytes:
    """The response without its mac."""
    return _HANDSHAKE.pack(RESPONSE, sender_index, receiver_index, ephemeral)


def parse_initiation(datagram: bytes) -> Initiation:
    """An initiation; the caller has checked `message_type`."""
    _, sender, hint, ephemeral = _HANDSHAKE.unpack_from(datagram)
    return Initiation(sender, hint, ephemeral, datagram[-MAC_BYTES:], datagram[:-MAC_BYTES])


def parse_response(datagram: bytes) -> Response:
    _, sender, receiver, ephemeral = _HANDSHAKE.unpack_from(datagram)
    return Response(sender, receiver, ephemeral, datagram[-MAC_BYTES:], datagram[:-MAC_BYTES])


def data_header(receiver_index: int, counter: int) -> bytes:
    return DATA_HEADER.pack(DATA, receiver_index, counter)


def parse_data_header(datagram: bytes) -> DataHeader:
    _, receiver, counter = DATA_HEADER.unpack_from(datagram)
    return DataHeader(receiver, counter)
