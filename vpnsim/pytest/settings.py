"""The plugin's settings: declared once, resolved once (in `pytest_configure`), validated, and
kept in the config's stash. Everything else reads `settings_of(config)`.

Each setting: command line > environment (where there is one) > ini key > default. A value that
cannot be used is a `pytest.UsageError` naming the option, before any test runs.
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass

import pytest

from vpnsim.impl import ACCEPTED, ImplementationError, TunnelImpl

ENV_IMPL = "VPNSIM_VPN_IMPL"
PCAP_CHOICES = ("failed", "off")
DEFAULT_SCENARIO_PATTERNS = ["scenarios/*.toml"]


@dataclass(frozen=True)
class Settings:
    impl: TunnelImpl
    probe_timeout: float
    pcap: str  # one of PCAP_CHOICES
    scenario_patterns: tuple[str, ...]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("vpnsim", "vpnsim: VPN labs in network namespaces")
    group.addoption(
        "--vpn-impl",
        action="append",
        default=None,
        metavar="VALUE",
        help=f"tunnel implementation under test: {ACCEPTED} (repeatable); default "
        f"reference. Also: env {ENV_IMPL}, ini vpn_impl.",
    )
    parser.addini("vpn_impl", "default tunnel implementation under test", default="reference")
    group.addoption(
        "--vpn-probe-timeout",
        default=None,
        metavar="SECONDS",
        help="how long a probe waits for its answer (default 2; ini vpn_probe_timeout)",
    )
    parser.addini("vpn_probe_timeout", "seconds a probe waits for its answer", default="2")
    group.addoption(
        "--vpn-pcap",
        default=None,
        choices=PCAP_CHOICES,
        help="capture every link of a test's labs and keep pcaps of failing tests "
        "(default failed; ini vpn_pcap)",
    )
    parser.addini("vpn_pcap", "failed (keep pcaps of failing tests) or off", default="failed")
    parser.addini(
        "vpnsim_scenarios",
        "glob patterns (from the rootdir) of scenario files collected as tests",
        type="args",
        default=DEFAULT_SCENARIO_PATTERNS,
    )


def resolve(config: pytest.Config) -> Settings:
    """Every setting from its sources; `pytest.UsageError` naming the option if one is bad."""
    return Settings(
        impl=_impl(config),
        probe_timeout=_probe_timeout(config),
        pcap=_pcap(config),
        scenario_patterns=tuple(str(p) for p in config.getini("vpnsim_scenarios")),
    )


def _impl(config: pytest.Config) -> TunnelImpl:
    values = config.getoption("--vpn-impl")
    source = "--vpn-impl"
    if not values and os.environ.get(ENV_IMPL):
        values, source = shlex.split(os.environ[ENV_IMPL]), ENV_IMPL
    if not values:
        values, source = shlex.split(str(config.getini("vpn_impl"))), "vpn_impl (ini)"
    try:
        return TunnelImpl.parse(values)
    except ImplementationError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None


def _probe_timeout(config: pytest.Config) -> float:
    given = config.getoption("--vpn-probe-timeout")
    source = "--vpn-probe-timeout"
    if given is None:
        given, source = config.getini("vpn_probe_timeout"), "vpn_probe_timeout (ini)"
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds <= 3600):
        raise pytest.UsageError(f"{source}: expected seconds, > 0 and <= 3600, got {given!r}")
    return seconds


def _pcap(config: pytest.Config) -> str:
    given = config.getoption("--vpn-pcap")
    source = "--vpn-pcap"
    if given is None:
        given, source = config.getini("vpn_pcap"), "vpn_pcap (ini)"
    if given not in PCAP_CHOICES:
        raise pytest.UsageError(
            f"{source}: expected one of {', '.join(PCAP_CHOICES)}, got {given!r}"
        )
    return str(given)


_settings_key = pytest.StashKey[Settings]()
_labs_key = pytest.StashKey[list[str]]()


def configure(config: pytest.Config) -> None:
    config.stash[_settings_key] = resolve(config)
    config.stash[_labs_key] = []


def settings_of(config: pytest.Config) -> Settings:
    """The settings as resolved at configure time."""
    return config.stash[_settings_key]


def lab_registry(config: pytest.Config) -> list[str]:
    """Names of every lab this session built: checked for leaks at its end."""
    return config.stash[_labs_key]


def registered_labs(config: pytest.Config) -> list[str]:
    """The registry, or nothing if configure never ran (an interrupted start-up)."""
    return config.stash.get(_labs_key, [])
