"""`python -m vpnsim.tunnel.bench`: the reference tunnel's plain and AEAD modes, side by side.

One SEED lab; per round each mode in turn (order rotated between rounds): start both ends,
iperf3 TCP U -> V for `--seconds`, the tunnel processes' CPU over that time, then `ping` U -> V.
A report, never a pass/fail timing. With `--profile DIR`, one more run per mode under cProfile
(both ends; slower, so not part of the figures) leaves DIR/<mode>-<side>.prof.

Needs root, iperf3 and ping (Debian: iperf3, iputils-ping).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vpnsim import proc
from vpnsim.impl import REFERENCE, TunnelImpl, reference_argv
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import start_tunnel

V = "192.168.60.5"
IPERF_PORT = 5201
MODES = ("plain", "aead")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    """One run of one mode."""

    impl: str
    tcp_mbit_s: float
    cpu_ms_per_mb: float  # client + server tunnel processes, per MB received by iperf3
    ping_ms: float


def tunnel_impl(mode: str, psk_file: Path, profile: Path | None = None) -> TunnelImpl:
    spec = seed_tunnel().tunnel
    assert spec is not None
    flags = ("--wire", "aead", "--psk-file", str(psk_file)) if mode == "aead" else ()

    def argv(side: str) -> tuple[str, ...]:
        base = reference_argv(side, spec)
        if profile is not None:  # python -m cProfile -o FILE -m vpnsim.tunnel ...
            out = str(profile / f"{mode}-{side}.prof")
            base = (base[0], "-m", "cProfile", "-o", out, *base[1:])
        return (*base, *flags)

    if mode == "plain" and profile is None:
        return REFERENCE
    return TunnelImpl(
        label=f"reference-{mode}", client_argv=argv("client"), server_argv=argv("server")
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def _log_name(what: str) -> str:
    """A log stem of its own: a program's logs are appended to, never replaced."""
    return f"{what}-{secrets.token_hex(4)}"


def iperf_tcp(lab: Lab, seconds: float) -> tuple[float, int]:
    """Mbit/s and bytes received of one iperf3 TCP test U -> V."""
    argv = ("iperf3", "-s", "-1", "-p", str(IPERF_PORT))
    server = lab.start("V", argv, log_name=_log_name("iperf3-s"))
    server.wait_ready(
        lambda: proc.port_bound(server.pid, IPERF_PORT, "tcp"), 5.0, "iperf3 listening"
    )
    client = lab.start(
        "U",
        ("iperf3", "-c", V, "-p", str(IPERF_PORT), "-t", str(seconds), "-J"),
        log_name=_log_name("iperf3"),
    )
    assert client.popen is not None
    code = client.popen.wait(seconds + 30)
    server.stop()
    if code != 0:
        raise RuntimeError(f"iperf3 exited {code}: {client.stderr_tail()}")
    received = json.loads(client.stdout())["end"]["sum_received"]
    return received["bits_per_second"] / 1e6, int(received["bytes"])


def ping_ms(lab: Lab, count: int) -> float:
    """Average round trip of `count` pings U -> V (0.01 s apart), from ping's summary."""
    argv = ("ping", "-c", str(count), "-i", "0.01", "-q", V)
    program = lab.start("U", argv, log_name=_log_name("ping"))
    assert program.popen is not None
    program.popen.wait(count + 10)
    found = re.search(r"= [\d.]+/([\d.]+)/", program.stdout())
    if found is None:
        raise RuntimeError(f"ping: no summary in {program.stdout()!r}")
    return float(found.group(1))


def measure(lab: Lab, impl: TunnelImpl, mode: str, seconds: float, pings: int) -> Row:
    tunnel = start_tunnel(lab, impl)
    try:
        probes = Probes(lab, tunnel)
        probes.ping("U", V, b"warm-up")  # the AEAD handshake is done before the clock starts
        probes.close()
        pids = (tunnel.client.pid, tunnel.server.pid)
        before = sum(cpu_seconds(pid) for pid in pids)
        mbit_s, received = iperf_tcp(lab, seconds)
        cpu = sum(cpu_seconds(pid) for pid in pids) - before
        rtt = ping_ms(lab, pings)
    finally:
        tunnel.stop()
    return Row(f"reference-{mode}", mbit_s, cpu * 1000 / (received / 1e6), rtt)


