"""The TLS lab's PKI: a lab CA, and server and client certificates it signs, as PEM files.

The SEED lab makes these by hand with `openssl ca`; here one call does each step, with
`cryptography` (the only module of vpnsim that imports it). Material is cached: a folder
holds `ca.crt`/`ca.key` and `<name>.crt`/`<name>.key`, and asking again for what is there
(same CA, same names) returns the files without new keys. A lab's folder is
`<lab state dir>/pki`, removed with the lab.

    ca = init(folder)                                     # the lab CA (kept if present)
    server = issue(folder, "vpnserver.lab", ips=["10.0.2.8"])
    client = issue(folder, "seed", client=True)
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vpnsim.errors import HarnessError
from vpnsim.labstate import STATE_ROOT

CA_NAME = "ca"
DEFAULT_CA_SUBJECT = "vpnsim lab CA"
VALID_DAYS = 3650
# Backdated: a namespace shares the machine's clock, but a grader's clock may be a little off.
BACKDATE = datetime.timedelta(days=1)


class PkiError(HarnessError, ValueError):
    """PKI material that cannot be made or read: names the file."""


@dataclass(frozen=True)
class Material:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


def init(folder: Path, subject: str = DEFAULT_CA_SUBJECT) -> Material:
    """The CA of `folder` (made if missing): a self-signed certificate and its key."""
    material = _paths(folder, CA_NAME)
    if material.cert.exists() and material.key.exists():
        _load_cert(material.cert)  # a damaged file is an error, not silently replaced
        return material
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(material, cert, key)
    return material


def issue(
    folder: Path,
    name: str,
    *,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    client: bool = False,
) -> Material:
    """A certificate for `name` signed by the CA of `folder` (made if missing).

    A server certificate names `name` and `dns` as DNS names and `ips` as IP addresses; a
    `client` one is for client authentication. An existing one is kept if the same CA signed
    it for the same names."""
    if not name or "/" in name or name == CA_NAME:
        raise PkiError(f"certificate name {name!r}: a host or user name, not {CA_NAME!r}")
    ca = init(folder)
    ca_cert = _load_cert(ca.cert)
    dns_names = [name, *dns] if not client else list(dns)
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    material = _paths(folder, name)
    if material.cert.exists() and material.key.exists():
        existing = _load_cert(material.cert)
        wanted = (dns_names, [str(a) for a in addresses])
        if existing.issuer == ca_cert.subject and _names(existing) == wanted:
            return material
    ca_key = _load_key(ca.key)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(a) for a in addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    _write(material, builder.sign(ca_key, hashes.SHA256()), key)
    return material


def lab_folder(lab: str) -> Path:
    """Where a lab's PKI lives: under its state dir, so tearing the lab down removes it."""

    return STATE_ROOT / lab / "pki"


def _names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses a certificate is for."""
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [str(a) for a in alt.get_values_for_type(x509.IPAddress)]
    return alt.get_values_for_type(x509.DNSName), ips


def _paths(folder: Path, name: str) -> Material:
    return Material(folder / f"{name}.crt", folder / f"{name}.key")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(material: Material, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    material.key.touch(mode=0o600)
    material.key.write_bytes(pem_key)
    material.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"{path}: not a readable PEM certificate ({exc})") from exc


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError(f"{path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: expected an EC key, found {type(key).__name__}")
    return key
