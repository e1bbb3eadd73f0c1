"""One TLS connection, sans-IO: `ssl.SSLObject` over two `MemoryBIO`s, fed TCP bytes.

TLS mode's wire format, after the handshake:
- login (when the server has a user file): the client sends the line
  `LOGIN <user> <password>\\n`; the server answers `OK <client TUN address/prefix>\\n` or
  `DENIED <reason>\\n` and then closes;
- then raw IP packets, each written as its own TLS record, with no header, as the SEED lab's
  programs write them (`ssl.send(packet)`). A receiver does not rely on records: it cuts the
  decrypted stream into packets by the IP header's own length fields, so packets split
  across records or sharing one arrive whole either way.

Nothing here does IO or reads a clock. The owner feeds `receive` with what TCP delivered
(b"" at end of stream), writes `out` to TCP (and calls `sent`), and reads `packets()`.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass

from vpnsim.errors import Finding
from vpnsim.tunnel.protocol import MalformedPacket

MAX_LINE = 1024  # a login line; more without a newline is garbage
MAX_PACKET = 65535
READ_CHUNK = 65536
# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH (openssl/x509_vfy.h)
NAME_MISMATCH_CODES = (62, 64)


class ChannelClosed(Finding):
    """The connection cannot go on (the peer's doing, or its certificate's); `kind` names why
    in one word (a counter key)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Verification:
    """Why a client refused a server's certificate."""

    kind: str  # "wrong-name" or "untrusted"
    message: str


def explain_verification(exc: ssl.SSLCertVerificationError, hostname: str | None) -> Verification:
    """Which of the two lab failures a certificate error is: a wrong name, or a chain that
    does not lead to a trusted CA (self-signed, unknown issuer, expired...)."""
    detail = exc.verify_message or str(exc)
    if exc.verify_code in NAME_MISMATCH_CODES:
        return Verification(
            "wrong-name",
            f"the server's certificate is not valid for the name {hostname!r} ({detail})",
        )
    return Verification(
        "untrusted",
        f"the server's certificate is not signed by a trusted CA ({detail})",
    )


def packet_length(data: bytes | bytearray) -> int | None:
    """Length of the IP packet at the start of `data`, None if its header is still
    incomplete; raises MalformedPacket if it cannot be the start of an IP packet."""
    if not data:
        return None
    version = data[0] >> 4
    if version == 4:
        ihl = (data[0] & 0x0F) * 4
        if ihl < 20:
            raise MalformedPacket(f"IPv4 header length {ihl}")
        if len(data) < 4:
            return None
        total = int.from_bytes(data[2:4], "big")
        if total < ihl:
            raise MalformedPacket(f"IPv4 total length {total} below its header's {ihl}")
        return total
    if version == 6:
        if len(data) < 6:
            return None
        return 40 + int.from_bytes(data[4:6], "big")
    raise MalformedPacket(f"IP version {version}")


class TlsChannel:
    """The TLS state of one TCP connection, client or server side."""

    def __init__(
        self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.tls = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=server_hostname
        )
        self.server_hostname = server_hostname
        self.handshaken = False
        self.ended: ChannelClosed | None = None
        self.out = bytearray()  # TCP bytes waiting to be sent
        self._plain = bytearray()  # decrypted bytes not yet taken as a line or a packet

    def start(self) -> None:
        """Client side: make the ClientHello (into `out`)."""
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.do_handshake()
        self._flush()

    def receive(self, data: bytes) -> None:
        """Take what TCP delivered (b"": the peer closed its side). Raises ChannelClosed when
        the TLS layer fails; the alert to send, if any, is in `out` by then. The peer's end
        of stream is kept in `ended` instead, so that what it sent before is read first."""
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()
        try:
            if not self.handshaken:
                self._handshake()
            if self.handshaken:
                self._read()
        except ChannelClosed as exc:
            if exc.kind != "eof" or not self.handshaken:
                raise
            self.ended = exc
        finally:
            self._flush()
        if not data and self.ended is None:
            self.ended = ChannelClosed("eof", "the peer closed the connection")

    def raise_if_ended(self) -> None:
        """After the owner has taken every line and packet: the peer's end, if it came."""
        if self.ended is not None:
            raise self.ended

    def _handshake(self) -> None:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            return
        except ssl.SSLCertVerificationError as exc:
            why = explain_verification(exc, self.server_hostname)
            raise ChannelClosed(why.kind, why.message) from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            # The same event, an EOF in the handshake, comes as either error depending on the
            # Python build (Debian's 3.11.2 raises SSLZeroReturnError, 3.11.7 SSLEOFError).
            raise ChannelClosed("eof", "the peer closed the connection in the handshake") from exc
        except ssl.SSLError as exc:
            raise ChannelClosed("tls", f"TLS handshake failed: {_ssl_reason(exc)}") from exc
        self.handshaken = True

    def _read(self) -> None:
        while True:
            try:
                chunk = self.tls.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError as exc:
                raise ChannelClosed("eof", "the peer closed the TLS session") from exc
            except ssl.SSLEOFError as exc:
                raise ChannelClosed("eof", "the peer closed the connection") from exc
            except ssl.SSLError as exc:
                raise ChannelClosed("tls", f"TLS error: {_ssl_reason(exc)}") from exc
            if not chunk:
                raise ChannelClosed("eof", "the peer closed the TLS session")
            self._plain += chunk

    def write(self, data: bytes) -> None:
        """Encrypt `data` as one record (the caller has checked the handshake is done)."""
        self.tls.write(data)
        self._flush()

    def sent(self, count: int) -> None:
        """`count` bytes of `out` went to TCP."""
        del self.out[:count]

    def close(self) -> None:
        """Queue a close_notify alert (best effort: a failed session may have none)."""
        with contextlib.suppress(ssl.SSLError, ValueError):
            self.tls.unwrap()
        self._flush()

    def line(self) -> str | None:
        """The next whole line of the decrypted stream, or None if none is complete yet."""
        end = self._plain.find(b"\n")
        if end < 0:
            if len(self._plain) > MAX_LINE:
                raise ChannelClosed("garbage", f"no line end in {len(self._plain)} bytes")
            return None
        raw = bytes(self._plain[:end])
        del self._plain[: end + 1]
        try:
            return raw.decode().rstrip("\r")
        except UnicodeDecodeError:
            raise ChannelClosed("garbage", "a line that is not UTF-8") from None

    def packets(self) -> list[bytes]:
        """The whole IP packets the decrypted stream holds; ChannelClosed("garbage") if it
        holds something that is not one."""
        found: list[bytes] = []
        while True:
            try:
                length = packet_length(self._plain)
            except MalformedPacket as exc:
                raise ChannelClosed("garbage", f"not an IP packet: {exc}") from None
            if length is None or len(self._plain) < length:
                return found
            found.append(bytes(self._plain[:length]))
            del self._plain[:length]

    def _flush(self) -> None:
        pending = self._out.pending
        if pending:
            self.out += self._out.read(pending)


def _ssl_reason(exc: ssl.SSLError) -> str:
    return exc.reason or exc.strerror or str(exc)


def verify_hostname_context(ca_file: str) -> ssl.SSLContext:
    """A client context that trusts only `ca_file` and checks the server's name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname, CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=ca_file)
    return context


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for TLS 1.2 and 1.3 that sends no session tickets: a ticket arriving
    after the handshake blocks the SEED lab's textbook select loop (SEED-LABS.md)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.num_tickets = 0
    return context
