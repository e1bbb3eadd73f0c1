"""pytest plugin: SEED lab fixtures, the `--vpn-impl` option, a report header, leak checks.

Registered with the `pytest11` entry point. Labs are module-scoped so Hypothesis examples
reuse one lab; every lab the session builds is torn down and checked for leaks at the end.

Choosing the implementation under test (first found wins):
  --vpn-impl VALUE (repeatable)  >  VPNSIM_VPN_IMPL env var  >  `vpn_impl` ini key  >  reference
VALUE is `reference`, a folder with tun_client.py and tun_server.py, or client=CMD / server=CMD.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vpnsim import features
from vpnsim.errors import HarnessError
from vpnsim.impl import ImplementationError, TunnelImpl
from vpnsim.proc import ProgramFailed

# The lab side (pyroute2) loads only when a lab fixture is used: the plugin is registered in
# every pytest run where vpnsim is installed, and most of those never build a lab.
if TYPE_CHECKING:
    from vpnsim.impair.link import ImpairedLink
    from vpnsim.topology import Lab
    from vpnsim.traffic.capture import Capture
    from vpnsim.traffic.probes import Probes
    from vpnsim.vpn import RunningTunnel

try:  # hypothesis is a test extra; the plugin also loads in environments without it
    from hypothesis import HealthCheck, settings

    # Selected explicitly by nox (--hypothesis-profile=ci): same examples every run, no
    # per-example deadline (the first packet through a fresh tunnel may take milliseconds).
    settings.register_profile(
        "ci",
        derandomize=True,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
except ImportError:  # pragma: no cover
    pass

LAB_FIXTURES = {"vpnsim_labs", "seed_lab", "vpn_tunnel", "probes", "tunnel_wire"}
LOG_TAIL_LINES = 20
ENV_IMPL = "VPNSIM_VPN_IMPL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vpnsim", "vpnsim: VPN labs in network namespaces")
    group.addoption(
        "--vpn-impl",
        action="append",
        default=None,
        metavar="VALUE",
        help="tunnel implementation under test: 'reference' (default), a folder with "
        "tun_client.py and tun_server.py, or client=CMD / server=CMD (repeatable). "
        f"Also: env {ENV_IMPL}, ini vpn_impl.",
    )
    parser.addini("vpn_impl", "default tunnel implementation under test", default="reference")
    group.addoption(
        "--vpn-probe-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a probe waits for its answer (default 2; ini vpn_probe_timeout)",
    )
    parser.addini("vpn_probe_timeout", "seconds a probe waits for its answer", default="2")
    group.addoption(
        "--vpn-pcap",
        choices=("failed", "off"),
        default=None,
        help="capture every link of a test's labs and keep pcaps of failing tests "
        "(default failed; ini vpn_pcap)",
    )
    parser.addini("vpn_pcap", "failed (keep pcaps of failing tests) or off", default="failed")
    parser.addini(
        "vpnsim_scenarios",
        "glob patterns (from the rootdir) of scenario files collected as tests",
        type="args",
        default=["scenarios/*.toml"],
    )


def selected_impl(config: pytest.Config) -> TunnelImpl:
    values = config.getoption("--vpn-impl")
    if not values and os.environ.get(ENV_IMPL):
        values = shlex.split(os.environ[ENV_IMPL])
    if not values:
        values = shlex.split(str(config.getini("vpn_impl")))
    return TunnelImpl.parse(values)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs root; builds network namespaces")
    try:
        config.stash[_impl_key] = selected_impl(config)
    except ImplementationError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_labs_key] = []


_impl_key = pytest.StashKey[TunnelImpl]()
_labs_key = pytest.StashKey[list[str]]()


def selected_impl_of(config: pytest.Config) -> TunnelImpl:
    """The implementation under test, as parsed at configure time."""
    return config.stash[_impl_key]


def lab_registry(config: pytest.Config) -> list[str]:
    """Names of every lab this session built: checked for leaks at its end."""
    return config.stash[_labs_key]


def probe_timeout(config: pytest.Config) -> float:
    given = config.getoption("--vpn-probe-timeout")
    return float(given) if given else float(config.getini("vpn_probe_timeout"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Scenario files matching the `vpnsim_scenarios` patterns: one item per check."""
    if file_path.suffix != ".toml":
        return None
    root = parent.config.rootpath
    patterns = parent.config.getini("vpnsim_scenarios")
    if not any(file_path.match(str(root / pattern)) for pattern in patterns):
        return None
    from vpnsim.pytest_scenarios import ScenarioFileNode

    node: pytest.Collector = ScenarioFileNode.from_parent(parent, path=file_path)
    return node


