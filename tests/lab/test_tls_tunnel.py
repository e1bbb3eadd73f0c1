"""The reference TLS tunnel in the TLS lab's topology: pings through it, refusals that leave
no TUN, many clients, and a server that outlives bad peers.

```
  U  10.0.2.7 --+
  U2 10.0.2.9 --+-- 10.0.2.8 [gateway: TLS server, TUN 192.168.53.1] -- V 192.168.60.101
```
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim import pki, proc, tlslab
from vpnsim.net import namespace
from vpnsim.scenario import load
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes

pytestmark = pytest.mark.lab

V = "192.168.60.101"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario = load(tlslab.SCENARIO_FILE).scenario  # U2 is in it: the lab's second client
    built = build_lab(
        scenario,
        name=new_lab_name("tls"),
        log_dir=tmp_path_factory.mktemp("tls"),
        owner_pid=os.getpid(),
    )
    yield built
    built.teardown()


@pytest.fixture(scope="module")
def files(lab: Lab) -> tlslab.TlsLabFiles:
    return tlslab.prepare(lab, client_hosts=("U", "U2"))


@pytest.fixture
def server(lab: Lab, files: tlslab.TlsLabFiles) -> Iterator[proc.Program]:
    argv = tlslab.server_argv(files, "--handshake-timeout", "2", "--send-limit", "65536")
    program = tlslab.start_server(lab, argv)
    yield program
    program.stop()


def report(program: proc.Program) -> dict[str, object]:
    """The JSON line an endpoint prints when it stops."""
    return dict(json.loads(program.stdout().strip().splitlines()[-1]))


def test_a_ping_to_v_crosses_the_tls_tunnel(
    lab: Lab, files: tlslab.TlsLabFiles, server: proc.Program
) -> None:
    client, _ = tlslab.start_client(lab, tlslab.client_argv(files))
    probes = Probes(lab)
    try:
        assert probes.ping("U", V, b"through tls" * 250).payload == b"through tls" * 250
        assert probes.tcp("U", V, b"telnet-like" * 1000) == b"telnet-like" * 1000
        assert "TLSv1.3 to vpnlabserver.com:4433, user seed" in client.stdout()
    finally:
        probes.close()
        client.stop()
    assert report(client)["delivered"] >= 1


@pytest.mark.parametrize(
    ("change", "kind", "message"),
    [
        (("--server", "wrong.lab", "--connect", tlslab.SERVER_ADDRESS), "wrong-name",
         "the server's certificate is not valid for the name 'wrong.lab'"),
        (("--ca", "OTHER_CA"), "untrusted",
         "the server's certificate is not signed by a trusted CA"),
        (("--password-file", "WRONG_PASSWORD"), "login",
         "the server refused the login: wrong user name or password"),
    ],
)  # fmt: skip
def test_a_refused_client_says_why_and_makes_no_tun(
    lab: Lab,
    files: tlslab.TlsLabFiles,
    server: proc.Program,
    tmp_path: Path,
    change: tuple[str, ...],
    kind: str,
    message: str,
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-dees\n")
    other_ca = pki.init(tmp_path / "other-ca").cert
    swap = {"OTHER_CA": str(other_ca), "WRONG_PASSWORD": str(wrong)}
    argv = tlslab.client_argv(files)
    for option, value in zip(change[::2], change[1::2], strict=True):
        if option in argv:
            argv[argv.index(option) + 1] = swap.get(value, value)
        else:
            argv += [option, value]
    client = tlslab.run_refused(lab, argv)
    assert client.exit_code() == 2
    assert f"client: refused: {message}" in client.stderr()
    assert report(client) == {"side": "client", "refused": kind}
    assert lab.rtnl("U").tun_devices() == []
    server.stop()
    seen = report(server)["closed"]
    assert seen == {"login": 1} if kind == "login" else seen == {"tls": 1}
    if kind == "login":
        assert "login refused for user 'seed'" in server.stderr()


def test_two_clients_get_their_own_addresses_and_replies(
    lab: Lab, files: tlslab.TlsLabFiles, server: proc.Program
) -> None:
    first, _ = tlslab.start_client(lab, tlslab.client_argv(files))
    second, _ = tlslab.start_client(lab, tlslab.client_argv(files), host="U2")
    probes = Probes(lab)
    try:
        assert "192.168.53.2/24 up" in first.stdout()
        assert "192.168.53.3/24 up" in second.stdout()
        for host in ("U", "U2", "U", "U2"):
            assert probes.ping(host, V, host.encode()).payload == host.encode()
        assert probes.ping("V", "192.168.53.3", b"to U2").payload == b"to U2"
        first.stop()  # one client leaving does not disturb the other
        assert probes.ping("U2", V, b"still here").payload == b"still here"
    finally:
        probes.close()
        first.stop()
        second.stop()


def _tls_session(
    lab: Lab, files: tlslab.TlsLabFiles, login: bytes, rcvbuf: int | None = None
) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(files.ca))
    with namespace.entered(lab.ns("U2")):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(5)
    if rcvbuf is not None:  # a small window: the server's kernel buffers fill quickly too
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.connect((tlslab.SERVER_ADDRESS, tlslab.PORT))
    tls = context.wrap_socket(raw, server_hostname=tlslab.SERVER_NAME)
    tls.sendall(login)
    return tls


def test_the_server_outlives_bad_peers_and_counts_them(
    lab: Lab, files: tlslab.TlsLabFiles, server: proc.Program
) -> None:
    client, _ = tlslab.start_client(lab, tlslab.client_argv(files))
    probes = Probes(lab)
    with namespace.entered(lab.ns("U2")):
        plain = socket.create_connection((tlslab.SERVER_ADDRESS, tlslab.PORT), timeout=5)
        half_open = socket.create_connection((tlslab.SERVER_ADDRESS, tlslab.PORT), timeout=5)
    for sock in (plain, half_open):
        sock.settimeout(30)  # a bound, not a wait: recv returns when the server hangs up
    plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
    half_open.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then silence
    junk = _tls_session(lab, files, b"LOGIN seed dees\n")
    assert junk.recv(100) == b"OK 192.168.53.3/24\n"
    junk.sendall(b"\xff" * 64)  # not an IP packet
    assert junk.recv(100) == b""  # closed: its address is free again
    mute = _tls_session(lab, files, b"LOGIN seed dees\n", rcvbuf=4096)
    assert mute.recv(100) == b"OK 192.168.53.3/24\n"
    with namespace.entered(lab.ns("V")):
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def dropping() -> bool:  # toward the client that never reads, until the server gives up
        for _ in range(200):
            flood.sendto(b"f" * 1400, ("192.168.53.3", 9))
        return "not reading" in server.stderr()

    server.wait_ready(dropping, 30, "the server dropping packets for a client that never reads")
    try:
        assert plain.recv(100) == b""  # the server hung up on it
        assert half_open.recv(100) == b""  # after the 2 s handshake timeout
        assert probes.ping("U", V, b"unharmed").payload == b"unharmed"
    finally:
        for sock in (plain, half_open, junk, mute, flood):
            sock.close()
        probes.close()
        client.stop()
    server.stop()
    counters = report(server)
    assert counters["closed"]["tls"] == 1  # the plain TCP client
    assert counters["closed"]["timeout"] == 1  # the half-open one
    assert counters["closed"]["garbage"] == 1  # junk after the handshake
    assert counters["send_buffer_full"] > 0  # the client that stopped reading
    assert "10.0.2.9" in server.stderr().split("not reading")[0].splitlines()[-1]
    assert server.running() is False


RESOLVE = """import socket, sys
try:
    print(socket.gethostbyname(sys.argv[1]))
except OSError as e:
    print("unresolved", e)
"""


def test_the_server_name_resolves_in_u_only(lab: Lab, files: tlslab.TlsLabFiles) -> None:
    root_hosts = Path("/etc/hosts").read_bytes()
    answers = {}
    for host in ("U", "V"):
        program = lab.start(host, [sys.executable, "-c", RESOLVE, tlslab.SERVER_NAME])
        assert program.popen is not None and program.popen.wait(10) == 0
        answers[host] = program.stdout().strip()
    assert answers["U"] == tlslab.SERVER_ADDRESS
    assert answers["V"].startswith("unresolved")
    # The root namespace keeps its own file: the mount lived in U's program only.
    assert Path("/etc/hosts").read_bytes() == root_hosts
    assert tlslab.SERVER_NAME.encode() not in root_hosts
