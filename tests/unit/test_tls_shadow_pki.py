"""Shadow-file passwords without `crypt`, the lab PKI's cached material, and `vpnsim pki`."""

from __future__ import annotations

import argparse
import ctypes.util
import ssl
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsim import pki, pki_cli
from vpnsim.names import HostNameError, write_hosts
from vpnsim.tunnel import shadow

# Drepper's specification, test vectors 1 and 2 of each scheme.
VECTORS = [
    ("Hello world!", "$6$saltstring",
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
    ("Hello world!", "$6$rounds=10000$saltstringsaltstring",
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
    ("Hello world!", "$5$saltstring", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    ("Hello world!", "$5$rounds=10000$saltstringsaltstring",
     "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"),
]  # fmt: skip


@pytest.mark.parametrize(("password", "setting", "expected"), VECTORS)
def test_sha_crypt_matches_the_specification(password: str, setting: str, expected: str) -> None:
    assert shadow.sha_crypt(password, setting) == expected
    assert shadow.verify(password, expected) is True
    assert shadow.verify(password + "x", expected) is False


@pytest.mark.skipif(ctypes.util.find_library("crypt") is None, reason="no libcrypt to compare")
@settings(max_examples=40, deadline=None)
@given(
    password=st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=70),
    salt=st.text(st.sampled_from(shadow.HASH64), max_size=20),
    scheme=st.sampled_from(["$5$", "$6$", "$6$rounds=1000$"]),
)
def test_sha_crypt_agrees_with_the_c_library(password: str, salt: str, scheme: str) -> None:
    setting = scheme + salt
    assert shadow.sha_crypt(password, setting) == shadow.libc_crypt(password, setting)


def test_a_locked_or_empty_entry_never_logs_in() -> None:
    for stored in ("!", "*", "!!", "", "!$6$salt$abc"):
        assert shadow.verify("", stored) is False


def test_a_shadow_file_is_read_by_user_and_a_bad_line_is_named(tmp_path: Path) -> None:
    good = tmp_path / "shadow"
    good.write_text("# users\n" + shadow.shadow_line("seed", "dees", salt="ab") + "\nroot:*:1::\n")
    entries = shadow.read_shadow(good)
    assert sorted(entries) == ["root", "seed"]
    assert shadow.verify("dees", entries["seed"].hash)
    bad = tmp_path / "bad"
    bad.write_text("seed:x\nno-colon-here\n")
    with pytest.raises(shadow.ShadowError, match=r"bad:2: expected user:hash"):
        shadow.read_shadow(bad)


def test_yescrypt_goes_to_libxcrypt_or_is_named_unsupported() -> None:
    setting = "$y$j9T$abcdefghijklmnop$"  # as `mkpasswd -m yescrypt` makes them
    if ctypes.util.find_library("crypt") is None:
        with pytest.raises(shadow.UnsupportedHash, match=r"\$y\$ needs libcrypt"):
            shadow.verify("dees", setting + "x" * 43)
        return
    stored = shadow.libc_crypt("dees", setting)
    assert stored.startswith(setting) and len(stored) == len(setting) + 43
    assert shadow.verify("dees", stored) and not shadow.verify("seed", stored)


def test_an_unknown_scheme_is_an_error_not_a_refusal() -> None:
    with pytest.raises(shadow.UnsupportedHash):
        shadow.verify("x", "$zz$abc$def")


def test_pki_material_is_cached_and_verifies_with_the_name(tmp_path: Path) -> None:
    first = pki.issue(tmp_path, "vpnlabserver.com", ips=["10.0.2.8"])
    cert_bytes = first.cert.read_bytes()
    again = pki.issue(tmp_path, "vpnlabserver.com", ips=["10.0.2.8"])
    assert again == first and again.cert.read_bytes() == cert_bytes
    changed = pki.issue(tmp_path, "vpnlabserver.com", ips=["10.0.2.9"])
    assert changed.cert.read_bytes() != cert_bytes  # other names: issued anew
    assert oct(first.key.stat().st_mode & 0o777) == "0o600"
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(changed.cert, changed.key)
    assert _handshake(client, server, "vpnlabserver.com") == "ok"
    assert "Hostname mismatch" in _handshake(client, server, "other.lab")


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, name: str) -> str:
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                return exc.verify_message
            except ssl.SSLError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return "ok"


def test_a_damaged_ca_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("garbage")
    (tmp_path / "ca.key").write_text("garbage")
    with pytest.raises(pki.PkiError, match=r"ca\.crt: not a readable PEM certificate"):
        pki.issue(tmp_path, "vpnlabserver.com")


def test_vpnsim_pki_cli_makes_ca_server_and_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="vpnsim")
    pki_cli.add_parser(parser.add_subparsers())
    password = tmp_path / "pw"
    password.write_text("dees\n")
    for argv in (
        ["pki", "init", "--dir", str(tmp_path)],
        ["pki", "issue", "vpnlabserver.com", "--ip", "10.0.2.8", "--dir", str(tmp_path)],
        [
            "pki",
            "user",
            "seed",
            "--shadow",
            str(tmp_path / "shadow"),
            "--password-file",
            str(password),
        ],
    ):
        args = parser.parse_args(argv)
        assert args.run(args) == 0
    out = capsys.readouterr().out
    assert f"vpnlabserver.com: {tmp_path}/vpnlabserver.com.crt" in out
    entry = shadow.read_shadow(tmp_path / "shadow")["seed"]
    assert shadow.verify("dees", entry.hash)


def test_a_hosts_file_refuses_what_is_not_a_name_or_an_address() -> None:
    with pytest.raises(HostNameError, match="host name 'bad name'"):
        write_hosts("vpnsim.x.U", {"bad name": "10.0.2.8"})
    with pytest.raises(HostNameError, match=r"'vpnlabserver\.com': 'ten' is not an IP"):
        write_hosts("vpnsim.x.U", {"vpnlabserver.com": "ten"})
