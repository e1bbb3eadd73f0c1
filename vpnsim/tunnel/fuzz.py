"""Fuzz the reference tunnel in a live SEED lab: random, truncated, replayed, bit-flipped,
re-countered, re-tailed and reordered datagrams at both ends from the outer network while
real TCP traffic flows (`nox -s fuzz`, `python -m vpnsim.tunnel.fuzz`; tests run it small).

Seeds are real datagrams captured on the server's outer link during one TCP exchange. The
storm goes to the server from a new port on U, and to the client as if from the server (a raw
socket on the server writes its own UDP header, source port 9090): what an attacker on the
outer network can send. Meanwhile U sends V random data over TCP and checks every echoed byte.

A mode passes when neither end crashed (both exit 0 on SIGTERM with their counters), no TUN
write failed (`errors` empty: nothing malformed reached the kernel), no echoed byte changed,
and the traffic got through: in AEAD modes every TCP exchange during the storm (at least one);
in every mode a TCP exchange and a ping after it. Plain modes may lose exchanges during the
storm, by design: the SEED wire has no authentication, and its server follows a client to
the address of any datagram carrying the client's inner source address (a client restarted
from a new port), so replays from another port steal the client's return traffic until the
real client sends again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpnsim.impl import REFERENCE_VARIANTS, TunnelImpl
from vpnsim.net import namespace
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.capture import Capture
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.evidence import outer_interface
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel, start_tunnel

V = "192.168.60.5"
SERVER = ("10.9.0.11", 9090)
CLIENT_ADDRESS = "10.9.0.5"
# Each mode's reference variant: its flags are the variants table's (impl.REFERENCE_VARIANTS).
MODE_VARIANTS = {
    "plain": "reference",
    "aead": "reference-aead",
    "plain-offload": "reference-offload",
    "aead-offload": "reference-aead-offload",
    "plain-gso": "reference-gso",
    "aead-gso": "reference-aead-gso",
}
MODES: dict[str, tuple[str, ...]] = {
    mode: REFERENCE_VARIANTS[variant] for mode, variant in MODE_VARIANTS.items()
}
# What the ends count as dropped input (plain mode has only `malformed` and `foreign`).
DROPS = ("malformed", "unauthentic", "replayed", "unknown_index", "unexpected", "foreign")


def mutations(seeds: list[bytes], rng: random.Random, count: int) -> Iterator[bytes]:
    """Random, truncated, replayed, bit-flipped, re-countered, re-tailed and reordered
    versions of real datagrams."""
    recent: list[bytes] = []
    for _ in range(count):
        seed = rng.choice(seeds)
        kind = rng.randrange(8)
        if kind == 0:
            yield rng.randbytes(rng.randrange(1500))
        elif kind == 1:
            yield seed[: rng.randrange(len(seed))]
        elif kind == 2:
            yield seed
        elif kind == 3:
            flipped = bytearray(seed)
            for _ in range(rng.randrange(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= rng.randrange(1, 256)
            yield bytes(flipped)
        elif kind == 4:  # AEAD: a fresh counter; plain: a changed identification/fragment
            yield seed[:8] + rng.randbytes(8) + seed[16:]
        elif kind == 5:
            yield seed[:16] + rng.randbytes(rng.randrange(1500))
        elif kind == 6:  # the offload wire's trailer (the vnet header)
            yield seed[:-10] + vnet_like(rng)
        else:  # reordered: one of the last few, again, out of order
            recent = [*recent[-15:], seed]
            yield recent[rng.randrange(len(recent))]


def vnet_like(rng: random.Random) -> bytes:
    """A virtio_net_hdr: random bytes, or fields near what a TSO read carries."""
    if rng.randrange(2):
        return rng.randbytes(10)
    return struct.pack(
        "<BBHHHH",
        rng.choice((0, 1, 2, 3, 4)),
        rng.choice((0, 1, 4, 0x81, 3, 5)),
        rng.choice((0, 20, 40, 52, 54, 66, 1500, 65535)),
        rng.choice((0, 1, 536, 1448, 65535)),
        rng.choice((0, 19, 20, 40, 60, 65000)),
        rng.choice((6, 16, 17, 65535)),
    )


def start_reference_lab(log_dir: Path, tag: str, flags: Sequence[str]) -> tuple[Lab, RunningTunnel]:
    """A SEED lab with the reference tunnel started with `flags` (a MODES value): as any
    variant starts, with a fresh PSK file of the lab's own, 0600, when they name one."""
    impl = TunnelImpl(label=" ".join(("reference", *flags)), reference_flags=tuple(flags))
    lab = build_lab(seed_tunnel(), name=new_lab_name(tag), log_dir=log_dir, owner_pid=os.getpid())
    try:
        return lab, start_tunnel(lab, impl, timeout=20)
    except BaseException:
        lab.teardown()
        raise


