"""`vpnsim bench framework`: vpnsim's framework against Mininet, in one run, side by side.

A report, never a pass/fail timing. Each figure is the median of `rounds` rounds with its
lowest and highest; the order of vpnsim and its anchor is swapped every round, so both see
the same machine. The goals (issue 15) and the figures that answer them:

- start: nothing -> SEED lab -> reference tunnel ready -> first echo from V, in this
  process, against Mininet reaching the bare SEED lab (Linux bridges, no controller) in its
  process, imports done: ratio < 1;
- teardown of that lab (tunnel running) against Mininet's `net.stop()`: ratio <= 0.25;
  and both again as new processes, interpreter and imports included;
- `vpnsim lab up` as a whole command, wall clock: <= 0.5 s (and what its imports take, from
  `python -X importtime`);
- Hypothesis examples per second of the property of tests/properties (byte for byte, UDP
  and ICMP, U -> V) through the live reference tunnel, with vpnsim's probes: >= 2500/s and at
  least the rate of a two-thread student tunnel (`vpnsim.bench.student_tunnel`) measured by
  the same harness in the same run. The property run with no network at all (the payload
  handed straight back) is the ceiling: what Hypothesis and the payloads cost alone.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from vpnsim.bench.figures import Figure, examples_per_second, figure, ratio
from vpnsim.bench.overview import first_echo
from vpnsim.errors import HarnessError
from vpnsim.impl import REFERENCE, TunnelImpl
from vpnsim.seed import seed_tunnel
from vpnsim.traffic.probes import Probes
from vpnsim.vpn import build_with_tunnel

V = "192.168.60.5"
EXAMPLES = 400
GOALS = {
    "start_vs_mininet_bare_lab": "< 1 x",
    "teardown_vs_mininet": "<= 0.25 x",
    "lab_up_command_s": "<= 0.5 s",
    "examples_per_s": ">= 2500 /s, and >= the two-thread student tunnel's",
}
MININET_SCRIPT = Path(__file__).with_name("mininet_seed.py")
STUDENT = TunnelImpl(
    label="two-thread student tunnel",
    client_argv=(sys.executable, "-m", "vpnsim.bench.student_tunnel", "client"),
    server_argv=(sys.executable, "-m", "vpnsim.bench.student_tunnel", "server"),
)


def mininet_python() -> str:
    """A Python that can import Mininet: this one, or the system's (Debian's package)."""
    if importlib.util.find_spec("mininet") is not None:
        return sys.executable
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system and subprocess.run([system, "-c", "import mininet.net"],
                                 capture_output=True, check=False).returncode == 0:  # fmt: skip
        return system
    raise HarnessError(
        "Mininet is not installed: apt-get install mininet bridge-utils (`nox -s bench` does)"
    )


class MininetWorker:
    """Mininet in its own process (its Python), doing one round whenever asked."""

    def __init__(self, python: str) -> None:
        self._process = subprocess.Popen(
            [python, str(MININET_SCRIPT), "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._read()  # {"ready": true}: its imports are done

    def round(self) -> dict[str, float]:
        stdin: IO[str] | None = self._process.stdin
        assert stdin is not None
        stdin.write("round\n")
        stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            stderr = self._process.stderr.read() if self._process.stderr else ""
            raise HarnessError(f"the Mininet round failed:\n{stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(30)


def new_process_start(argv: list[str]) -> float:
    """Wall time of a process that does one round and prints its steps as JSON, teardown
    excluded: nothing -> first echo, interpreter and imports included."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    wall = time.perf_counter() - started
    return wall - float(json.loads(done.stdout.splitlines()[-1])["teardown_s"])


def vpnsim_new_process() -> float:
    code = (
        "from vpnsim.bench.overview import first_echo; import json; print(json.dumps(first_echo()))"
    )
    return new_process_start([sys.executable, "-c", code])


def mininet_new_process(python: str) -> float:
    return new_process_start([python, str(MININET_SCRIPT)])


def lab_up_command() -> dict[str, float]:
    """`vpnsim lab up` and `vpnsim lab down NAME` as whole commands: wall seconds."""
    started = time.perf_counter()
    up = subprocess.run([sys.executable, "-m", "vpnsim", "lab", "up"], capture_output=True,
                        text=True, check=True, timeout=60)  # fmt: skip
    up_s = time.perf_counter() - started
    name = up.stdout.strip().splitlines()[-1]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vpnsim", "lab", "down", name], capture_output=True,
                   check=True, timeout=60)  # fmt: skip
    return {"up_s": up_s, "down_s": time.perf_counter() - started}


def lab_up_imports() -> tuple[float, list[tuple[str, float]]]:
    """Seconds `vpnsim lab up` spends importing (`python -X importtime`), and its heaviest
    top-level imports."""
    up = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vpnsim", "lab", "up"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    subprocess.run([sys.executable, "-m", "vpnsim", "lab", "down", up.stdout.strip()],
                   capture_output=True, check=True, timeout=60)  # fmt: skip
    top: dict[str, float] = {}
    for line in up.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.strip() and not name.startswith("  ") and cumulative.strip().isdigit():
            top[name.strip()] = top.get(name.strip(), 0.0) + int(cumulative) / 1e6
    heaviest = sorted(top.items(), key=lambda item: -item[1])[:5]
    return sum(top.values()), heaviest


