"""The reference TLS tunnel in the TLS lab's topology: pings through it, refusals that leave
no TUN, many clients, and a server that outlives bad peers.

```
  U  10.0.2.7 --+
  U2 10.0.2.9 --+-- 10.0.2.8 [gateway: TLS server, TUN 192.168.53.1] -- V 192.168.60.101
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim import pki, tlslab
from vpnsim.model import Host, Interface
from vpnsim.net import namespace
from vpnsim.scenario import load
from vpnsim.seed import HOST_SYSCTLS
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes

pytestmark = pytest.mark.lab

SCENARIO = Path(__file__).parents[2] / "scenarios" / "seed-tls.toml"
V = "192.168.60.101"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    scenario = load(SCENARIO).scenario
    u2 = Host("U2", (Interface("eth0", "net-10.0.2.0", "10.0.2.9/24"),), sysctls=HOST_SYSCTLS)
    scenario = dataclasses.replace(scenario, hosts=(*scenario.hosts, u2))
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


@pytest.fixture(scope="module")
def server(lab: Lab, files: tlslab.TlsLabFiles) -> Iterator[object]:
    program = tlslab.start_server(lab, tlslab.server_argv(files, "--handshake-timeout", "2"))
    yield program
    program.stop()


def test_a_ping_to_v_crosses_the_tls_tunnel(lab: Lab, files: tlslab.TlsLabFiles, server: object) -> None:
    client, _ = tlslab.start_client(lab, tlslab.client_argv(files))
    try:
        probes = Probes(lab)
        assert probes.ping("U", V, b"through tls" * 250).payload == b"through tls" * 250
        assert "TLSv1.3 to vpnlabserver.com:4433, user seed" in client.stdout()
        probes.close()
    finally:
        client.stop()
