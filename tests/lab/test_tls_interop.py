"""TLS mode interoperates with a textbook SEED-style TLS VPN (tests/data/tls_textbook: Python
`ssl` with an SSLContext, a select loop, TUN by fcntl ioctl, `ip` via os.system, one IP
packet per TLS record, `crypt` against a shadow file): each reference side against the
textbook's other side carries pings from U to V.

```
  U 10.0.2.7 -- 10.0.2.8 [gateway: TLS server, TUN 192.168.53.1] 192.168.60.1 -- V 192.168.60.101
```
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim import proc, tlslab
from vpnsim.scenario import load
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import configured_tun

pytestmark = pytest.mark.lab

TEXTBOOK = Path(__file__).parents[1] / "data" / "tls_textbook"
V = "192.168.60.101"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    built = build_lab(
        load(tlslab.SCENARIO_FILE).scenario,
        name=new_lab_name("tio"),
        log_dir=tmp_path_factory.mktemp("tls-interop"),
        owner_pid=os.getpid(),
    )
    yield built
    built.teardown()


@pytest.fixture(scope="module")
def files(lab: Lab) -> tlslab.TlsLabFiles:
    return tlslab.prepare(lab)


def _ping_u_to_v(lab: Lab) -> None:
    probes = Probes(lab)
    try:
        for size in (56, 3000):  # the lab's demo: `ping -s 3000` too
            payload = bytes(range(256)) * (size // 256) + b"t" * (size % 256)
            assert probes.ping("U", V, payload).payload == payload
    finally:
        probes.close()


def test_reference_client_with_textbook_server(lab: Lab, files: tlslab.TlsLabFiles) -> None:
    server_argv = [sys.executable, "-u", str(TEXTBOOK / "tls_server.py"),
                   str(files.cert), str(files.key), str(files.users)]  # fmt: skip
    server = tlslab.start_server(lab, server_argv)
    try:
        client, _ = tlslab.start_client(lab, tlslab.client_argv(files))
        try:
            assert "192.168.53.5/24 up" in client.stdout()  # the address the textbook gave
            _ping_u_to_v(lab)
        finally:
            client.stop()
        assert "logged in as seed" in server.stdout()
    finally:
        server.stop()


def test_textbook_client_with_reference_server(lab: Lab, files: tlslab.TlsLabFiles) -> None:
    server = tlslab.start_server(lab, tlslab.server_argv(files))
    try:
        argv = [sys.executable, "-u", str(TEXTBOOK / "tls_client.py"),
                tlslab.SERVER_NAME, str(tlslab.PORT), str(files.ca)]  # fmt: skip
        env = {"VPN_USER": tlslab.USER, "VPN_PASSWORD": tlslab.PASSWORD}
        client = lab.start("U", argv, log_name="textbook-client", env=env)
        rtnl = lab.rtnl("U")

        def routed() -> bool:
            link = configured_tun(rtnl)
            return link is not None and any(
                r.dst == tlslab.PRIVATE_NET and r.dev == link.name for r in rtnl.routes()
            )

        try:
            client.wait_ready(routed, tlslab.READY_TIMEOUT, "a TUN with a route to V")
            assert "OK 192.168.53.2/24" in client.stdout()
            _ping_u_to_v(lab)
        finally:
            client.stop()
    finally:
        server.stop()
    assert "user seed, TUN address 192.168.53.2/24" in server.stderr()
    assert proc.is_alive(server.pid) is False
