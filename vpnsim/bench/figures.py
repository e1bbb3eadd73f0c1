"""What every bench shares: a figure as the median of rounds with its spread, ratios of two
figures measured in the same run, and the Hypothesis examples-per-second harness."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """The median of `samples` rounds, with the lowest and highest round."""

    name: str
    unit: str
    median: float
    low: float
    high: float
    rounds: int = 0

    def line(self) -> str:
        return (
            f"{self.name:<56} {self.median:9.3f} {self.unit:<11} "
            f"(min {self.low:.3f}, max {self.high:.3f})"
        )


def figure(name: str, unit: str, samples: list[float]) -> Figure:
    return Figure(name, unit, statistics.median(samples), min(samples), max(samples), len(samples))


def ratio(name: str, numerators: list[float], denominators: list[float]) -> Figure:
    """Per-round ratios (rounds measured side by side), summed up as a figure."""
    return figure(name, "x", [n / d for n, d in zip(numerators, denominators, strict=True)])


def examples_per_second(exchange: Callable[[bytes], bytes], examples: int) -> float:
    """Run the byte-for-byte property `examples` times through `exchange`; examples/s.

    The property of tests/properties: whatever payload (1 byte to the largest datagram,
    edges first) is sent comes back byte for byte."""
    # Imported here: the fresh-process start figure must not pay for Hypothesis.
    from hypothesis import HealthCheck, given, settings

    from vpnsim.strategies import Payload, payloads

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(payload=payloads())
    def prop(payload: Payload) -> None:
        data = payload.data()
        assert exchange(data) == data

    started = time.perf_counter()
    prop()
    return examples / (time.perf_counter() - started)


def command_seconds(*args: str) -> float:
    """Wall time of `vpnsim ARGS...` as a new process; it must succeed."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vpnsim", *args], capture_output=True, check=True,
                   timeout=120)  # fmt: skip
    return time.perf_counter() - started
