"""`--vpn-impl reference-aead` (and the other reference variants) as the implementation under
test, started as `vpnsim lab up` and pytest's `vpn_tunnel` start it (`build_with_tunnel`).

The adversary's check: a capture of U's outer link shows the payload in clear with the plain
reference and the offload variant, and never with the AEAD variants, so an "AEAD" that
silently ran plain would fail here. The PSK is the tunnel's own: fresh, 0600, in the lab's state
folder, named by both ends, gone with the lab. "Ready" means a session: the client has
handshaken once by then, without a send before the lab was whole.

```
  U 10.9.0.5 [TUN] ---- 10.9.0.11 [server, TUN] 192.168.60.11 ---- V 192.168.60.5
    ^ capture of eth0: the marker in clear, or not
```
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from vpnsim import proc
from vpnsim.impl import REFERENCE_VARIANTS, TunnelImpl
from vpnsim.seed import seed_tunnel
from vpnsim.traffic.capture import Capture, Frame
from vpnsim.traffic.evidence import outer_interface
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel, build_with_tunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"
MARKER = b"VPN-IMPL-MARKER-5e1d"
# 3000 bytes: fragmented by the TUN's MTU inside and by eth0's outside; every fragment holds
# whole copies of the marker.
PAYLOAD = MARKER * 150


def counters(program: proc.Program) -> dict[str, Any]:
    """The JSON line of counters a reference end prints as it exits."""
    report: dict[str, Any] = json.loads(program.stdout().splitlines()[-1])
    return report


def traffic_on_the_outer_link(tunnel: RunningTunnel) -> list[Frame]:
    """A 3000-byte ping and a 3000-byte UDP exchange U -> V, both through the tunnel; every
    frame of U's eth0 meanwhile."""
    lab = tunnel.lab
    probes = Probes(lab, tunnel)
    try:
        probes.serve_echo("V")  # before the capture: only the exchanges themselves in it
        outer = outer_interface(lab, "U", "10.9.0.5")
        with Capture(lab.ns("U"), outer) as capture, probes.evidence() as rec:
            reply = probes.ping("U", V, PAYLOAD)
            echoed = probes.udp("U", V, PAYLOAD)
    finally:
        probes.close()
    assert (reply.source, reply.payload, echoed) == (V, PAYLOAD, PAYLOAD)
    assert rec.result.through_tunnel
    return capture.frames


@pytest.mark.parametrize("name", list(REFERENCE_VARIANTS))
def test_the_payload_is_in_clear_on_the_outer_link_exactly_when_the_variant_is_not_aead(
    name: str, tmp_path: Path
) -> None:
    lab, tunnel = build_with_tunnel(seed_tunnel(), TunnelImpl.parse([name]), log_dir=tmp_path)
    try:
        assert tunnel.impl.label == name
        frames = traffic_on_the_outer_link(tunnel)
    finally:
        lab.teardown()
    # There and back, ICMP and UDP, each in two or more fragments on eth0.
    assert len(frames) >= 8
    in_clear = [f for f in frames if MARKER in f.data]
    if "aead" in name:
        assert in_clear == []
    else:
        assert {f.outgoing for f in in_clear} == {True, False}  # request and reply


def test_an_aead_tunnel_has_a_fresh_private_psk_of_its_own_gone_with_its_lab(
    tmp_path: Path,
) -> None:
    impl = TunnelImpl.parse(["reference-aead"])
    first, one = build_with_tunnel(seed_tunnel(), impl, log_dir=tmp_path / "one")
    try:
        second, two = build_with_tunnel(seed_tunnel(), impl, log_dir=tmp_path / "two")
    except BaseException:
        first.teardown()
        raise
    try:
        secrets = []
        for lab, tunnel in ((first, one), (second, two)):
            psk = tunnel.psk_file
            assert psk is not None and psk.parent == lab.state_dir
            assert stat.S_IMODE(psk.stat().st_mode) == 0o600
            secrets.append(psk.read_text())
            for program in (tunnel.client, tunnel.server):
                at = program.argv.index("--psk-file")
                assert program.argv[at + 1] == str(psk)
        assert secrets[0] != secrets[1]
        assert [len(s.strip()) for s in secrets] == [64, 64]  # 32 random bytes, hex
    finally:
        first.teardown()
        second.teardown()
    assert one.psk_file is not None and two.psk_file is not None
    assert not one.psk_file.exists() and not two.psk_file.exists()


def test_a_variant_without_aead_has_no_psk(tmp_path: Path) -> None:
    impl = TunnelImpl.parse(["reference-offload"])
    lab, tunnel = build_with_tunnel(seed_tunnel(), impl, log_dir=tmp_path)
    try:
        assert tunnel.psk_file is None
        assert "--psk-file" not in tunnel.client.argv
        assert list(lab.state_dir.glob("*.psk")) == []
    finally:
        lab.teardown()


def test_ready_means_a_session_and_a_restarted_client_uses_the_same_psk(tmp_path: Path) -> None:
    lab, tunnel = build_with_tunnel(
        seed_tunnel(), TunnelImpl.parse(["reference-aead"]), log_dir=tmp_path
    )
    try:
        # Stopped the moment it is ready: it had its session by then, and it never sent
        # before the lab was whole (no "Network is unreachable").
        assert tunnel.stop_client() == 0
        at_ready = counters(tunnel.client)
        assert (at_ready["handshakes"], at_ready["errors"]) == (1, {})
        tunnel.start_client()
        probes = Probes(lab, tunnel)
        try:
            reply = probes.ping("U", V, b"first probe after readiness")
        finally:
            probes.close()
        assert reply.payload == b"first probe after readiness"
        assert (tunnel.stop_client(), tunnel.server.stop()) == (0, 0)
        client, server = counters(tunnel.client), counters(tunnel.server)
    finally:
        lab.teardown()
    assert (client["handshakes"], client["delivered"], client["errors"]) == (1, 1, {})
    # One session per client process; the restarted one's PSK was the server's.
    assert (server["handshakes"], server["unauthentic"], server["delivered"]) == (2, 0, 1)
