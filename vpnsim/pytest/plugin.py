"""pytest plugin: lab fixtures on any scenario, scenario files as tests, the `--vpn-*` options,
a report header, captures of failing tests' links, and a leak check at the session's end.

Registered with the `pytest11` entry point. Settings are resolved and validated once, in
`pytest_configure` (`settings.py`); the fixtures are in `fixtures.py`, scenario items in
`items.py`. Labs are module-scoped so Hypothesis examples reuse one lab; every lab the session
builds is torn down and checked for leaks at the end.

Choosing the implementation under test (first found wins):
  --vpn-impl VALUE (repeatable)  >  VPNSIM_VPN_IMPL env var  >  `vpn_impl` ini key  >  reference
VALUE is `reference`, a folder with tun_client.py and tun_server.py, or client=CMD / server=CMD.

Hypothesis's profiles are left alone: a project chooses its own (this one registers `ci` in its
top-level conftest.py).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vpnsim import features
from vpnsim.proc import ProgramFailed
from vpnsim.pytest import settings
from vpnsim.pytest.fixtures import (
    LAB_FIXTURES,
    LabFactory,
    lab,
    probes,
    seed_lab,
    tunnel_wire,
    vpn_tunnel,
    vpnsim_labs,
    vpnsim_scenario,
)

if TYPE_CHECKING:
    from vpnsim.topology import Lab
    from vpnsim.traffic.capture import Capture

# The fixtures, re-exported: pytest finds a plugin's fixtures among its module's names.
__all__ = [
    "LabFactory",
    "lab",
    "probes",
    "seed_lab",
    "tunnel_wire",
    "vpn_tunnel",
    "vpnsim_labs",
    "vpnsim_scenario",
]

LOG_TAIL_LINES = 20
PCAP_KEEP = 10_000  # newest frames kept per link: the end of a test, where it failed
_captures_key = pytest.StashKey[list[tuple[str, "Capture"]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs root; builds network namespaces")
    settings.configure(config)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without pytest-xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest -n` (xdist's `load`): each scenario file's checks on one worker, in order
    (grouping.py). Other `--dist` modes are the user's choice, left alone."""
    if config.getvalue("dist") != "load":
        return None
    from vpnsim.pytest.grouping import make_scheduler

    root = config.rootpath
    return make_scheduler(config, log, lambda path: _is_scenario_file(config, root / path))


def _is_scenario_file(config: pytest.Config, file_path: Path) -> bool:
    root = config.rootpath
    patterns = settings.settings_of(config).scenario_patterns
    return file_path.suffix == ".toml" and any(
        file_path.match(str(root / pattern)) for pattern in patterns
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Scenario files matching the `vpnsim_scenarios` patterns: one item per check."""
    if not _is_scenario_file(parent.config, file_path):
        return None
    from vpnsim.pytest.items import ScenarioFileNode

    node: pytest.Collector = ScenarioFileNode.from_parent(parent, path=file_path)
    return node


def pytest_report_header(config: pytest.Config) -> list[str]:
    found = features.probe()
    return [
        f"vpnsim: {found.summary()}",
        f"vpnsim: implementation under test: {settings.settings_of(config).impl.label}",
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Lab tests need root: without it, one clear skip reason instead of an error cascade."""
    found = features.probe()
    if found.root and found.tun:
        return
    reason = (
        "vpnsim lab tests need root: run `sudo nox` (or `sudo pytest`)"
        if not found.root
        else "vpnsim lab tests need /dev/net/tun: `modprobe tun`"
    )
    for item in items:
        if item.get_closest_marker("lab") or LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason=reason))


def _labs_of(item: pytest.Item) -> list[Lab]:
    """The labs a test uses, through any of the plugin's fixtures."""
    from vpnsim.topology import Lab  # no pyroute2: topology loads it only to touch a lab

    found: dict[str, Lab] = {}
    for value in getattr(item, "funcargs", {}).values():
        owned = getattr(value, "lab", value)
        if isinstance(owned, Lab):
            found[owned.name] = owned
    return list(found.values())


def _start_captures(item: pytest.Item) -> list[tuple[str, Capture]]:
    from vpnsim.traffic.capture import Capture

    captures = []
    for found in _labs_of(item):
        for host in found.scenario.hosts:
            for link in found.rtnl(host.name).links():
                if link.name != "lo" and link.up:
                    label = f"{found.name}/{host.name}-{link.name}"
                    captures.append((label, Capture(found.ns(host.name), link.name, PCAP_KEEP)))
    return captures


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A tunnel program that died during a test fails that test, with the program's stderr;
    every link of the test's labs is captured, and kept as pcaps if the test fails.

    A hook, not an autouse fixture: Hypothesis refuses function-scoped fixtures.
    """
    if settings.settings_of(item.config).pcap == "failed":
        item.stash[_captures_key] = _start_captures(item)
    try:
        yield
    finally:
        for _, capture in item.stash.get(_captures_key, []):
            capture.stop()
    tunnel = getattr(item, "funcargs", {}).get("vpn_tunnel")
    if tunnel is None:
        return
    for program in (tunnel.client, tunnel.server):
        code = program.exit_code()
        if code is not None:
            failure = ProgramFailed(program, f"exited with status {code} during this test")
            pytest.fail(str(failure), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, show the tail of each tunnel program's logs and where the logs are, and
    save the captures of the test's links as pcaps."""
    report = yield
    captures = item.stash.get(_captures_key, []) if call.when == "call" else []
    if call.when == "call":
        item.stash[_captures_key] = []  # frames can be large: let them go
    tunnel = getattr(item, "funcargs", {}).get("vpn_tunnel")
    if report.failed and tunnel is not None:
        for program in (tunnel.client, tunnel.server):
            code = program.exit_code()
            if code is not None:  # said even when the test failed for another reason first
                report.sections.append(
                    (f"vpnsim {program.host}", f"{program.label}: exited with status {code}")
                )
            for path in (program.stdout_path, program.stderr_path):
                try:
                    tail = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                except FileNotFoundError:
                    continue
                report.sections.append((f"vpnsim {program.host}: {path}", "\n".join(tail)))
    if report.failed and captures:
        folder = _save_pcaps(item, captures)
        report.sections.append(("vpnsim pcaps", f"{len(captures)} links captured: {folder}"))
    return report


def _save_pcaps(item: pytest.Item, captures: list[tuple[str, Capture]]) -> Path:
    labs = _labs_of(item)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.name)[:100]
    folder = labs[0].log_dir.parent / "pcaps" / safe
    for label, capture in captures:
        capture.save(folder / f"{label.replace('/', '-')}.pcap")
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """Fail the run if any lab it built left a namespace or a process behind.

    A wrapper, checking after every other sessionfinish: on Ctrl-C, pytest's own tears the
    interrupted test's fixtures down there, and a check before it would see a false leak.
    """
    yield
    from vpnsim.leaks import leftovers

    left = leftovers(settings.registered_labs(session.config))
    if left:
        session.config.get_terminal_writer().line(f"vpnsim: LEAKED after the run: {left}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