@dataclass
class FuzzResult:
    mode: str
    sent: dict[str, int]  # datagrams sent to each end
    transfers: int  # whole TCP exchanges (exact bytes) during the storm
    lost_exchanges: int  # TCP exchanges during the storm that timed out
    changed: int  # TCP exchanges whose echo came back different: never acceptable
    tcp_after: bool
    ping_after: bool
    exit_codes: tuple[int | None, int | None]  # client, server
    client: dict[str, Any] = field(default_factory=dict)  # the ends' exit counters
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def dropped(self) -> dict[str, int]:
        return {side: sum(c.get(k, 0) for k in DROPS) for side, c in self.ends.items()}

    @property
    def ends(self) -> dict[str, dict[str, Any]]:
        return {"client": self.client, "server": self.server}

    def problems(self) -> list[str]:
        """What fails the mode; empty when it passes."""
        found = []
        if self.exit_codes != (0, 0):
            found.append(f"exit codes (client, server) {self.exit_codes}: a crash")
        for side, counters in self.ends.items():
            if counters.get("errors"):
                found.append(f"{side}: TUN or socket errors {counters['errors']}")
        if self.changed:
            found.append(f"{self.changed} TCP echoes came back changed")
        if self.mode.startswith("aead") and (self.lost_exchanges or not self.transfers):
            found.append(f"{self.lost_exchanges} TCP exchanges lost during the storm")
        if not self.tcp_after:
            found.append("no TCP exchange through the tunnel after the storm")
        if not self.ping_after:
            found.append("no ping through the tunnel after the storm")
        return found


def _flood(
    lab: Lab, seeds: list[bytes], client_port: int, count: int, sent: dict[str, int]
) -> None:
    rng = random.Random(15)
    with (
        namespace.socket_in(lab.ns("U"), socket.AF_INET, socket.SOCK_DGRAM) as to_server,
        namespace.socket_in(
            lab.ns("server"), socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP
        ) as to_client,
    ):
        for n, datagram in enumerate(mutations(seeds, rng, count)):
            try:
                if n % 2:
                    to_server.sendto(datagram, SERVER)
                    sent["server"] += 1
                else:
                    udp = struct.pack("!HHHH", 9090, client_port, 8 + len(datagram), 0)
                    to_client.sendto(udp + datagram, (CLIENT_ADDRESS, 0))
                    sent["client"] += 1
            except BlockingIOError:  # a full buffer: the kernel drops it, as it would
                pass


def _exchange(probes: Probes, data: bytes) -> str:
    """One TCP echo U -> V: "transfers" (exact), "changed" or "lost" (timed out)."""
    try:
        echoed = probes.tcp("U", V, data, timeout=60)
    except ProbeFailed:
        return "lost"
    return "transfers" if echoed == data else "changed"


def fuzz(lab: Lab, tunnel: RunningTunnel, mode: str, count: int) -> FuzzResult:
    """`count` datagrams at the two ends of the running tunnel while TCP flows; stops it."""
    probes = Probes(lab, tunnel)
    try:
        server_link = outer_interface(lab, "server", SERVER[0])
        seed_data = bytes(range(256)) * 64
        with Capture(lab.ns("server"), server_link) as capture:
            assert probes.tcp("U", V, seed_data, timeout=20) == seed_data
        seen = [d for d in capture.udp(SERVER[1]) if len(d.payload) == d.length]  # whole ones
        client_port = next(d.sport for d in seen if d.dport == SERVER[1])
        seeds = [d.payload for d in seen]
        sent = {"server": 0, "client": 0}
        thread = threading.Thread(target=_flood, args=(lab, seeds, client_port, count, sent))
        data = os.urandom(100_000)
        thread.start()
        outcomes = {"transfers": 0, "lost": 0, "changed": 0}
        try:
            while True:  # real traffic for as long as the storm lasts
                storming = thread.is_alive()
                outcomes[_exchange(probes, data)] += 1
                if not storming:
                    break
        finally:
            thread.join()
        tcp_after = _exchange(probes, data) == "transfers"
        ping_after = probes.reaches("U", V, timeout=5.0)
    finally:
        probes.close()
    codes = (tunnel.stop_client(), tunnel.server.stop())
    result = FuzzResult(
        mode,
        sent,
        outcomes["transfers"],
        outcomes["lost"],
        outcomes["changed"],
        tcp_after,
        ping_after,
        codes,
    )
    for side, program in (("client", tunnel.client), ("server", tunnel.server)):
        lines = program.stdout().splitlines()
        if lines and lines[-1].startswith("{"):
            setattr(result, side, json.loads(lines[-1]))
    return result


def run_mode(mode: str, count: int, log_dir: Path) -> FuzzResult:
    lab, tunnel = start_reference_lab(log_dir, "fz", MODES[mode])
    try:
        return fuzz(lab, tunnel, mode, count)
    finally:
        lab.teardown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.tunnel.fuzz", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000, help="datagrams per mode")
    parser.add_argument("--mode", default=",".join(MODES), help="modes, comma-separated")
    parser.add_argument("--json", type=Path, metavar="FILE", help="every mode's result")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"--mode: unknown {', '.join(unknown)}; known: {', '.join(MODES)}")
    results = []
    failed = False
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="vpnsim-fuzz-") as tmp:
            result = run_mode(mode, args.count, Path(tmp))
        results.append(result)
        problems = result.problems()
        failed |= bool(problems)
        verdict = "FAIL: " + "; ".join(problems) if problems else "ok"
        print(
            f"{mode:<14} sent {result.sent}  dropped {result.dropped}  "
            f"TCP exchanges {result.transfers} (lost {result.lost_exchanges})  {verdict}",
            flush=True,
        )
    if args.json is not None:
        rows = [{**vars(r), "dropped": r.dropped, "problems": r.problems()} for r in results]
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