def pytest_report_header(config: pytest.Config) -> list[str]:
    found = features.probe()
    return [
        f"vpnsim: {found.summary()}",
        f"vpnsim: implementation under test: {config.stash[_impl_key].label}",
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


class LabFactory:
    """Builds labs for tests and tears every one of them down, with logs under tmp."""

    def __init__(self, base: Path, registry: list[str]) -> None:
        self._base = base
        self._registry = registry
        self._labs: list[Lab] = []

    def build(
        self, scenario_name: str = "seed-tunnel", confined: frozenset[str] = frozenset()
    ) -> Lab:
        """A lab of the shipped scenario; `confined` hosts as `build_lab` makes them."""
        from vpnsim.seed import builtin_scenario
        from vpnsim.topology import build_lab, new_lab_name

        scenario = builtin_scenario(scenario_name)
        name = new_lab_name("pt")
        self._registry.append(name)
        try:
            lab = build_lab(
                scenario, name=name, log_dir=self._base / name, owner_pid=os.getpid(),
                confined=confined,
            )  # fmt: skip
        except HarnessError as exc:
            pytest.fail(str(exc), pytrace=False)
        self._labs.append(lab)
        return lab

    def teardown_all(self) -> None:
        while self._labs:
            self._labs.pop().teardown()


@pytest.fixture(scope="session")
def vpnsim_labs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabFactory]:
    """Session-wide lab builder; its labs' logs and captures are kept under pytest's tmp."""
    factory = LabFactory(tmp_path_factory.mktemp("vpnsim"), request.config.stash[_labs_key])
    yield factory
    factory.teardown_all()


@pytest.fixture(scope="module")
def seed_lab(vpnsim_labs: LabFactory) -> Iterator[Lab]:
    """The SEED tunneling lab (U, server, V, V2) with no tunnel running."""
    lab = vpnsim_labs.build()
    yield lab
    lab.teardown()


@pytest.fixture(scope="module")
def vpn_tunnel(request: pytest.FixtureRequest, vpnsim_labs: LabFactory) -> Iterator[RunningTunnel]:
    """A SEED lab of its own with the implementation under test running on U and server."""
    from vpnsim.vpn import start_tunnel

    lab = vpnsim_labs.build()
    try:
        try:
            tunnel = start_tunnel(lab, request.config.stash[_impl_key])
        except ProgramFailed as exc:  # a finding about the implementation, not a harness error
            pytest.fail(str(exc), pytrace=False)
        yield tunnel
    finally:
        lab.teardown()


@pytest.fixture(scope="module")
def probes(request: pytest.FixtureRequest, vpn_tunnel: RunningTunnel) -> Iterator[Probes]:
    """Probes (ICMP, UDP, TCP, evidence) on the `vpn_tunnel` lab's hosts, by host name."""
    from vpnsim.traffic.probes import Probes

    found = Probes(vpn_tunnel.lab, vpn_tunnel, probe_timeout(request.config))
    yield found
    found.close()


@pytest.fixture(scope="module")
def tunnel_wire(vpn_tunnel: RunningTunnel) -> Iterator[ImpairedLink]:
    """A seeded wire (clean to start with) on the client's outer link of the `vpn_tunnel`
    lab, U:eth0 in the SEED lab: `tunnel_wire.set(Impairment(...))` per example."""
    from vpnsim.impair.link import client_outer_link, impair
    from vpnsim.traffic.icmp import ping

    lab = vpn_tunnel.lab
    wire = impair(lab, client_outer_link(lab))
    # Resolve the client's and the server's neighbours (ARP) now: packets sent while a
    # neighbour resolves are queued, and the kernel may send newer ones before them, so a
    # first burst would reach the wire in another order than the same burst sent later.
    ping(lab.ns(vpn_tunnel.spec.client), vpn_tunnel.spec.server_address, timeout=2.0)
    yield wire
    wire.close()


PCAP_KEEP = 10_000  # newest frames kept per link: the end of a test, where it failed
_captures_key = pytest.StashKey[list[tuple[str, "Capture"]]]()


def _labs_of(item: pytest.Item) -> list[Lab]:
    """The labs a test uses, through any of the plugin's fixtures."""
    from vpnsim.topology import Lab  # no pyroute2: topology loads it only to touch a lab

    found: dict[str, Lab] = {}
    for value in getattr(item, "funcargs", {}).values():
        lab = getattr(value, "lab", value)
        if isinstance(lab, Lab):
            found[lab.name] = lab
    return list(found.values())


def _start_captures(item: pytest.Item) -> list[tuple[str, Capture]]:
    from vpnsim.traffic.capture import Capture

    captures = []
    for lab in _labs_of(item):
        for host in lab.scenario.hosts:
            for link in lab.rtnl(host.name).links():
                if link.name != "lo" and link.up:
                    label = f"{lab.name}/{host.name}-{link.name}"
                    captures.append((label, Capture(lab.ns(host.name), link.name, PCAP_KEEP)))
    return captures


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A tunnel program that died during a test fails that test, with the program's stderr;
    every link of the test's labs is captured, and kept as pcaps if the test fails.

    A hook, not an autouse fixture: Hypothesis refuses function-scoped fixtures.
    """
    pcap = item.config.getoption("--vpn-pcap") or item.config.getini("vpn_pcap")
    if pcap == "failed":
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

    names = session.config.stash.get(_labs_key, [])
    left = leftovers(names)
    if left:
        session.config.get_terminal_writer().line(f"vpnsim: LEAKED after the run: {left}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
