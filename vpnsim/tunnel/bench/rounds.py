"""The rounds of `vpnsim bench tunnels`: one lab, each contender in turn, order rotated."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.tunnel.bench.contenders import CONTENDERS, Started
from vpnsim.tunnel.bench.measure import cpu_seconds, iperf_tcp, iperf_udp, ping
from vpnsim.tunnel.bench.report import Row


def _cpu(started: Started) -> float:
    return sum(cpu_seconds(pid) for pid in started.pids)


def measure(
    lab: Lab, name: str, args: argparse.Namespace, work: Path, profile: Path | None = None
) -> Row:
    started = CONTENDERS[name](lab, work, profile)
    try:
        charged = bool(started.pids)
        before = _cpu(started)
        mbit_s, received = iperf_tcp(lab, args.seconds)
        tcp_cpu = _cpu(started) - before
        before = _cpu(started)
        small = iperf_udp(lab, args.udp_seconds, 64)
        small_cpu = _cpu(started) - before
        large = iperf_udp(lab, args.udp_seconds, 1400)
        rtt = ping(lab, args.pings)
    finally:
        started.stop()
    return Row(
        impl=name,
        tcp_mbit_s=mbit_s,
        cpu_ms_per_mb=tcp_cpu * 1000 / (received / 1e6) if charged else None,
        cpu_us_per_packet=small_cpu * 1e6 / max(small.sent, 1) if charged else None,
        ping_ms=rtt.avg_ms,
        ping_p99_ms=rtt.p99_ms,
        udp_kpps_64=small.kpps,
        udp_loss_64=small.loss,
        udp_kpps_1400=large.kpps,
        udp_loss_1400=large.loss,
        ready_s=started.ready_s,
    )


def run_rounds(names: list[str], args: argparse.Namespace, work: Path) -> list[Row]:
    lab = build_lab(seed_tunnel(), name=new_lab_name("tb"), log_dir=work, owner_pid=os.getpid())
    try:
        rows = []
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                rows.append(measure(lab, name, args, work))
                row = rows[-1]
                print(
                    f"round {round_ + 1} {name:<20} {row.tcp_mbit_s:8.1f} Mbit/s  "
                    f"UDP64 {row.udp_kpps_64:6.1f} kpps  ping {row.ping_ms:.3f} ms",
                    flush=True,
                )
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name in names:
                if name.startswith("reference"):  # the same traffic, under cProfile
                    measure(lab, name, args, work, args.profile)
    finally:
        lab.teardown()
    return rows
