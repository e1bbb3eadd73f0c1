"""`vpnsim bench` (`nox -s bench`): start-up, teardown and probe-rate figures, side by side.

A report, never a pass/fail timing. Each figure is the median of `rounds` runs (min and max
shown); rates are compared with a baseline measured in the same run, as a ratio:
- start: nothing -> SEED lab built -> reference tunnel ready -> first echo reply from V,
  in this process and in a fresh `python` process (interpreter and imports included);
- teardown of that lab, tunnel programs running;
- Hypothesis examples per second of the UDP byte-for-byte property U -> V through the tunnel,
  against the same property over a direct routed path (server -> V) in the same lab;
- the seeded wire (vpnsim.impair.bench): TCP throughput and round trip over U:eth0 through a
  clean wire against the plain link, and examples per second of the loss property.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from vpnsim.bench.figures import command_seconds, examples_per_second, figure, ratio
from vpnsim.impl import REFERENCE
from vpnsim.seed import seed_tunnel
from vpnsim.topology import build_lab
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import build_with_tunnel, start_tunnel

V = "192.168.60.5"
EXAMPLES = 300
TARGETS = {"start_s": 0.5, "teardown_s": 0.1, "examples_per_s": 100.0}


def first_echo() -> dict[str, float]:
    """Nothing -> lab -> tunnel ready -> first echo from V -> teardown; seconds of each step.

    The reference tunnel's ends start while the links are built (`build_with_tunnel`), so
    "lab built" and "tunnel ready" overlap: `build_s` is until the tunnel is ready."""
    t0 = time.perf_counter()
    lab, tunnel = build_with_tunnel(seed_tunnel(), REFERENCE)
    try:
        t1 = time.perf_counter()
        Probes(lab, tunnel).ping("U", V, b"first")
        t2 = time.perf_counter()
    finally:
        t3 = time.perf_counter()
        lab.teardown()
        t4 = time.perf_counter()
    return {
        "build_s": t1 - t0,
        "echo_s": t2 - t1,
        "start_s": t2 - t0,
        "teardown_s": t4 - t3,
    }


def fresh_process_start() -> float:
    """Wall time of `first_echo()` in a new interpreter: imports included, teardown excluded."""
    code = (
        "from vpnsim.bench.overview import first_echo; import json; print(json.dumps(first_echo()))"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    wall = time.perf_counter() - started
    return wall - float(json.loads(done.stdout)["teardown_s"])


def validate_shipped() -> float:
    """Seconds to load and validate every shipped scenario file (in this process)."""
    from vpnsim.scenario.loader import load
    from vpnsim.scenario.shipped import SHIPPED_DIR

    started = time.perf_counter()
    for path in sorted(SHIPPED_DIR.glob("*.toml")):
        load(path)
    return time.perf_counter() - started


def run_bench(rounds: int = 5, json_path: str | None = None, examples: int = EXAMPLES) -> int:
    steps: dict[str, list[float]] = {}
    for _ in range(rounds):
        for key, value in first_echo().items():
            steps.setdefault(key, []).append(value)
    fresh = [fresh_process_start() for _ in range(rounds)]
    from vpnsim.scenario.shipped import SHIPPED_DIR

    shipped = sorted(str(p) for p in SHIPPED_DIR.glob("*.toml"))
    validate_in = [validate_shipped() for _ in range(rounds)]
    validate_cli = [command_seconds("validate", *shipped) for _ in range(rounds)]
    with tempfile.TemporaryDirectory() as artifacts:
        run_seed = [
            command_seconds("run", "seed-tunnel", "--artifacts", artifacts) for _ in range(rounds)
        ]

    lab = build_lab(seed_tunnel())
    try:
        probes = Probes(lab, start_tunnel(lab, REFERENCE))
        probes.ping("U", V)
        rates: dict[str, list[float]] = {"tunnel": [], "direct": []}
        for _ in range(rounds):  # interleaved, so both see the same machine state
            rates["tunnel"].append(examples_per_second(lambda d: probes.udp("U", V, d), examples))
            rates["direct"].append(
                examples_per_second(lambda d: probes.udp("server", V, d), examples)
            )
        from vpnsim.impair.bench import loss_examples_per_second, plain_vs_wire
        from vpnsim.impair.link import impair

        wire_rates = plain_vs_wire(lab, rounds)
        wire = impair(lab, "U:eth0")
        loss_rates = [loss_examples_per_second(lab, wire, examples // 3) for _ in range(rounds)]
    finally:
        lab.teardown()

    figures = [
        figure("start: lab built, reference tunnel ready", "s", steps["build_s"]),
        figure("start: first echo reply from V", "s", steps["echo_s"]),
        figure("start: nothing -> first echo (this process)", "s", steps["start_s"]),
        figure("start: nothing -> first echo (new process)", "s", fresh),
        figure("teardown (tunnel running)", "s", steps["teardown_s"]),
        figure(f"validate {len(shipped)} shipped scenarios (in process)", "s", validate_in),
        figure(f"`vpnsim validate` {len(shipped)} shipped scenarios", "s", validate_cli),
        figure("`vpnsim run seed-tunnel` (11 checks)", "s", run_seed),
        figure("Hypothesis UDP examples through the tunnel", "examples/s", rates["tunnel"]),
        figure("Hypothesis UDP examples, direct routed path", "examples/s", rates["direct"]),
        ratio("ratio tunnel / direct", rates["tunnel"], rates["direct"]),
        figure("TCP U -> server, plain link", "MB/s", wire_rates["plain_mbps"]),
        figure("TCP U -> server, plain, offloads off", "MB/s", wire_rates["no_offload_mbps"]),
        figure("TCP U -> server, through a clean wire", "MB/s", wire_rates["wire_mbps"]),
        ratio("ratio wire / plain throughput", wire_rates["wire_mbps"], wire_rates["plain_mbps"]),
        figure("ICMP RTT U -> server, plain link (median)", "ms", wire_rates["plain_rtt"]),
        figure("ICMP RTT U -> server, clean wire (median)", "ms", wire_rates["wire_rtt"]),
        figure(
            "added round trip of the wire",
            "ms",
            [w - p for w, p in zip(wire_rates["wire_rtt"], wire_rates["plain_rtt"], strict=True)],
        ),
        figure("Hypothesis loss-property examples (tunnel, wire)", "examples/s", loss_rates),
    ]
    print(f"vpnsim bench: {rounds} rounds, {examples} Hypothesis examples per rate")
    for item in figures:
        print(item.line())
    print(
        "targets: nothing -> first echo <= {start_s} s, teardown <= {teardown_s} s, "
        ">= {examples_per_s:g} examples/s through the tunnel".format(**TARGETS)
    )
    if json_path:
        report = {"rounds": rounds, "targets": TARGETS, "figures": [asdict(f) for f in figures]}
        Path(json_path).write_text(json.dumps(report, indent=2))
    return 0
