"""One measurement each: iperf3 TCP and UDP U -> V, ping U -> V, a process's CPU time.

Each returns plain figures; nothing here knows which tunnel carries the traffic.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
from dataclasses import dataclass
from pathlib import Path

from vpnsim import proc
from vpnsim.errors import HarnessError
from vpnsim.topology import Lab

V = "192.168.60.5"  # the Tunneling lab's V; the TLS lab's bench passes its own
IPERF_PORT = 5201
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(HarnessError):
    """A measuring program failed, or the bench lacks something: says which."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def _log_name(what: str) -> str:
    """A log stem of its own: a program's logs are appended to, never replaced."""
    return f"{what}-{secrets.token_hex(4)}"


def _iperf(lab: Lab, seconds: float, client_args: tuple[str, ...], v: str = V) -> dict[str, object]:
    """One iperf3 test U -> V (at address `v`); its JSON report."""
    server = lab.start(
        "V", ("iperf3", "-s", "-1", "-p", str(IPERF_PORT)), log_name=_log_name("iperf3-s")
    )
    try:
        server.wait_ready(
            lambda: proc.port_bound(server.pid, IPERF_PORT, "tcp"), 5.0, "iperf3 listening"
        )
        argv = ("iperf3", "-c", v, "-p", str(IPERF_PORT), "-t", str(seconds), "-J", *client_args)
        client = lab.start("U", argv, log_name=_log_name("iperf3"))
        assert client.popen is not None
        code = client.popen.wait(seconds + 30)
    finally:
        server.stop()
    if code != 0:
        raise BenchError(f"iperf3 exited {code}: {client.stdout()[-500:]} {client.stderr_tail()}")
    report: dict[str, object] = json.loads(client.stdout())
    return report


def iperf_tcp(lab: Lab, seconds: float, v: str = V) -> tuple[float, int]:
    """Mbit/s and bytes received of one iperf3 TCP test U -> V (at address `v`)."""
    end = _iperf(lab, seconds, (), v)["end"]
    assert isinstance(end, dict)
    received = end["sum_received"]
    return received["bits_per_second"] / 1e6, int(received["bytes"])


@dataclass(frozen=True)
class UdpResult:
    sent: int  # datagrams iperf3 sent
    lost: int  # of those, never received by V
    seconds: float

    @property
    def delivered(self) -> int:
        return self.sent - self.lost

    @property
    def kpps(self) -> float:
        """Thousands of datagrams per second delivered to V."""
        return self.delivered / self.seconds / 1000

    @property
    def loss(self) -> float:
        return self.lost / self.sent if self.sent else 0.0


def iperf_udp(lab: Lab, seconds: float, payload: int) -> UdpResult:
    """iperf3 UDP U -> V at full speed (`-b 0`) with `payload`-byte datagrams."""
    args = ("-u", "-b", "0", "-l", str(payload))
    end = _iperf(lab, seconds, args)["end"]
    assert isinstance(end, dict)
    total = end["sum"]
    return UdpResult(int(total["packets"]), int(total["lost_packets"]), float(total["seconds"]))


@dataclass(frozen=True)
class PingResult:
    avg_ms: float
    p99_ms: float
    lost: int


def ping(lab: Lab, count: int) -> PingResult:
    """`count` pings U -> V, 0.01 s apart: average and 99th percentile of the round trips."""
    argv = ("ping", "-c", str(count), "-i", "0.01", "-W", "1", V)
    program = lab.start("U", argv, log_name=_log_name("ping"))
    assert program.popen is not None
    program.popen.wait(count + 10)
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", program.stdout())]
    if not times:
        raise BenchError(f"ping: no replies in {program.stdout()[-500:]!r}")
    p99 = statistics.quantiles(times, n=100, method="inclusive")[98] if len(times) > 1 else times[0]
    return PingResult(statistics.fmean(times), p99, count - len(times))
