"""`python -m vpnsim.tls_bench`: the TLS mode of the reference tunnel against the plain (UDP)
mode, in one run, in the TLS lab's topology. A report, never a pass/fail timing.

Per mode and round: time to tunnel ready (client process started -> TLS handshake, login,
TUN up and routed; plain: TUN up and routed), ping RTT U -> V (median of a series), and, if
iperf3 is installed, TCP throughput U -> V through the tunnel for `--seconds` with the CPU
time both tunnel processes spent on it, as core-milliseconds per MB carried.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence

from vpnsim import proc, tlslab
from vpnsim.scenario import load
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes
from vpnsim.tunnel.bench.measure import cpu_seconds, iperf_tcp

V = "192.168.60.101"
PLAIN_PORT = 9090
CLIENT_TUN = "192.168.53.5/24"


def _start_pair(lab: Lab, mode: str, files: tlslab.TlsLabFiles) -> tuple[proc.Program, ...]:
    """Server, then client; returns (server, client, seconds to client ready)."""
    if mode == "tls":
        server = tlslab.start_server(lab, tlslab.server_argv(files))
        client_argv = tlslab.client_argv(files, tlslab.SERVER_NAME, "--tun-address", CLIENT_TUN)
    else:
        base = [sys.executable, "-m", "vpnsim.tunnel"]
        server = lab.start("gateway", [*base, "server", "--tun-address", tlslab.SERVER_TUN])
        server.wait_ready(
            lambda: proc.port_bound(server.pid, PLAIN_PORT), tlslab.READY_TIMEOUT, "UDP bound"
        )
        client_argv = [*base, "client", "--server", tlslab.SERVER_ADDRESS,
                       "--tun-address", CLIENT_TUN, "--route", tlslab.PRIVATE_NET]  # fmt: skip
    client, _ = tlslab.start_client(lab, client_argv)
    return server, client


def measure(lab: Lab, mode: str, files: tlslab.TlsLabFiles, seconds: float) -> dict[str, float]:
    started = time.monotonic()
    server, client = _start_pair(lab, mode, files)
    ready = time.monotonic() - started
    probes = Probes(lab)
    try:
        probes.ping("U", V, b"warm")  # ARP on both sides first
        series = probes.ping_series("U", V, 30, b"r" * 56)
        rtts = [reply.rtt for reply in series.replies.values()]
        figures = {"ready_ms": ready * 1000, "rtt_ms": statistics.median(rtts) * 1000}
        if shutil.which("iperf3"):
            figures.update(_iperf(lab, (server.pid, client.pid), seconds))
        return figures
    finally:
        probes.close()
        client.stop()
        server.stop()


def _iperf(lab: Lab, tunnel_pids: tuple[int, ...], seconds: float) -> dict[str, float]:
    """TCP U -> V through the tunnel, and the CPU both tunnel processes spent carrying it."""
    cpu_before = sum(cpu_seconds(pid) for pid in tunnel_pids)
    mbit_s, received = iperf_tcp(lab, seconds, V)
    cpu = sum(cpu_seconds(pid) for pid in tunnel_pids) - cpu_before
    megabytes = received / 1e6
    return {
        "throughput_mbit_s": mbit_s,
        "core_ms_per_mb": cpu * 1000 / megabytes if megabytes else float("nan"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.tls_bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="of iperf3 per round")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    lab = build_lab(
        load(tlslab.SCENARIO_FILE).scenario, name=new_lab_name("tb"), owner_pid=os.getpid()
    )
    try:
        files = tlslab.prepare(lab)
        samples: dict[str, list[dict[str, float]]] = {"plain": [], "tls": []}
        for _ in range(args.rounds):
            for mode in samples:  # interleaved: both modes see the same machine load
                samples[mode].append(measure(lab, mode, files, args.seconds))
    finally:
        lab.teardown()
    report = {}
    for mode, runs in samples.items():
        for key in runs[0]:
            values = [run[key] for run in runs]
            middle = statistics.median(values)
            report[f"{mode}.{key}"] = middle
            spread = f"min {min(values):.2f}, max {max(values):.2f}, {len(values)} rounds"
            print(f"{mode:<6} {key:<20} {middle:10.2f} ({spread})")
    if not shutil.which("iperf3"):
        print("iperf3 not installed: no throughput figures (apt-get install iperf3)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
