"""nox sessions. `sudo nox` runs lint, typecheck and tests; `sudo nox -s lab` is the main job.

Namespace tests need root: run nox itself as root (`sudo nox`); each session makes its own
virtualenv and installs what it needs, Debian packages included.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "slow", "grade", "browser"]
nox.options.reuse_existing_virtualenvs = True

# Lint tools pinned exactly so a new release cannot turn a green tree red overnight.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
# Student-style programs (and `vpnsim lab exec`) call `ip`; grading needs it in every host.
# tcpdump reads back the pcap files vpnsim writes (a unit test checks they parse). gdb holds a
# jail's process at the entry of a blocking call, where a signal must not be lost.
DEBIAN_PACKAGES = {"ip": "iproute2", "tcpdump": "tcpdump", "gdb": "gdb"}
# `vpnsim bench framework` measures Mininet (Linux-bridge switches, no controller) beside vpnsim.
MININET_PACKAGES = {"mn": "mininet", "brctl": "bridge-utils"}
# The TLS grading corpus holds a C submission built with `make` against OpenSSL and libcrypt
# (a tool on PATH, or a header that the package installs).
GRADE_PACKAGES = {
    **DEBIAN_PACKAGES,
    "gcc": "gcc",
    "make": "make",
    "/usr/include/openssl/ssl.h": "libssl-dev",
    "/usr/include/crypt.h": "libcrypt-dev",
}
# The grade HTML report is opened in a real headless Chromium, driven by Selenium.
BROWSER_PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver"}
# `vpnsim bench tunnels` measures with iperf3 and ping, against OpenVPN and wireguard-go.
TUNNEL_BENCH_PACKAGES = {
    "iperf3": "iperf3",
    "ping": "iputils-ping",
    "openvpn": "openvpn",
    "wireguard-go": "wireguard-go",
    "wg": "wireguard-tools",
}


def _debian_packages(session: nox.Session, packages: dict[str, str] = DEBIAN_PACKAGES) -> None:
    missing = [pkg for need, pkg in packages.items() if not _present(need)]
    if missing:
        session.run("apt-get", "update", "-qq", external=True)
        session.run(
            "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, external=True
        )  # fmt: skip


def _tunnel_bench(session: nox.Session) -> None:
    """The tunnels side by side (`vpnsim bench tunnels`): JSON and a chart in the session dir."""
    _debian_packages(session, TUNNEL_BENCH_PACKAGES)
    session.install("-e", ".[bench]")
    session.run(
        "vpnsim", "bench", "tunnels", "--json", "bench-tunnels.json", "--png", "bench-tunnels.png",
    )  # fmt: skip


def _present(need: str) -> bool:
    """A tool on PATH, or (an absolute path) a file a package installs."""
    return Path(need).exists() if need.startswith("/") else shutil.which(need) is not None


def _pytest(session: nox.Session, marker: str, packages: dict[str, str] = DEBIAN_PACKAGES) -> None:
    _debian_packages(session, packages)
    session.install("-e", ".[test]")
    session.run(
        "pytest", "--hypothesis-profile=ci", "-p", "no:cacheprovider", "-m", marker,
        *session.posargs,
    )  # fmt: skip


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: unit tests, namespace tests, Hypothesis properties (ci profile)."""
    _pytest(session, "not slow and not browser and not grade")


@nox.session
def slow(session: nox.Session) -> None:
    """Meta tests (~1 min): the properties catch two real student bugs and shrink them exactly.
    Then the tunnel and loss properties once more through each of the reference's variants
    with a loop or wire of their own: AEAD, GSO and both (~15 s each; `tests` runs them
    through the plain reference)."""
    _pytest(session, "slow")
    properties = ("tests/properties/test_tunnel_properties.py",
                  "tests/properties/test_impaired_tunnel.py")  # fmt: skip
    for variant in ("reference-aead", "reference-gso", "reference-aead-gso"):
        session.run(
            "pytest", "--hypothesis-profile=ci", "-p", "no:cacheprovider", "-m", "lab",
            *properties, "--vpn-impl", variant,
        )  # fmt: skip


@nox.session
def grade(session: nox.Session) -> None:
    """`vpnsim grade` on the corpora of student submissions (the Tunneling lab's and the TLS
    lab's, a C one among them): exact verdicts, shards, merge."""
    _pytest(session, "grade", GRADE_PACKAGES)


@nox.session
def browser(session: nox.Session) -> None:
    """The grade HTML report in headless Chromium: rows, links, escaping, console, sorting."""
    _debian_packages(session, BROWSER_PACKAGES)
    session.install("-e", ".[test]")
    session.run(
        "pytest", "-p", "no:cacheprovider", "-m", "browser", "tests/browser", *session.posargs,
        env={"VPNSIM_BROWSER_REQUIRED": "1"},  # a missing browser fails here, never skips
    )  # fmt: skip


@nox.session
def fuzz(session: nox.Session) -> None:
    """A million random, truncated, replayed and reordered datagrams per reference-tunnel mode
    at both ends while TCP flows: no crash, no malformed TUN write, traffic still forwarded.
    `nox -s fuzz -- --count 10000` for a short run; the test suite runs a small one."""
    _debian_packages(session)
    session.install("-e", ".")
    session.run("python", "-m", "vpnsim.tunnel.fuzz", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install(MYPY, "-e", ".[test]")
    session.run("mypy", "vpnsim")


@nox.session
def lab(session: nox.Session) -> None:
    """The main job: the SEED lab up, the reference tunnel shown working, everything removed."""
    _debian_packages(session)
    session.install("-e", ".")
    session.run("vpnsim", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Start-up, teardown and probe-rate figures (a report, never a pass/fail timing), and
    the framework against Mininet in the same run (`vpnsim bench framework`)."""
    _debian_packages(session, {**DEBIAN_PACKAGES, **MININET_PACKAGES})
    session.install("-e", ".[test]")
    session.run("vpnsim", "bench", *session.posargs)
    session.run("vpnsim", "bench", "framework", "--json", "bench-framework.json")
    # Grading throughput on a mixed class (passes, a crash, a hang, a flood, ...): --jobs 1, 2
    # and 4 in one run. The student environment is built first if it is not yet.
    session.run("python", "-m", "vpnsim.grade.bench")
    _tunnel_bench(session)
