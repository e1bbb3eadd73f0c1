"""`vpnsim bench tunnels` reporting: medians and spread per contender, the JSON rows' shape,
the text table; the command's parser as `vpnsim` mounts it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vpnsim.tunnel.bench import cli
from vpnsim.tunnel.bench.report import Row, summarize, table, write_json


def row(impl: str, tcp: float, cpu: float | None) -> Row:
    return Row(impl, tcp, cpu, cpu and cpu / 10, 0.5, 0.9, 20.0, 0.1, 15.0, 0.2, 0.3)


ROWS = [row("reference", 700, 18.0), row("kernel", 9000, None), row("reference", 900, 12.0)]
ROWS.append(row("reference", 800, 15.0))
ROWS.append(row("kernel", 8000, None))


def test_medians_and_spread_per_contender_in_first_seen_order() -> None:
    reference, kernel = summarize(ROWS)
    assert (reference["impl"], reference["tcp_mbit_s"], reference["cpu_ms_per_mb"]) == (
        "reference",
        800,
        15.0,
    )
    assert reference["spread"]["tcp_mbit_s"] == [700, 900]
    assert reference["rounds"] == 3
    assert (kernel["tcp_mbit_s"], kernel["cpu_ms_per_mb"], kernel["rounds"]) == (8500, None, 2)
    assert "cpu_ms_per_mb" not in kernel["spread"]  # no process to charge: no figure at all


def test_json_is_a_list_of_rows_with_the_issues_keys_and_every_round(tmp_path: Path) -> None:
    out = tmp_path / "tunnels.json"
    write_json(out, summarize(ROWS), ROWS, {"loadavg_before": [1.0, 1.0, 1.0]})
    rows = json.loads(out.read_text())
    assert [r["impl"] for r in rows] == ["reference", "kernel"]
    wanted = {"impl", "tcp_mbit_s", "cpu_ms_per_mb", "ping_ms", "udp_kpps_64", "udp_kpps_1400"}
    assert wanted | {"ready_s", "ping_p99_ms", "udp_loss_64", "spread", "runs"} <= set(rows[0])
    assert [r["tcp_mbit_s"] for r in rows[0]["runs"]] == [700, 900, 800]
    assert rows[1]["meta"] == {"loadavg_before": [1.0, 1.0, 1.0]}


def test_the_table_has_a_line_per_contender_and_a_dash_for_no_figure() -> None:
    lines = table(summarize(ROWS)).splitlines()
    assert lines[0].split()[:3] == ["impl", "TCP", "Mbit/s"]
    assert lines[1].split()[:3] == ["reference", "800.0", "15.0"]
    assert lines[2].split()[:3] == ["kernel", "8500.0", "-"]


def test_the_subcommand_mounts_under_a_bench_parser_and_refuses_unknown_contenders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="vpnsim bench")
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["tunnels", "--impl", "reference,strongswan", "--rounds", "1"])
    assert args.rounds == 1
    assert args.run(args) == 2
    assert "unknown strongswan" in capsys.readouterr().err


def test_a_png_that_cannot_be_drawn_is_refused_before_any_round(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import vpnsim.tunnel.bench.report as report
    import vpnsim.tunnel.bench.rounds as rounds

    def no_rounds(*args: object) -> None:
        raise AssertionError("the rounds ran although the PNG could not be drawn")

    monkeypatch.setattr(report.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(rounds, "run_rounds", no_rounds)
    parser = argparse.ArgumentParser(prog="vpnsim bench")
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["tunnels", "--impl", "reference", "--png", str(tmp_path / "t.png")])
    assert args.run(args) == 2
    needs = "needs matplotlib (pip install 'vpnsim[bench]', or `nox -s bench`)"
    assert capsys.readouterr().err == f"--png {tmp_path / 't.png'}: {needs}\n"
