"""`vpnsim grade --lab tls` end to end on a corpus of student-style TLS VPN submissions.

tests/data/tls_submissions holds a correct one (the textbook Python `ssl` style), one per
common mistake (no host name check, no certificate check, any password accepted, one client
at a time, plain TCP), and a C one with OpenSSL built by `make`; EXPECTED.toml says which
tasks each must pass. The corpus is graded two at a time, as a course would be.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from vpnsim.grade.registry import lab_tasks

pytestmark = pytest.mark.grade

CORPUS = Path(__file__).parents[1] / "data" / "tls_submissions"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "EXPECTED.toml").read_text())
TLS_TASKS = lab_tasks("tls").ids

# What a task's reason must say, by submission and task.
REASONS = {
    "correct": {
        "server_auth": "your client refused an impostor whose certificate for vpnlabserver.com "
        "comes from a CA it does not trust (it exited), and the real server reached as "
        "not-vpnlabserver.com, a name its certificate is not for (it exited)",
        "encrypted": "no probe payload crossed the outer links (U-eth0, U2-eth0, gateway-eth0) "
        "in clear; U's link carried a TLS handshake and TLS application-data records",
        "client_auth": "your server refused a wrong password (the client was told so) and "
        "accepted the right one",
    },
    "no_hostname_check": {
        "server_auth": "your client accepted the server under the name not-vpnlabserver.com, "
        "which its certificate is not for: check the host name"
    },
    "cert_none": {"server_auth": "your client accepted an impostor"},
    "any_password": {
        "client_auth": "your server accepted a wrong password: the client got a tunnel"
    },
    "one_client": {"multiple_clients": "a second client could not connect while the first one was"},
    "plaintext_tcp": {
        "encrypted": "the probes' payloads crossed U-eth0 in clear, inside TCP port 4433",
        "client_interop": "it sent no TLS handshake to TCP port 4433",
        "server_interop": "the reference client exited with status 1: client: refused",
    },
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("grade-tls")
    argv = [
        sys.executable, "-m", "vpnsim", "grade", "--lab", "tls", str(CORPUS), "--jobs", "2",
        "--out", str(out), "--json", str(out / "report.json"), "--junit", str(out / "junit.xml"),
        "--html", str(out / "index.html"), "--progress", "lines",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    return out, json.loads((out / "report.json").read_text())


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(sub["path"]).name: sub for sub in report["submissions"]}


def test_the_report_is_the_tls_labs(graded: tuple[Path, dict[str, Any]]) -> None:
    _, report = graded
    assert report["lab"] == "tls"
    assert report["tasks"] == list(TLS_TASKS)
    assert sorted(_by_name(report)) == sorted(EXPECTED)
    assert report["rubric"]["source"] == "vpnsim default (rubric-tls.toml)"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_tls_submission_gets_exactly_the_expected_verdicts(
    graded: tuple[Path, dict[str, Any]], name: str
) -> None:
    _, report = graded
    sub = _by_name(report)[name]
    assert list(sub["tasks"]) == list(TLS_TASKS)
    expected = {t: _verdict(EXPECTED[name][t]) for t in TLS_TASKS}
    got = {t: sub["tasks"][t]["passed"] for t in TLS_TASKS}
    reasons = {t: sub["tasks"][t]["reason"] for t in TLS_TASKS if got[t] is not True}
    assert got == expected, f"{name}: {EXPECTED[name]['why']}\nreasons: {reasons}"
    points = report["rubric"]["points"]
    assert sub["score"] == sum(points[t] for t in TLS_TASKS if expected[t] is True)


def _verdict(value: bool | str) -> bool | None:
    return None if value == "not reached" else bool(value)


@pytest.mark.parametrize(
    ("name", "task"), [(name, task) for name, tasks in REASONS.items() for task in tasks]
)
def test_a_tls_task_says_what_its_evidence_shows(
    graded: tuple[Path, dict[str, Any]], name: str, task: str
) -> None:
    _, report = graded
    assert REASONS[name][task] in _by_name(report)[name]["tasks"][task]["reason"]


def test_the_encrypted_task_keeps_the_outer_links_capture(
    graded: tuple[Path, dict[str, Any]],
) -> None:
    out, report = graded
    for name, encrypted in (("correct", True), ("plaintext_tcp", False)):
        sub = _by_name(report)[name]
        folder = out / sub["artifacts"]
        evidence = sub["tasks"]["encrypted"]["evidence"]
        assert "pair/encrypted/U-eth0.pcap" in evidence
        assert all((folder / relative).is_file() for relative in evidence)
        dump = subprocess.run(
            ["tcpdump", "-n", "-A", "-r", str(folder / "pair/encrypted/U-eth0.pcap")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "10.0.2.7" in dump and "10.0.2.8.4433" in dump
        # The probes' payloads ("vpnsim-tls <nonce> ...") in clear only without TLS.
        assert ("vpnsim-tls" in dump) is not encrypted, name


def test_junit_has_a_case_per_tls_task(graded: tuple[Path, dict[str, Any]]) -> None:
    out, _ = graded
    root = ET.parse(out / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(EXPECTED) * len(TLS_TASKS)
    titles = {case.get("name") for case in cases}
    assert "server_auth: Server authentication" in titles
    html = (out / "index.html").read_text()
    assert all(f">{task}</abbr>" in html for task in TLS_TASKS)
