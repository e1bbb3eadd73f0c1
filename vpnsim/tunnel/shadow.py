"""Passwords as /etc/shadow keeps them: `user:$6$salt$hash:...`, checked without `crypt`.

The SEED TLS lab checks the client's login with `getspnam` + `crypt(3)` against /etc/shadow.
Python's `crypt` module is deprecated and gone in 3.13 (this project runs on 3.11+), so the
SHA-crypt schemes a shadow file holds by default on older systems, `$6$` (SHA-512) and `$5$`
(SHA-256), are implemented here with hashlib, after Drepper's specification
(https://www.akkadia.org/drepper/SHA-crypt.txt). Other schemes, yescrypt (`$y$`, Debian 11+'s
default) first, are passed to the C library's `crypt_r` (libxcrypt) when one is installed:
no well-kept Python package implements yescrypt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vpnsim.errors import UsageError

HASH64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DEFAULT_ROUNDS = 5000
MIN_ROUNDS, MAX_ROUNDS = 1000, 999_999_999
MAX_SALT = 16

# The byte order of the final encoding, three bytes per group (see the specification).
_ORDER = {
    "6": (
        *(42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6),
        *(7, 49, 28, 29, 8, 50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34),
        *(35, 14, 56, 57, 36, 15, 16, 58, 37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62),
        63,
    ),
    "5": (
        *(20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6),
        *(17, 7, 27, 8, 28, 18, 29, 19, 9, 30, 31),
    ),
}
_HASHES: dict[str, Callable[..., hashlib._Hash]] = {"6": hashlib.sha512, "5": hashlib.sha256}


class ShadowError(UsageError, ValueError):
    """A shadow file or hash that cannot be read: names the file and line."""


class UnsupportedHash(ShadowError):
    """A hash scheme neither hashlib nor an installed C library can check."""


@dataclass(frozen=True)
class ShadowEntry:
    user: str
    hash: str


def sha_crypt(password: str, setting: str) -> str:
    """The `$6$` or `$5$` crypt(3) string of `password` under `setting` (`$6$[rounds=N$]salt`,
    or a whole hash: its salt and rounds are used)."""
    parts = setting.split("$")
    if len(parts) < 3 or parts[0] != "" or parts[1] not in _HASHES:
        raise UnsupportedHash(f"not a SHA-crypt setting: {setting[:20]!r}")
    scheme, rest = parts[1], parts[2:]
    rounds, explicit = DEFAULT_ROUNDS, False
    if rest[0].startswith("rounds="):
        try:
            rounds = min(max(int(rest[0][len("rounds=") :]), MIN_ROUNDS), MAX_ROUNDS)
        except ValueError:
            raise ShadowError(f"bad rounds in {setting[:30]!r}") from None
        explicit, rest = True, rest[1:]
    if not rest:
        raise ShadowError(f"no salt in {setting[:30]!r}")
    salt = rest[0][:MAX_SALT].encode()
    digest = _sha_crypt_digest(_HASHES[scheme], password.encode(), salt, rounds)
    encoded = _hash64(bytes(digest[i] for i in _ORDER[scheme]))
    prefix = f"${scheme}$" + (f"rounds={rounds}$" if explicit else "")
    return f"{prefix}{salt.decode()}${encoded}"


def _sha_crypt_digest(
    new: Callable[..., hashlib._Hash], password: bytes, salt: bytes, rounds: int
) -> bytes:
    size = new().digest_size
    b = new(password + salt + password).digest()
    a = new(password + salt)
    a.update(_repeat(b, len(password), size))
    length = len(password)
    while length:
        a.update(b if length & 1 else password)
        length >>= 1
    c = a.digest()
    p = _repeat(new(password * len(password)).digest(), len(password), size)
    s = _repeat(new(salt * (16 + c[0])).digest(), len(salt), size)
    for r in range(rounds):
        h = new(p if r & 1 else c)
        if r % 3:
            h.update(s)
        if r % 7:
            h.update(p)
        h.update(c if r & 1 else p)
        c = h.digest()
    return c


def _repeat(block: bytes, length: int, size: int) -> bytes:
    return block * (length // size) + block[: length % size]


def _hash64(data: bytes) -> str:
    """crypt's base64: three bytes at a time, least significant six bits first."""
    out = []
    for i in range(0, len(data), 3):
        group = data[i : i + 3]
        value = int.from_bytes(group, "little")
        for _ in range(len(group) + 1):
            out.append(HASH64[value & 0x3F])
            value >>= 6
    return "".join(out)


def hash_password(password: str, salt: str | None = None) -> str:
    """A `$6$` (SHA-512) hash, as `mkpasswd -m sha-512` or `openssl passwd -6` makes it."""
    salt = salt if salt is not None else "".join(secrets.choice(HASH64) for _ in range(16))
    return sha_crypt(password, f"$6${salt}")


def verify(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (a shadow hash field); locked entries never do."""
    if not stored.startswith("$"):
        return False  # "!", "*", "!!" or empty: locked or no password, no login
    if stored.split("$")[1] in _HASHES:
        computed = sha_crypt(password, stored)
    else:
        computed = libc_crypt(password, stored)
    return hmac.compare_digest(computed.encode(), stored.encode())


class _CryptData(ctypes.Structure):
    # libxcrypt's struct crypt_data is 32768 bytes; the glibc one is smaller.
    _fields_ = [("opaque", ctypes.c_char * 32768)]


def libc_crypt(password: str, setting: str) -> str:
    """crypt_r(3) of the C library (libxcrypt: yescrypt, bcrypt, ...); UnsupportedHash if the
    library or the scheme is missing."""
    scheme = setting.split("$")[1] if setting.count("$") >= 2 else setting[:2]
    name = ctypes.util.find_library("crypt")
    if name is None:
        raise UnsupportedHash(f"hash scheme ${scheme}$ needs libcrypt, which is not installed")
    lib = ctypes.CDLL(name)
    lib.crypt_r.restype = ctypes.c_char_p
    lib.crypt_r.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_CryptData)]
    data = _CryptData()
    result = lib.crypt_r(password.encode(), setting.encode(), ctypes.byref(data))
    if not result or result.startswith(b"*"):
        raise UnsupportedHash(f"hash scheme ${scheme}$ is not supported by {name}")
    return str(result.decode())


def read_shadow(path: Path) -> dict[str, ShadowEntry]:
    """The entries of a shadow-format file (`user:hash[:...]`), by user name."""
    entries: dict[str, ShadowEntry] = {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise ShadowError(f"{path}: {exc.strerror}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            raise ShadowError(f"{path}:{number}: expected user:hash[:...], got {line[:40]!r}")
        entries[fields[0]] = ShadowEntry(fields[0], fields[1])
    return entries


def shadow_line(user: str, password: str, salt: str | None = None) -> str:
    """One line of a shadow file for `user`, as `useradd` + `chpasswd` would write it."""
    return f"{user}:{hash_password(password, salt)}:19000:0:99999:7:::"
