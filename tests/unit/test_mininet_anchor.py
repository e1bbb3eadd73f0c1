"""The Mininet anchor of `vpnsim bench framework` must not change the machine it runs on:
Mininet's first build calls fixLimits(), which raises a dozen sysctls for good (rmem_max and
wmem_max to 16 MiB among them). A stand-in `mininet` package records what is called."""

from __future__ import annotations

import sys
import types

import pytest

from vpnsim.bench import mininet_seed


def test_the_anchor_switches_off_mininets_fix_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    raised: list[str] = []
    package = types.ModuleType("mininet")
    log = types.ModuleType("mininet.log")
    log.setLogLevel = lambda level: None  # type: ignore[attr-defined]
    net = types.ModuleType("mininet.net")
    net.fixLimits = lambda: raised.append("sysctls raised")  # type: ignore[attr-defined]
    for name, module in (("mininet", package), ("mininet.log", log), ("mininet.net", net)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "argv", ["mininet_seed.py", "--rounds", "0"])

    assert mininet_seed.main() == 0

    net.fixLimits()  # what Mininet.init() calls on the first build
    assert raised == []
