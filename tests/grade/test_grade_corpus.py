"""`vpnsim grade` end to end on a corpus of real student-style submissions.

tests/data/submissions holds a correct solution and one folder per common mistake (and
hostile programs: a fork bomb, a hang, a flood, deleted interfaces, escape attempts), with
the verdicts each must get in EXPECTED.toml. The corpus is graded as a course would be on
two machines: two shards at once, merged into one report, then checked verdict by verdict.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from vpnsim.grade.tasks import TASK_IDS
from vpnsim.leaks import labs_logging_under

pytestmark = pytest.mark.grade

CORPUS = Path(__file__).parents[1] / "data" / "submissions"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "EXPECTED.toml").read_text())
WORK_ROOT = Path("/var/lib/vpnsim/grade")
ESCAPE_FILES = (Path("/etc/vpnsim-pwned"), Path("/root/vpnsim-pwned"), Path("/tmp/vpnsim-pwned"))

# What a failing task's reason must say (a student acts on it), by submission and task.
REASONS = {
    "classic": {
        "robust": 'your server exited with status 1: File "tun_server.py", line 38, in <module>: '
        "os.write(tun, data)\nOSError: [Errno 22] Invalid argument"
    },
    "no_client_route": {
        "task3": "no route to 192.168.60.0/24 into the TUN on U",
        "client_interop": "no route to 192.168.60.0/24 into the TUN on U",
    },
    "client_reads_1000": {"large": "packets longer than 1000 bytes are cut to 1000 by your client"},
    "server_never_reads_tun": {
        "task5": "your server never reads its TUN: requests reach V, replies stop at the server",
        "server_interop": "your server never reads its TUN",
    },
    "server_crashes": {"task4": "your server exited with status 1"},
    "client_no_tun": {
        "task2": "your client created no TUN: it waits in recvfrom() for input that nothing "
        "sends it"
    },
    "wrong_tun_address": {"task2": "has 192.168.53.100/24; it needs 192.168.53.99/24"},
    "tun_down": {"task2": "is down: bring it up"},
    "wrong_port": {"task3": "to UDP port 9091; the server listens on 9090"},
    "server_disables_forwarding": {"task4": "ip_forward is off on server"},
    "hostile_deletes_interfaces": {
        "task4": "the lab's interfaces were deleted during the run: server lost eth0, eth1"
    },
    "hostile_fork_bomb": {"task3": "os.fork()"},
    "syntax_error": {"task2": "SyntaxError"},
    "hostile_runs_grader_tunnel": {
        "task2": "your client exited with status 1: python3: Error while finding module "
        "specification for 'vpnsim.tunnel' (ModuleNotFoundError: No module named 'vpnsim')",
        "server_interop": "your server exited with status 1: python3: Error while finding "
        "module specification for 'vpnsim.tunnel' (ModuleNotFoundError: No module named "
        "'vpnsim')",
    },
    "cheat_server_answers_for_v": {
        "task4": "answered by the server itself: V's link saw nothing (192.168.60.5 is an "
        "address of the server, on lo)",
        "server_interop": "answered by the server itself: V's link saw nothing",
    },
    "cheat_client_routes_around": {
        "task3": "the ping left U in clear on eth0, not inside UDP to 10.9.0.11:9090: U routes "
        "192.168.60.5 via 10.9.0.11 dev eth0, not into detour0",
        "client_interop": "the ping left U in clear on eth0, not inside UDP to 10.9.0.11:9090",
    },
    "cheat_client_answers_for_v": {
        "task3": "answered on U itself: no request left U (192.168.60.5 is an address of U, on lo)",
        "client_interop": "answered on U itself: no request left U",
    },
    "cheat_server_injects_on_eth1": {
        "task4": "the ping reached V without coming out of the server's TUN inject0 (nothing was "
        "written to it): your server sent it onto eth1 another way",
        "server_interop": "the ping reached V without coming out of the server's TUN inject0",
    },
}


# Where a failing task's ping stopped: its path as one line (the terminal summary's and the
# JUnit message's), by submission and task. The stop is where the reason says it is: the
# packet never left U, died in the server, or came back another way.
ROUND_TRIP_TO_THE_SERVER = (
    "U:kim0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:kim0 ✓ → server:eth1 ✓ → V:eth0 ✓ ↩ V:eth0 ✓ "
    "→ server:eth1 ✓ → server:kim0 ✓ → server:eth0 ✗"
)
PATHS = {
    "cheat_client_answers_for_v": {"task3": "U:mirror0 ✗"},
    "cheat_client_routes_around": {
        "task3": "U:detour0 ✗ (seen after it: V:eth0 (reply), server:eth1 (reply))"
    },
    "no_client_route": {"task3": "U:garcia0 ✗"},
    "wrong_port": {"task3": "U:ivanov0 ✓ → U:eth0 ✗"},
    "server_crashes": {"task4": "U:mueller0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:mueller0 ✗"},
    "server_disables_forwarding": {
        "task4": "U:okafor0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:okafor0 ✓ → server:eth1 ✗"
    },
    "cheat_server_injects_on_eth1": {
        "task4": "U:nguyen0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:inject0 ✗ (seen after it: "
        "server:eth1, V:eth0, V:eth0 (reply), server:eth1 (reply), server:inject0 (reply), "
        "server:eth0 (reply), U:eth0 (reply), U:nguyen0 (reply))"
    },
    "server_never_reads_tun": {"task5": ROUND_TRIP_TO_THE_SERVER},
}


def _vpnsim(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpnsim", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The corpus graded as two shards at once, then merged: (output folder, JSON report)."""
    out = tmp_path_factory.mktemp("grade")

    def shard(index: int) -> subprocess.CompletedProcess[str]:
        where = out / f"shard{index}"
        return _vpnsim(
            "grade", CORPUS, "--shard", f"{index}/2", "--out", where, "--json",
            where / "report.json", "--progress", "lines", "--timeout", "60",
        )  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        shards = list(pool.map(shard, (1, 2)))
    for done in shards:
        assert done.returncode == 0, done.stderr
    merged = _vpnsim(
        "grade", "merge", out / "shard1" / "report.json", out / "shard2" / "report.json",
        "--out", out / "all", "--json", out / "all" / "report.json",
        "--junit", out / "all" / "junit.xml", "--html", out / "all" / "index.html",
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    (out / "all" / "summary.txt").write_text(merged.stdout)
    return out, json.loads((out / "all" / "report.json").read_text())


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(sub["path"]).name: sub for sub in report["submissions"]}


