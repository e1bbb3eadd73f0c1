"""The offload fast path (`--offload`) in real namespaces: the kernel accepts every vnet
header the tunnel's check lets through, and TCP crosses the SEED lab intact as super-packets,
plain and AEAD."""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.net import namespace
from vpnsim.packets import MalformedPacket
from vpnsim.testing import ipv4_packet
from vpnsim.traffic.probes import Probes
from vpnsim.tunnel.fuzz import MODES, start_reference_lab, vnet_like
from vpnsim.tunnel.netconf import Netconf
from vpnsim.tunnel.offload import F_NEEDS_CSUM, GSO_TCPV4, VNET_HDR, OffloadTun, split_super_packet

pytestmark = pytest.mark.lab

V = "192.168.60.5"


@pytest.fixture
def offload_tun() -> Iterator[OffloadTun]:
    name = f"vpnsim-off-{secrets.token_hex(3)}"
    namespace.create(name)
    try:
        with namespace.entered(name):
            tun = OffloadTun("off%d")
            with Netconf() as netconf:
                netconf.add_address(tun.name, "192.168.53.1/24")
                netconf.set_up(tun.name)
        try:
            yield tun
        finally:
            tun.close()
    finally:
        namespace.remove(name)


def test_the_kernel_accepts_every_vnet_header_the_check_lets_through(
    offload_tun: OffloadTun,
) -> None:
    rng = random.Random(7)
    packets = [
        ipv4_packet("192.168.53.99", V, bytes(size), protocol=proto)
        for size in (20, 32, 20 + 3 * 1448)
        for proto in (6, 17)
    ]
    written = {"plain": 0, "segmented": 0}
    for _ in range(100_000):
        packet = rng.choice(packets)
        header = VNET_HDR.pack(F_NEEDS_CSUM, GSO_TCPV4, 40, 1448, 20, 16)
        if rng.randrange(4):
            header = vnet_like(rng)
        try:
            header, packet = split_super_packet(packet + header)
        except MalformedPacket:
            continue
        offload_tun.write(packet + header)  # raises OSError if the kernel refuses it
        written["segmented" if header[1] else "plain"] += 1
    assert written["plain"] > 100 and written["segmented"] > 1000


@pytest.mark.parametrize("mode", ["plain-offload", "aead-offload"])
def test_tcp_crosses_intact_as_super_packets(mode: str, tmp_path: Path) -> None:
    lab, tunnel = start_reference_lab(tmp_path, "of", MODES[mode])
    try:
        probes = Probes(lab, tunnel)
        data = os.urandom(1_000_000)
        assert probes.tcp("U", V, data, timeout=60) == data
        assert probes.ping("U", V, b"small ones too" * 50).payload == b"small ones too" * 50
        probes.close()
        assert (tunnel.stop_client(), tunnel.server.stop()) == (0, 0)
        client = json.loads(tunnel.client.stdout().splitlines()[-1])
        server = json.loads(tunnel.server.stdout().splitlines()[-1])
    finally:
        lab.teardown()
    assert (client["errors"], server["errors"]) == ({}, {})
    assert (client["malformed"], server["malformed"]) == (0, 0)
    # U's TCP handed its TUN segments of several packets' worth, each one datagram.
    assert client["offload"]["super_packets"] > 0
    assert 1500 < client["offload"]["largest"] <= 65000
