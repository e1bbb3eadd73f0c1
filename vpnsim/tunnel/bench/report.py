"""Rows of `vpnsim bench tunnels`: one per contender and round, then medians with spread;
written as JSON, a text table and a PNG chart."""

from __future__ import annotations

import importlib.util
import json
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from vpnsim.errors import HarnessError

# The figures of a row, in table order, with their units for the text table and the chart.
FIGURES = {
    "tcp_mbit_s": "TCP Mbit/s",
    "cpu_ms_per_mb": "core-ms/MB",
    "cpu_us_per_packet": "core-us/pkt",
    "ping_ms": "ping ms",
    "ping_p99_ms": "p99 ms",
    "udp_kpps_64": "UDP64 kpps",
    "udp_loss_64": "loss64",
    "udp_kpps_1400": "UDP1400 kpps",
    "udp_loss_1400": "loss1400",
    "ready_s": "ready s",
}


@dataclass(frozen=True)
class Row:
    """One contender in one round (or the median of its rounds). CPU figures are the tunnel
    processes' user + system time (None for the kernel tunnel: no process to charge)."""

    impl: str
    tcp_mbit_s: float
    cpu_ms_per_mb: float | None  # during the TCP test, per MB received by iperf3
    cpu_us_per_packet: float | None  # during the 64-byte UDP test, per datagram sent
    ping_ms: float
    ping_p99_ms: float
    udp_kpps_64: float  # delivered to V, thousands of datagrams per second
    udp_loss_64: float  # fraction of the datagrams sent that V never got
    udp_kpps_1400: float
    udp_loss_1400: float
    ready_s: float


def _median(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """Per contender (first-seen order): the medians of its rounds as a row, plus `rounds`
    and `spread` ({figure: [min, max]})."""
    out = []
    for impl in dict.fromkeys(r.impl for r in rows):
        mine = [r for r in rows if r.impl == impl]
        summary: dict[str, Any] = {"impl": impl}
        spread: dict[str, list[float]] = {}
        for field in fields(Row)[1:]:
            values = [getattr(r, field.name) for r in mine]
            summary[field.name] = _median(values)
            known = [v for v in values if v is not None]
            if known:
                spread[field.name] = [min(known), max(known)]
        summary["rounds"] = len(mine)
        summary["spread"] = spread
        out.append(summary)
    return out


def write_json(
    path: Path, summary: list[dict[str, Any]], rows: list[Row], meta: dict[str, Any]
) -> None:
    """The medians as a list of rows (the issue's shape); each row also carries its
    `rounds` (every round's figures) and the run's `meta` (load average, kernel, ...)."""
    per_impl = {s["impl"]: s for s in summary}
    listed = []
    for impl, median in per_impl.items():
        runs = [asdict(r) for r in rows if r.impl == impl]
        listed.append({**median, "runs": runs, "meta": meta})
    path.write_text(json.dumps(listed, indent=1) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) and value < 10 else f"{value:.1f}"


def table(summary: list[dict[str, Any]]) -> str:
    """The medians as a text table, one contender a line."""
    head = ["impl", *FIGURES.values()]
    lines = [[s["impl"], *(_cell(s[k]) for k in FIGURES)] for s in summary]
    widths = [max(len(str(r[i])) for r in [head, *lines]) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *lines]
    )


CHART = ("tcp_mbit_s", "cpu_ms_per_mb", "ping_ms", "udp_kpps_64", "udp_kpps_1400", "ready_s")


PNG_NEEDS = "needs matplotlib (pip install 'vpnsim[bench]', or `nox -s bench`)"


def can_write_png() -> bool:
    """Whether --png can be honoured: asked before the rounds, not after minutes of them."""
    return importlib.util.find_spec("matplotlib") is not None


def write_png(path: Path, summary: list[dict[str, Any]], title: str) -> None:
    """One bar chart per figure, medians with min-max whiskers (needs matplotlib:
    `pip install vpnsim[bench]`)."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise HarnessError(f"--png {path}: {PNG_NEEDS}") from exc
    names = [s["impl"] for s in summary]
    figure, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for ax, key in zip(axes.flat, CHART, strict=True):
        medians = [s[key] if s[key] is not None else 0.0 for s in summary]
        low = [m - s["spread"].get(key, [m, m])[0] for m, s in zip(medians, summary, strict=True)]
        high = [s["spread"].get(key, [m, m])[1] - m for m, s in zip(medians, summary, strict=True)]
        ax.bar(names, medians, yerr=[low, high], capsize=4, color="tab:blue")
        ax.set_title(FIGURES[key])
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        for x, s in enumerate(summary):
            if s[key] is None:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8)
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