def property_rates(impl: TunnelImpl, examples: int) -> dict[str, float]:
    """Examples/s of the byte-for-byte properties U -> V (UDP, ICMP) through `impl`."""
    lab, tunnel = build_with_tunnel(seed_tunnel(), impl)
    try:
        probes = Probes(lab, tunnel)
        probes.ping("U", V)  # the server learns the client (plain mode has no handshake)
        probes.udp("U", V, b"warm")  # the echo service is up before the clock starts

        def icmp(data: bytes) -> bytes:
            reply = probes.ping("U", V, data)
            return reply.payload if reply.source == V else b""

        return {
            "udp": examples_per_second(lambda data: probes.udp("U", V, data), examples),
            "icmp": examples_per_second(icmp, examples),
        }
    finally:
        lab.teardown()


def _rotated(round_: int, *steps: Callable[[], None]) -> None:
    for step in steps if round_ % 2 == 0 else reversed(steps):
        step()


def run_framework_bench(
    rounds: int = 5, json_path: str | None = None, examples: int = EXAMPLES
) -> int:
    python = mininet_python()
    samples: dict[str, list[float]] = {}

    def keep(prefix: str, values: dict[str, float]) -> None:
        for key, value in values.items():
            samples.setdefault(f"{prefix}{key}", []).append(value)

    first_echo()  # warm: this process has built a lab before, as a test session has
    worker = MininetWorker(python)
    try:
        worker.round()
        for r in range(rounds):
            _rotated(r, lambda: keep("vpnsim.", first_echo()), lambda: keep("mn.", worker.round()))
    finally:
        worker.close()
    for r in range(rounds):
        _rotated(
            r,
            lambda: keep("vpnsim.", {"new_process_s": vpnsim_new_process()}),
            lambda: keep("mn.", {"new_process_s": mininet_new_process(python)}),
        )
        keep("cmd.", lab_up_command())
    import_s, heaviest = lab_up_imports()
    for r in range(rounds):
        keep("hypothesis.", {"alone": examples_per_second(lambda data: data, examples)})
        _rotated(
            r,
            lambda: keep("reference.", property_rates(REFERENCE, examples)),
            lambda: keep("student.", property_rates(STUDENT, examples)),
        )

    s = samples
    figures: list[Figure] = [
        figure("vpnsim: lab built, reference tunnel ready", "s", s["vpnsim.build_s"]),
        figure("vpnsim: nothing -> first echo from V (in process)", "s", s["vpnsim.start_s"]),
        figure("Mininet: nothing -> bare SEED lab (in process)", "s", s["mn.build_s"]),
        figure("Mininet: nothing -> bare lab -> first echo", "s", s["mn.start_s"]),
        ratio("ratio vpnsim first echo / Mininet bare lab", s["vpnsim.start_s"], s["mn.build_s"]),
        figure("vpnsim: teardown, tunnel running", "s", s["vpnsim.teardown_s"]),
        figure("Mininet: teardown (net.stop)", "s", s["mn.teardown_s"]),
        ratio("ratio vpnsim / Mininet teardown", s["vpnsim.teardown_s"], s["mn.teardown_s"]),
        figure("vpnsim: first echo, new process", "s", s["vpnsim.new_process_s"]),
        figure("Mininet: bare lab + first echo, new process", "s", s["mn.new_process_s"]),
        ratio(
            "ratio vpnsim / Mininet, new process",
            s["vpnsim.new_process_s"],
            s["mn.new_process_s"],
        ),
        figure("`vpnsim lab up` (SEED lab + reference tunnel), wall", "s", s["cmd.up_s"]),
        figure("`vpnsim lab down`, wall", "s", s["cmd.down_s"]),
        figure("`vpnsim lab up`: imports (-X importtime, 1 run)", "s", [import_s]),
        figure("Hypothesis alone: the property, no network", "examples/s", s["hypothesis.alone"]),
        figure("Hypothesis UDP examples, reference tunnel", "examples/s", s["reference.udp"]),
        figure("Hypothesis UDP examples, two-thread student", "examples/s", s["student.udp"]),
        ratio("ratio reference / student, UDP", s["reference.udp"], s["student.udp"]),
        figure("Hypothesis ICMP examples, reference tunnel", "examples/s", s["reference.icmp"]),
        figure("Hypothesis ICMP examples, two-thread student", "examples/s", s["student.icmp"]),
        ratio("ratio reference / student, ICMP", s["reference.icmp"], s["student.icmp"]),
    ]
    print(f"vpnsim bench framework: {rounds} rounds, {examples} Hypothesis examples per rate")
    for item in figures:
        print(item.line())
    print("heaviest imports of `vpnsim lab up`: " + ", ".join(
        f"{name} {seconds * 1000:.0f} ms" for name, seconds in heaviest))  # fmt: skip
    print("goals: " + "; ".join(f"{key} {goal}" for key, goal in GOALS.items()))
    if json_path:
        report = {
            "bench": "framework",
            "rounds": rounds,
            "examples": examples,
            "goals": GOALS,
            "figures": [asdict(item) for item in figures],
            "lab_up_heaviest_imports_s": dict(heaviest),
        }
        Path(json_path).write_text(json.dumps(report, indent=2))
    return 0