def run(rounds: int, seconds: float, pings: int, profile: Path | None) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vpnsim-bench-") as tmp:
        work = Path(tmp)
        psk_file = work / "bench.psk"
        psk_file.write_text(secrets.token_hex(32))
        lab = build_lab(seed_tunnel(), name=new_lab_name("tb"), log_dir=work, owner_pid=os.getpid())
        try:
            rows = []
            for round_ in range(rounds):
                order = MODES[round_ % 2 :] + MODES[: round_ % 2]
                for mode in order:
                    rows.append(measure(lab, tunnel_impl(mode, psk_file), mode, seconds, pings))
                    print(_line(rows[-1], f"round {round_ + 1}"), flush=True)
            if profile is not None:
                profile.mkdir(parents=True, exist_ok=True)
                for mode in MODES:
                    measure(lab, tunnel_impl(mode, psk_file, profile), mode, seconds, pings)
        finally:
            lab.teardown()
    return rows


def sans_io_us_per_packet(mode: str, packets: int = 20_000) -> float:
    """Microseconds of protocol work per 1400-byte packet, client TUN -> server TUN, no IO:
    what each mode costs before any system call (best of 3)."""
    from vpnsim.testing import ipv4_packet
    from vpnsim.tunnel.protocol import ClientProtocol, Endpoint, Send, ServerProtocol
    from vpnsim.tunnel.secure import SecureClient, SecureServer

    server_addr, client_addr = ("10.9.0.11", 9090), ("10.9.0.5", 40000)
    packet = ipv4_packet("192.168.53.99", V, bytes(1400))
    best = float("inf")
    for _ in range(3):
        client: Endpoint
        server: Endpoint
        if mode == "aead":
            psk = secrets.token_bytes(32)
            secure_client, secure_server = SecureClient(server_addr, psk), SecureServer(psk)
            # The handshake, by hand: initiation, response, confirming keepalive.
            messages: list[Send] = secure_client.expire(0.0)
            while messages:
                message = messages.pop()
                if message.addr == server_addr:
                    answers = secure_server.datagram_received(message.datagram, client_addr, 0.0)
                else:
                    answers = secure_client.datagram_received(message.datagram, server_addr, 0.0)
                messages += [a for a in answers if isinstance(a, Send)]
            assert secure_server.stats.handshakes == 1
            client, server = secure_client, secure_server
        else:
            client, server = ClientProtocol(server_addr), ServerProtocol()
        started = time.perf_counter()
        for _ in range(packets):
            for send in client.packet_from_tun(packet, 1.0):
                server.datagram_received(send.datagram, client_addr, 1.0)
        best = min(best, (time.perf_counter() - started) / packets * 1e6)
    return best


def medians(rows: list[Row]) -> list[Row]:
    out = []
    for impl in dict.fromkeys(r.impl for r in rows):
        mine = [r for r in rows if r.impl == impl]
        out.append(
            Row(
                impl,
                statistics.median(r.tcp_mbit_s for r in mine),
                statistics.median(r.cpu_ms_per_mb for r in mine),
                statistics.median(r.ping_ms for r in mine),
            )
        )
    return out


def _line(row: Row, label: str) -> str:
    return (
        f"{label:<9} {row.impl:<16} {row.tcp_mbit_s:8.1f} Mbit/s  "
        f"{row.cpu_ms_per_mb:6.2f} core-ms/MB  ping {row.ping_ms:.3f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.tunnel.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="iperf3 test length")
    parser.add_argument("--pings", type=int, default=50)
    parser.add_argument("--json", type=Path, help="write the per-mode medians here")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="also profile each mode")
    args = parser.parse_args(argv)
    rows = run(args.rounds, args.seconds, args.pings, args.profile)
    for row in medians(rows):
        print(_line(row, "median"))
    for mode in MODES:
        print(f"sans-IO   reference-{mode:<6} {sans_io_us_per_packet(mode):8.2f} us per packet")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in medians(rows)], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
