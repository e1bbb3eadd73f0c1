"""A task's packet path as every writer renders it: the SVG picture (`path_svg`), the HTML
page's figure, the JUnit message and the terminal summary's line, all from one PacketPath."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from contextlib import redirect_stdout
from pathlib import Path

from vpnsim.grade.cli import _summary
from vpnsim.grade.html import NO_PATH, write_html
from vpnsim.grade.junit import failure_message, write_junit
from vpnsim.grade.path import NOT_LOOKED_AT, NOT_SEEN, SEEN, Hop, PacketPath, build_path
from vpnsim.grade.path_svg import MAX_LINES, path_svg, reason_lines
from vpnsim.grade.progress import path_lines
from vpnsim.grade.report import GradeReport, SubmissionResult
from vpnsim.grade.rubric import load_rubric
from vpnsim.grade.tasks import TASK_IDS, Verdict

PROBE = "64-byte ping from U to 192.168.60.5"
POINTS = ("U-tun", "U-eth0", "server-eth0", "server-tun", "server-eth1", "V-eth0")
ROUTE = [(p, "out") for p in POINTS] + [(p, "back") for p in reversed(POINTS)]
REASON = "your server never reads its TUN: requests reach V, replies stop at the server"
EVIL_TUN = '<i>&"x'  # a TUN name is the program's: Linux allows these characters


def _path(seen: int, reason: str | None = REASON, server_tun: str = "tun1") -> PacketPath:
    """The first `seen` hops seen, the rest not; stopped at the first unseen if `reason`."""
    hops = [(point, leg, i < seen) for i, (point, leg) in enumerate(ROUTE)]
    names = {"U": "tun0", "server": server_tun}
    return build_path(PROBE, hops, 12, reason, names, {"U-tun", "server-tun"})


def _svg(path: PacketPath) -> ET.Element:
    return ET.fromstring(path_svg(path))


def _hops(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter("g") if "hop" in g.get("class", "").split()]


def test_the_picture_marks_every_hop_as_the_path_says() -> None:
    path = _path(9)
    svg = _svg(path)
    assert svg.tag == "svg" and svg.get("class") == "packet-path"
    assert svg.get("data-stop") == "9"
    hops = _hops(svg)
    assert [(g.get("data-index"), g.get("data-point"), g.get("data-leg"), g.get("data-state"))
            for g in hops] == [
        (str(i), h.point, h.leg, h.state) for i, h in enumerate(path.hops)
    ]  # fmt: skip
    assert [g.get("class") for g in hops] == [
        *["hop seen"] * 9, "hop not-seen stop", "hop not-seen", "hop not-seen"
    ]  # fmt: skip
    assert [g.findtext("text") for g in hops] == [*"✓" * 9, *"✗" * 3]
    stop = hops[9]
    assert stop.findtext("title") == ("server:eth0 (the reply): not seen: the packet stopped here")
    assert len(stop.findall("circle")) == 2  # the hop and its ring


def test_the_reason_is_beside_the_stopping_hop() -> None:
    svg = _svg(_path(9))
    reason = next(g for g in svg.iter("g") if g.get("class") == "stop-reason")
    texts = [t.text for t in reason.iter("text")]
    assert texts == ["Stopped at server:eth0 (the reply):", REASON]
    callout = next(line for line in svg.iter("line") if line.get("class") == "callout")
    hop = _hops(svg)[9].find("circle")
    assert hop is not None
    assert callout.get("x1") == callout.get("x2") == hop.get("cx")
    rect = reason.find("rect")
    assert rect is not None and callout.get("y2") == rect.get("y")


def test_devices_carry_their_real_names() -> None:
    svg = _svg(_path(3, server_tun="detour0"))
    devices = [t.text for t in svg.iter("text") if t.get("class") == "device"]
    assert devices == ["tun0", "eth0", "eth0", "detour0", "eth1", "eth0"]
    hosts = [g.get("data-host") for g in svg.iter("g") if g.get("class") == "host"]
    assert hosts == ["U", "server", "V"]


def test_a_path_that_made_it_has_no_stop() -> None:
    svg = _svg(_path(12, None))
    assert svg.get("data-stop") is None
    assert not [g for g in _hops(svg) if "stop" in g.get("class", "")]
    assert not [g for g in svg.iter("g") if g.get("class") == "stop-reason"]
    made = [t.text for t in svg.iter("text") if t.get("class") == "made-it"]
    assert made == ["The ping made the way this task needs."]
    steps = [line.get("class") for line in svg.iter("line") if "step" in line.get("class", "")]
    assert steps == ["step"] * 11  # every arrow green


def test_hops_beyond_the_task_are_faded() -> None:
    hops = [(point, leg, True) for point, leg in ROUTE]
    path = build_path(PROBE, hops, 3, None, {"U": "tun0", "server": "tun1"}, {"U-tun"})
    classes = [g.get("class") for g in _hops(_svg(path))]
    assert classes[:3] == ["hop seen"] * 3
    assert classes[3] == "hop not-looked-at beyond"  # the server's TUN was not captured
    assert classes[4:] == [
        *["hop seen beyond"] * 4,
        "hop not-looked-at beyond",
        *["hop seen beyond"] * 3,
    ]
    assert [g.findtext("text") for g in _hops(_svg(path))][3] == "?"


def test_names_and_reasons_are_escaped() -> None:
    reason = "</text><script>alert(1)</script> & \x1b[31mred\x00"
    path = _path(3, reason, server_tun=EVIL_TUN)
    raw = path_svg(path)
    assert "<script>" not in raw and "<i>" not in raw
    assert '&lt;i&gt;&amp;"x' in raw or "&lt;i&gt;&amp;&quot;x" in raw
    svg = ET.fromstring(raw)  # well-formed XML: nothing XML forbids is left raw
    devices = [t.text for t in svg.iter("text") if t.get("class") == "device"]
    assert devices[3] == EVIL_TUN
    lines = [t.text for t in svg.iter("text") if t.get("class") == "line"]
    assert lines == ["</text><script>alert(1)</script> & \\x1b[31mred\\x00"]


def test_the_picture_is_deterministic_and_self_contained() -> None:
    assert path_svg(_path(5)) == path_svg(_path(5))
    raw = path_svg(_path(5))
    assert not re.search(r"https?://|url\(|href|\bid=", raw)


def test_a_long_reason_is_cut_to_a_few_lines() -> None:
    long = "word " * 300 + "\nsecond paragraph"
    lines = reason_lines(long)
    assert len(lines) == MAX_LINES
    assert lines[-1] == "… (the whole reason is above)"
    assert all(len(line) <= 100 for line in lines)
    assert reason_lines("a\n\nb") == ["a", "", "b"]


# -- the writers ----------------------------------------------------------------------------

LINE = (
    "U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun1 ✓ → server:eth1 ✓ → V:eth0 ✓ ↩ "
    "V:eth0 ✓ → server:eth1 ✓ → server:tun1 ✓ → server:eth0 ✗"
)


def _report(tmp_path: Path) -> GradeReport:
    tasks = {t: Verdict(None, "needs task5") for t in TASK_IDS}
    tasks.update(
        task1=Verdict(True, "U reaches the server"),
        task2=Verdict(False, "the client's TUN silva0 is down"),
        task3=Verdict(True, "arrived", ("$ ping",), path=_path(12, None)),
        task5=Verdict(False, REASON, ("$ ping", "  no reply"), path=_path(9)),
    )
    sub = SubmissionResult("/s/bob", "bob", tasks, 10, 100, "artifacts/bob", 1.0)
    return GradeReport("tunnel", load_rubric(), [sub])


def test_the_terminal_summary_has_a_line_per_failed_task_with_a_path(tmp_path: Path) -> None:
    report = _report(tmp_path)
    assert path_lines(report.submissions[0].tasks) == [f"  task5: {LINE}"]
    out = io.StringIO()
    with redirect_stdout(out):
        _summary(report)
    assert out.getvalue() == f"bob         ✓✗✓-✗------  10/100\n  task5: {LINE}\n"


def test_the_junit_message_ends_with_the_path(tmp_path: Path) -> None:
    report = _report(tmp_path)
    task5 = report.submissions[0].tasks["task5"]
    assert failure_message(task5) == f"{REASON} [path: {LINE}]"
    write_junit(report, tmp_path / "junit.xml")
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall(".//testcase")
    failure = cases[TASK_IDS.index("task5")].find("failure")
    assert failure is not None and failure.get("message") == f"{REASON} [path: {LINE}]"
    assert failure.text == f"path: {LINE}\n$ ping\n  no reply"
    task2 = cases[TASK_IDS.index("task2")].find("failure")
    assert task2 is not None and task2.get("message") == "the client's TUN silva0 is down"
    passed = cases[TASK_IDS.index("task3")].findtext("system-out")
    assert passed == (
        "path: U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun1 ✓ → server:eth1 ✓ → V:eth0 ✓ "
        "↩ V:eth0 ✓ → server:eth1 ✓ → server:tun1 ✓ → server:eth0 ✓ → U:eth0 ✓ → U:tun0 ✓\n"
        "$ ping"
    )


def test_the_html_page_holds_the_picture_and_its_line(tmp_path: Path) -> None:
    report = _report(tmp_path)
    page = write_html(report, tmp_path / "index.html", tmp_path)[1].read_text()
    section = page.split('id="task-task5"', 1)[1].split("</section>", 1)[0]
    svg = path_svg(report.submissions[0].tasks["task5"].path)  # type: ignore[arg-type]
    assert svg in section
    assert f'<code class="path-line">{LINE}</code>' in section
    assert "Path of the 64-byte ping from U to 192.168.60.5" in section
    task2 = page.split('id="task-task2"', 1)[1].split("</section>", 1)[0]
    assert "<svg" not in task2 and f'<p class="no-path">{NO_PATH}</p>' in task2
    task1 = page.split('id="task-task1"', 1)[1].split("</section>", 1)[0]
    assert "<svg" not in task1 and "no-path" not in task1  # passed: nothing to explain
    assert page.count("<svg") == 2  # task3 and task5


def test_hop_accessors() -> None:
    hop = Hop("server-tun", "tun1", "back", NOT_SEEN)
    assert (hop.host, hop.label, hop.mark) == ("server", "server:tun1", "✗")
    assert Hop("U-tun", "tun0", "out", SEEN).mark == "✓"
    assert Hop("U-tun", "TUN", "out", NOT_LOOKED_AT).mark == "?"
