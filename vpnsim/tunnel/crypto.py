"""The AEAD mode's cryptography, and the only module of vpnsim that imports `cryptography`.

- Key agreement: X25519 ephemeral keys, a fresh pair per handshake (forward secrecy).
- Authentication: a pre-shared key (PSK). The initiation carries an HMAC under a key derived
  from the PSK; the session keys are HKDF-SHA256 of the X25519 secret salted with the PSK, and
  the response carries an HMAC under one of them, so only a PSK holder that saw our ephemeral
  key can answer. To authenticate with the lab CA later, each side would add its certificate
  and a signature over the transcript (both ephemeral keys and indices) to its handshake
  message, verified against the CA, in place of the PSK HMAC (`handshake_mac`); the key
  schedule (`derive_session_keys`) stays as it is, with an all-zero salt when there is no PSK.
- Data: AES-256-GCM (AES-NI on x86: 1.3 µs per 1400-byte packet here, ChaCha20-Poly1305
  2.4 µs), one key per direction per session; the 96-bit nonce is the packet's 64-bit counter,
  which only ever counts up, and a session is retired before it could wrap.
- Replay: a sliding window of `REPLAY_WINDOW` counters (RFC 6479's semantics, as a bitmap).

Handshake messages are authenticated with HMAC, never with an AEAD under a fixed nonce: a
repeated (key, nonce) pair would give away GCM's authentication key.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vpnsim.errors import PacketError, UsageError

KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32
MAC_BYTES = 16
TAG_BYTES = 16
REPLAY_WINDOW = 2048
# No counter reaches this: a session that has sent this many packets is retired (the 96-bit
# nonce would still be unique, but the receiver's window must stay below 2**64).
REJECT_AFTER_MESSAGES = 2**64 - REPLAY_WINDOW - 1
PSK_MIN_BYTES = 16
_PROTOCOL = b"vpnsim-aead-v1"


class CryptoError(PacketError, ValueError):
    """A peer's key material we refuse (e.g. a low-order X25519 point)."""


class PskFileError(UsageError, ValueError):
    """A PSK file that cannot be used; the message names the file."""


def load_psk(path: Path) -> bytes:
    """The 32-byte PSK from a file holding a secret of at least PSK_MIN_BYTES bytes.

    The file's bytes (surrounding whitespace stripped, so `head -c 32 /dev/urandom | base64`
    and an editor's trailing newline both work) are hashed to the key.
    """
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise PskFileError(f"PSK file {path}: {exc.strerror or exc}") from exc
    if len(secret) < PSK_MIN_BYTES:
        raise PskFileError(
            f"PSK file {path}: {len(secret)} bytes of secret, need at least {PSK_MIN_BYTES}"
        )
    return hashlib.sha256(_PROTOCOL + b" psk\0" + secret).digest()


class EphemeralKey:
    """One side's X25519 key pair for one handshake."""

    def __init__(self, private_bytes: bytes) -> None:
        # From given bytes, not generated here: the endpoint injects its randomness (tests are
        # deterministic; the driver passes os.urandom).
        self._private = X25519PrivateKey.from_private_bytes(private_bytes)
        self.public = self._private.public_key().public_bytes_raw()

    def shared_secret(self, peer_public: bytes) -> bytes:
        try:
            return self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as exc:  # all-zero result: a low-order point
            raise CryptoError(f"X25519 with the peer's key: {exc}") from exc


def initiation_mac_key(psk: bytes) -> bytes:
    return _hkdf(psk, b"", b"initiation mac", KEY_BYTES)


def handshake_mac(key: bytes, message: bytes) -> bytes:
    """A truncated HMAC-SHA256 of a handshake message."""
    return hmac.digest(key, message, "sha256")[:MAC_BYTES]


def mac_matches(key: bytes, message: bytes, mac: bytes) -> bool:
    return hmac.compare_digest(handshake_mac(key, message), mac)


@dataclass(frozen=True)
class SessionKeys:
    """What one handshake yields: a key to confirm the response, and one key per direction."""

    confirm: bytes
    initiator_to_responder: bytes
    responder_to_initiator: bytes


def derive_session_keys(
    psk: bytes, shared_secret: bytes, initiator_public: bytes, responder_public: bytes
) -> SessionKeys:
    """HKDF-SHA256 over the X25519 secret, salted with the PSK, bound to both public keys."""
    info = _PROTOCOL + b" session\0" + initiator_public + responder_public
    okm = _hkdf(shared_secret, psk, info, 3 * KEY_BYTES)
    return SessionKeys(okm[:32], okm[32:64], okm[64:96])


class PacketCipher:
    """AES-256-GCM for data packets of one direction; the nonce is the packet counter."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, counter: int, header: bytes, plaintext: bytes) -> bytes:
        return self._aead.encrypt(_nonce(counter), plaintext, header)

    def open(self, counter: int, header: bytes, ciphertext: bytes) -> bytes | None:
        """The plaintext, or None if the bytes (header included) are not authentic."""
        try:
            return self._aead.decrypt(_nonce(counter), ciphertext, header)
        except InvalidTag:
            return None


_nonce = struct.Struct("<4xQ").pack  # 4 zero bytes, then the counter


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt or None, info).derive(ikm)


class ReplayWindow:
    """Which counters of one receive key were accepted: the highest, and the WINDOW below it.

    A counter is fresh if it is above the highest seen, or within the window below it and not
    yet seen. `fresh` is asked before decrypting (cheap rejection); `accept` marks a counter
    only once its packet was authentic, so forged packets cannot move the window.
    """

    __slots__ = ("_seen", "highest", "size")

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self.highest = -1  # nothing seen yet
        # Bit i set: counter `highest - i` was accepted.
        self._seen = 0

    def fresh(self, counter: int) -> bool:
        if counter >= REJECT_AFTER_MESSAGES:
            return False
        if counter > self.highest:
            return True
        behind = self.highest - counter
        return behind < self.size and not (self._seen >> behind) & 1

    def accept(self, counter: int) -> bool:
        """Marks `counter` seen; False (and nothing marked) if it is not fresh."""
        if not self.fresh(counter):
            return False
        if counter > self.highest:
            shift = counter - self.highest
            # A jump past the whole window forgets it (and never shifts by up to 2**64 bits).
            kept = (self._seen << shift) & ((1 << self.size) - 1) if shift < self.size else 0
            self._seen = kept | 1
            self.highest = counter
        else:
            self._seen |= 1 << (self.highest - counter)
        return True