def test_every_folder_of_the_corpus_is_graded_once(graded: tuple[Path, dict[str, Any]]) -> None:
    _, report = graded
    assert sorted(_by_name(report)) == sorted(EXPECTED)
    assert len(report["submissions"]) == len(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_submission_gets_exactly_the_expected_verdicts(
    graded: tuple[Path, dict[str, Any]], name: str
) -> None:
    _, report = graded
    sub = _by_name(report)[name]
    expected = {t: _verdict(EXPECTED[name][t]) for t in TASK_IDS}
    got = {t: sub["tasks"][t]["passed"] for t in TASK_IDS}
    reasons = {t: sub["tasks"][t]["reason"] for t in TASK_IDS if got[t] is not True}
    assert got == expected, f"{name}: {EXPECTED[name]['why']}\nreasons: {reasons}"
    points = report["rubric"]["points"]
    assert sub["score"] == sum(points[t] for t in TASK_IDS if expected[t] is True)


def _verdict(value: bool | str) -> bool | None:
    return None if value == "not reached" else bool(value)


@pytest.mark.parametrize(
    ("name", "task"), [(name, task) for name, tasks in REASONS.items() for task in tasks]
)
def test_a_failing_task_says_what_to_fix(
    graded: tuple[Path, dict[str, Any]], name: str, task: str
) -> None:
    _, report = graded
    reason = _by_name(report)[name]["tasks"][task]["reason"]
    assert REASONS[name][task] in reason


@pytest.mark.parametrize(
    ("name", "task"), [(name, task) for name, tasks in PATHS.items() for task in tasks]
)
def test_a_failing_task_shows_where_its_ping_stopped(
    graded: tuple[Path, dict[str, Any]], name: str, task: str
) -> None:
    from vpnsim.grade.path import PacketPath

    out, report = graded
    sub = _by_name(report)[name]
    verdict = sub["tasks"][task]
    path = PacketPath.from_dict(verdict["path"])
    assert path.line() == PATHS[name][task]
    assert path.stop is not None and verdict["reason"].startswith(path.reason)
    # The terminal summary and the JUnit message say the same.
    summary = (out / "all" / "summary.txt").read_text().splitlines()
    assert f"  {task}: {PATHS[name][task]}" in summary
    root = ET.parse(out / "all" / "junit.xml").getroot()
    suite = next(s for s in root.iter("testsuite") if s.get("name") == sub["name"])
    case = next(c for c in suite.iter("testcase") if c.get("name", "").startswith(f"{task}:"))
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == f"{verdict['reason']} [path: {PATHS[name][task]}]"
    # The page draws it, the stop marked.
    page = (out / "all" / "index-submissions" / f"{sub['name']}.html").read_text()
    section = page.split(f'id="task-{task}"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'<svg class="packet-path"[^>]* data-stop="(\d+)"', section) == [
        str(path.stop)
    ]
    assert re.findall(r'<g class="hop [^"]*\bstop" data-index="(\d+)"', section) == [str(path.stop)]


def test_every_ping_of_a_correct_submission_made_its_way(
    graded: tuple[Path, dict[str, Any]],
) -> None:
    tasks = _by_name(graded[1])["correct"]["tasks"]
    traced = {task for task, verdict in tasks.items() if verdict["path"] is not None}
    assert traced == {
        "task3", "task4", "task5", "large", "task7", "robust", "client_interop", "server_interop",
    }  # fmt: skip
    for task in traced:
        path = tasks[task]["path"]
        assert path["stop"] is None and path["reason"] == "", task
        assert [h["state"] for h in path["hops"][: path["required"]]] == ["seen"] * (
            3 if task == "task3" else 7 if task == "task4" else 12
        ), task


def test_a_task_after_a_failed_one_is_not_reached_with_its_reason(
    graded: tuple[Path, dict[str, Any]],
) -> None:
    _, report = graded
    tasks = _by_name(report)["tun_down"]["tasks"]
    assert tasks["task3"]["passed"] is None
    assert tasks["task2"]["reason"] == (
        "the client's TUN silva0 is down: bring it up (ip link set dev silva0 up)"
    )
    # the cause's headline, not its whole reason
    assert tasks["task3"]["reason"] == (
        "needs task2 (TUN interface), which failed: the client's TUN silva0 is down"
    )
    assert tasks["task6"]["reason"] == tasks["task3"]["reason"]  # the root cause, not a chain


def test_evidence_is_stored_beside_the_report(graded: tuple[Path, dict[str, Any]]) -> None:
    out, report = graded
    sub = _by_name(report)["server_never_reads_tun"]
    folder = out / "all" / sub["artifacts"]
    task5 = sub["tasks"]["task5"]
    for relative in task5["evidence"]:
        assert (folder / relative).is_file(), relative
    names = {Path(e).name for e in task5["evidence"]}
    assert {"U-eth0.pcap", "server-eth0.pcap", "server-eth1.pcap", "V-eth0.pcap"} <= names
    assert {"hosts.txt", "log.txt", "server.err", "client.out"} <= names
    hosts = (folder / "pair" / "task5" / "hosts.txt").read_text()
    assert "route 192.168.60.0/24 dev" in hosts and "net.ipv4.ip_forward = 1" in hosts
    assert any(line.startswith("$ ping from U to 192.168.60.5") for line in task5["log"])
    pcap = folder / "pair" / "task5" / "V-eth0.pcap"
    dump = subprocess.run(
        ["tcpdump", "-n", "-r", str(pcap)], capture_output=True, text=True, check=True
    ).stdout
    assert "192.168.53.99 > 192.168.60.5: ICMP echo request" in dump
    assert "192.168.60.5 > 192.168.53.99: ICMP echo reply" in dump


def test_junit_and_html_reports_cover_every_task(graded: tuple[Path, dict[str, Any]]) -> None:
    out, report = graded
    root = ET.parse(out / "all" / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(EXPECTED) * len(TASK_IDS)
    failed = sum(
        1 for s in report["submissions"] for v in s["tasks"].values() if v["passed"] is False
    )
    assert int(root.get("failures", "-1")) == failed
    html = (out / "all" / "index.html").read_text()
    assert all(name in html for name in EXPECTED)


def test_hostile_programs_touch_nothing_outside_their_lab(
    graded: tuple[Path, dict[str, Any]],
) -> None:
    # Only what this run made: other runs (a grader, another test session, another xdist
    # worker) may have labs, work copies and leftovers of their own on this machine.
    out, report = graded
    # This session's start, as a wall-clock time: what changed before it is not this run's.
    since_boot = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot / os.sysconf("SC_CLK_TCK")
    started = time.time() - age
    assert [p for p in ESCAPE_FILES if p.exists() and p.stat().st_ctime >= started] == []
    # This run's labs keep their logs under its --out folders; a lab has state until it
    # is entirely gone.
    assert labs_logging_under(out) == []

    # This run's work copies: WORK_ROOT/<submission>-<token>[.<grader pid>], made during this
    # session. This run's graders have exited, each after unmounting its copy's tmpfs: a
    # copy still mounted, or named after a live grader, is another run's, in use.
    def grader_running(copy: Path) -> bool:
        pid = copy.name.rpartition(".")[2]
        return copy.is_mount() or (pid.isdigit() and Path(f"/proc/{pid}").exists())

    ours = {sub["name"][:40] for sub in report["submissions"]}
    copies = sorted(WORK_ROOT.glob("*-*")) if WORK_ROOT.is_dir() else []
    assert [
        copy.name
        for copy in copies
        if copy.name.rsplit("-", 1)[0] in ours
        and copy.stat().st_ctime >= started
        and not grader_running(copy)
    ] == []


def test_the_same_submissions_graded_again_in_parallel_get_the_same_verdicts(
    graded: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from vpnsim.grade.course import grade_course
    from vpnsim.grade.grader import GradeOptions
    from vpnsim.grade.rubric import load_rubric

    _, report = graded
    again = ["classic", "client_reads_1000", "server_never_reads_tun", "hostile_flood"]
    options = GradeOptions(load_rubric(), tmp_path / "artifacts", tmp_path, timeout=60)
    second = grade_course([CORPUS / name for name in again], options, jobs=2)
    first = _by_name(report)
    for sub in second.submissions:
        before = first[Path(sub.path).name]["tasks"]
        assert {t: (v.passed, v.reason) for t, v in sub.tasks.items()} == {
            t: (v["passed"], v["reason"]) for t, v in before.items()
        }, sub.name
        # ... and their pings went the same way (the paths, hop by hop)
        assert {t: v.path.to_dict() if v.path else None for t, v in sub.tasks.items()} == {
            t: v["path"] for t, v in before.items()
        }, sub.name


def _pair_log(graded: tuple[Path, dict[str, Any]], name: str, log: str) -> Path:
    out, report = graded
    return out / "all" / _by_name(report)[name]["artifacts"] / "pair" / "logs" / log


def test_a_root_program_cannot_reach_past_its_lab_host(
    graded: tuple[Path, dict[str, Any]],
) -> None:
    # The first line of the client's stderr: what each attempt got (escape_attempts.py).
    err = _pair_log(graded, "hostile_reaches_out", "client.err").read_text()
    attempts = json.loads(err.splitlines()[0])
    expected = EXPECTED["hostile_reaches_out"]
    assert {k: v for k, v in attempts.items() if k != "root"} == expected["attempts"]
    assert set(expected["root"]["shows"]) <= set(attempts["root"])
    assert not set(expected["root"]["hides"]) & set(attempts["root"])


def test_a_program_sees_no_other_submission(graded: tuple[Path, dict[str, Any]]) -> None:
    err = _pair_log(graded, "hostile_snoops", "client.err").read_text()
    assert err.splitlines()[0] == "snooped: []"


def test_the_work_copy_has_a_quota_and_logs_are_cut(graded: tuple[Path, dict[str, Any]]) -> None:
    from vpnsim.grade.jail import JailLimits

    err = _pair_log(graded, "hostile_fills_disk_and_log", "client.err").read_text()
    assert err.splitlines()[0] == "ballast stopped: No space left on device"
    out = _pair_log(graded, "hostile_fills_disk_and_log", "client.out").read_bytes()
    marker = f"\n[vpnsim: output cut here, after {JailLimits.log_bytes} bytes]\n".encode()
    assert len(out) == JailLimits.log_bytes + len(marker)
    assert out.endswith(marker)


def test_the_flood_is_cut_by_the_bandwidth_caps_and_the_probes_pass_theirs(
    graded: tuple[Path, dict[str, Any]],
) -> None:
    """hostile_flood got its expected verdicts (above) with the caps in place: read back
    from the kernel at the end of each run (bandwidth.json), the server's port dropped the
    junk in the student class and passed the tunnel's datagrams in their own."""
    out, report = graded
    sub = _by_name(report)["hostile_flood"]
    assert sub["limits"].endswith(
        "; bandwidth: htb per graded link, tunnel 20 Mbit/s, student 10 Mbit/s"
    )
    for run in ("pair", "client_interop"):  # the runs with the student's (flooding) client
        caps = json.loads((out / "all" / sub["artifacts"] / run / "bandwidth.json").read_text())
        assert sorted(caps) == ["U:eth0", "V2:eth0", "V:eth0", "server:eth0", "server:eth1"]
        assert {port: reading["kind"] for port, reading in caps.items()} == dict.fromkeys(
            caps, "htb"
        )
        server = caps["server:eth0"]["classes"]
        assert (server["student"]["rate"], server["student"]["ceil"]) == (10**7, 10**7)
        assert (server["tunnel"]["rate"], server["tunnel"]["ceil"]) == (2 * 10**7, 2 * 10**7)
        assert server["student"]["dropped"] > 0, run  # the flood, cut at 10 Mbit/s
        assert server["tunnel"]["packets"] > 0, run  # the probes, inside the tunnel
        assert server["tunnel"]["dropped"] == 0, run
