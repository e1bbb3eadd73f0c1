"""The grade report: JSON round trip, merging shards, and the JUnit XML and HTML writers."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from vpnsim.grade.html import write_html
from vpnsim.grade.junit import safe_text, write_junit
from vpnsim.grade.report import (
    GradeReport,
    ReportError,
    SubmissionResult,
    merge_reports,
    read_report,
)
from vpnsim.grade.rubric import Rubric, load_rubric, parse_rubric
from vpnsim.grade.tasks import BY_ID, TASK_IDS, Verdict

BAD_REASON = "no UDP datagram to 9090 <script>alert(1)</script> & \"quotes\" 'too'"
BAD_LOG = ("$ ping -c1 192.168.60.5", "<b>bold</b> & more", "exit status 1")
ODD_NAME = "carol & co #1"


def _submission(
    base: Path, name: str, tasks: dict[str, Verdict], rubric: Rubric, path: str = ""
) -> SubmissionResult:
    artifacts = base / "artifacts" / name
    (artifacts / "task3").mkdir(parents=True, exist_ok=True)
    (artifacts / "task3" / "client.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")
    (artifacts / "task3" / "routes.txt").write_text("default via 10.9.0.1\n")
    return SubmissionResult(
        path=path or f"/srv/course/{name}",
        name=name,
        tasks=tasks,
        score=rubric.score(tasks),
        max_score=rubric.total,
        artifacts=f"artifacts/{name}",
        seconds=12.5,
        limits="cgroup v2: 256 MiB, 64 pids",
    )


def _report(base: Path) -> GradeReport:
    """alice passes everything, bob fails task3 (a nasty reason), carol fails task1."""
    rubric = load_rubric()
    alice = {t: Verdict(True, f"{t} works", (f"$ check {t}", "ok"), seconds=0.25) for t in TASK_IDS}
    bob = {t: Verdict(None, "needs task3 (...), which failed") for t in TASK_IDS}
    bob["task1"] = Verdict(True, "U reaches the server")
    bob["task2"] = Verdict(True, "tun0 is up")
    bob["task3"] = Verdict(
        False,
        BAD_REASON,
        BAD_LOG,
        ("task3/client.pcap", "task3/routes.txt", "task3/gone.pcap"),
        seconds=3.5,
    )
    bob["client_interop"] = Verdict(True, "ping and TCP work")
    bob["server_interop"] = Verdict(False, "the server exited", ("$ tun_server",))
    carol = {t: Verdict(None, "the lab could not be built") for t in TASK_IDS}
    carol["task1"] = Verdict(False, "U cannot reach the server")
    subs = [
        _submission(base, "alice", alice, rubric),
        _submission(base, "bob", bob, rubric),
        _submission(base, ODD_NAME, carol, rubric),
    ]
    return GradeReport("tunnel", rubric, subs)


# --- JSON ---------------------------------------------------------------------------------


def test_json_round_trip(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.shard = "2/3"
    report.write_json(tmp_path / "out" / "report.json")
    again = read_report(tmp_path / "out" / "report.json")
    assert again == report
    assert again.to_dict() == report.to_dict()
    assert again.submissions[1].tasks["task3"].log == BAD_LOG  # tuples, not lists
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.json"]  # no .tmp left


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not a vpnsim grade report"),
        ('{"format": 99}', "not a vpnsim grade report (format 1)"),
        ('{"format": 1, "lab": "tunnel"}', "not a vpnsim grade report"),
    ],
)
def test_read_report_names_the_file(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ReportError, match=re.escape(f"{path}: {why}")):
        read_report(path)


def test_read_report_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=re.escape(f"{tmp_path / 'nope.json'}: cannot read")):
        read_report(tmp_path / "nope.json")


# --- merge ----------------------------------------------------------------------------------


def _shard(base: Path, folder: str, subs: list[tuple[str, str]], rubric: Rubric) -> Path:
    """A shard report in base/folder with submissions (name, path), artifacts beside it."""
    where = base / folder
    tasks = {t: Verdict(True, "ok") for t in TASK_IDS}
    report = GradeReport(
        "tunnel", rubric, [_submission(where, n, tasks, rubric, p) for n, p in subs]
    )
    report.write_json(where / "report.json")
    return where / "report.json"


def test_merge_rebases_artifacts_and_sorts_by_path(tmp_path: Path) -> None:
    rubric = load_rubric()
    one = _shard(tmp_path, "m1/shard1", [("zed", "/c/zed"), ("amy", "/a/amy")], rubric)
    two = _shard(tmp_path, "m2/deep/shard2", [("bo", "/b/bo")], rubric)
    out = tmp_path / "merged"
    out.mkdir()
    merged = merge_reports([one, two], out)
    assert [s.path for s in merged.submissions] == ["/a/amy", "/b/bo", "/c/zed"]
    assert {s.name: s.artifacts for s in merged.submissions} == {
        "amy": "../m1/shard1/artifacts/amy",
        "bo": "../m2/deep/shard2/artifacts/bo",
        "zed": "../m1/shard1/artifacts/zed",
    }
    for sub in merged.submissions:
        assert (out / sub.artifacts / "task3" / "client.pcap").is_file()
    merged.write_json(out / "report.json")  # and the merged report reads back the same
    assert read_report(out / "report.json") == merged


def test_merge_rejects_a_submission_graded_twice(tmp_path: Path) -> None:
    rubric = load_rubric()
    one = _shard(tmp_path, "s1", [("amy", "/a/amy")], rubric)
    two = _shard(tmp_path, "s2", [("bo", "/b/bo"), ("amy", "/a/amy")], rubric)
    with pytest.raises(ReportError) as info:
        merge_reports([one, two], tmp_path)
    assert str(info.value) == f"{two}: /a/amy was graded in {one} too"


def test_merge_rejects_another_rubric_or_lab(tmp_path: Path) -> None:
    rubric = load_rubric()
    other = parse_rubric("[points]\ntask1 = 50\ntask2 = 50\n", "mine.toml")
    one = _shard(tmp_path, "s1", [("amy", "/a/amy")], rubric)
    two = _shard(tmp_path, "s2", [("bo", "/b/bo")], other)
    with pytest.raises(ReportError, match=re.escape(f"{two}: graded with another lab or rubric")):
        merge_reports([one, two], tmp_path)
    data = json.loads(two.read_text())
    data["rubric"] = rubric.to_dict()
    data["lab"] = "tap"
    two.write_text(json.dumps(data))
    with pytest.raises(ReportError, match=re.escape(f"than {one}; cannot merge")):
        merge_reports([one, two], tmp_path)


def test_merge_gives_clashing_names_suffixes(tmp_path: Path) -> None:
    rubric = load_rubric()
    one = _shard(tmp_path, "s1", [("alice", "/a/alice"), ("alice-2", "/c/alice-2")], rubric)
    two = _shard(tmp_path, "s2", [("alice", "/b/alice")], rubric)
    merged = merge_reports([one, two], tmp_path)
    names = {s.path: s.name for s in merged.submissions}
    assert names["/a/alice"] == "alice"
    assert names["/b/alice"] == "alice-2"
    assert names["/c/alice-2"] not in {"alice", "alice-2"}
    assert len(set(names.values())) == 3


def test_merge_needs_reports() -> None:
    with pytest.raises(ReportError, match="no reports given"):
        merge_reports([], Path("."))


# --- JUnit ----------------------------------------------------------------------------------


def _junit(tmp_path: Path, report: GradeReport) -> ET.Element:
    path = tmp_path / "ci" / "junit.xml"
    write_junit(report, path)
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]  # written atomically
    return ET.parse(path).getroot()


def test_junit_counts_names_and_messages(tmp_path: Path) -> None:
    root = _junit(tmp_path, _report(tmp_path))
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "33",
        "failures": "3",
        "errors": "0",
        "skipped": "16",
    }
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["alice", "bob", ODD_NAME]
    counts = [(s.get("tests"), s.get("failures"), s.get("skipped")) for s in suites]
    assert counts == [("11", "0", "0"), ("11", "2", "6"), ("11", "1", "10")]
    bob = suites[1]
    props = {p.get("name"): p.get("value") for p in bob.iter("property")}
    assert props["score"] == "20" and props["max_score"] == "100"
    assert props["path"] == "/srv/course/bob"
    cases = bob.findall("testcase")
    assert [c.get("name") for c in cases] == [f"{t}: {BY_ID[t].title}" for t in TASK_IDS]
    assert {c.get("classname") for c in cases} == {"vpnsim.grade.bob"}
    task3 = cases[TASK_IDS.index("task3")]
    assert task3.get("time") == "3.500"
    failure = task3.find("failure")
    assert failure is not None and failure.get("message") == BAD_REASON
    assert (failure.text or "").startswith("\n".join(BAD_LOG))
    assert "artifacts/bob/task3/client.pcap" in (failure.text or "")
    skipped = cases[TASK_IDS.index("task4")].find("skipped")
    assert skipped is not None and skipped.get("message") == "needs task3 (...), which failed"
    passed = cases[0]
    assert passed.find("failure") is None and passed.find("skipped") is None
    alice_case = suites[0].find("testcase")
    assert alice_case is not None
    assert alice_case.findtext("system-out") == "$ check task1\nok"


def test_junit_survives_terminal_output(tmp_path: Path) -> None:
    """Escape sequences, NULs and undecodable bytes from student programs stay readable."""
    report = _report(tmp_path)
    raw = b"\x1b[31mred\x1b[0m \x00 \xff".decode("utf-8", "surrogateescape")
    report.submissions[1].tasks["task3"] = Verdict(False, raw + "\r\nline two", (raw,))
    root = _junit(tmp_path, report)
    failure = root.findall("testsuite")[1].findall("testcase")[2].find("failure")
    assert failure is not None
    assert failure.get("message") == "\\x1b[31mred\\x1b[0m \\x00 \\xff\nline two"
    assert safe_text("ok\ttab\n") == "ok\ttab\n"


def test_junit_empty_report(tmp_path: Path) -> None:
    root = _junit(tmp_path, GradeReport("tunnel", load_rubric()))
    assert root.get("tests") == "0" and root.findall("testsuite") == []


# --- HTML -----------------------------------------------------------------------------------

VOID = {"meta", "link", "br", "img", "input", "hr", "wbr", "source", "col", "area", "base"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag:
                    found.append(child)
                found += child.all(tag)
        return found

    def one(self, tag: str, **attrs: str) -> Node:
        matches = [n for n in self.all(tag) if all(n.attrs.get(k) == v for k, v in attrs.items())]
        assert len(matches) == 1, (tag, attrs, len(matches))
        return matches[0]


class _Tree(HTMLParser):
    """A small DOM, strict about nesting: an unclosed or misclosed tag fails the test."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _parse(path: Path) -> Node:
    tree = _Tree()
    tree.feed(path.read_text(encoding="utf-8"))
    tree.close()
    assert tree.stack == [tree.root], "unclosed elements"
    return tree.root


def _target(page: Path, href: str) -> Path:
    parts = urlsplit(href)
    assert not parts.scheme and not parts.netloc, href  # relative, local
    return (page.parent / unquote(parts.path)).resolve()


@pytest.fixture
def pages(tmp_path: Path) -> list[Path]:
    site = tmp_path / "site"
    return write_html(_report(tmp_path), site / "class.html", tmp_path)


def test_html_pages_written(pages: list[Path], tmp_path: Path) -> None:
    sub_dir = tmp_path / "site" / "class-submissions"
    assert pages[0] == tmp_path / "site" / "class.html"
    assert pages[1:] == [
        sub_dir / "alice.html",
        sub_dir / "bob.html",
        sub_dir / "carol___co__1.html",
    ]
    assert all(p.is_file() for p in pages)
    assert sorted(p.name for p in sub_dir.iterdir()) == sorted(p.name for p in pages[1:])


def test_class_page_table(pages: list[Path]) -> None:
    doc = _parse(pages[0])
    html = doc.one("html")
    assert html.attrs["lang"] == "en"
    assert doc.one("title").text() == "vpnsim grade: tunnel"
    assert doc.one("h1").text() == "vpnsim grade: tunnel"
    table = doc.one("table", id="grades")
    assert table.one("caption").text()
    head = table.one("thead").all("th")
    assert [th.text() for th in head] == ["Submission", "Score", *TASK_IDS]
    assert {th.attrs["scope"] for th in head} == {"col"}
    rows = table.one("tbody").all("tr")
    assert [r.one("th").text() for r in rows] == ["alice", "bob", ODD_NAME]
    assert [r.attrs["data-score"] for r in rows] == ["100", "20", "0"]
    marks = [[td.text() for td in r.all("td")[1:]] for r in rows]
    ok, bad, no = "\u2713", "\u2717", "\u2013"
    assert marks == [
        [ok] * 11,
        [ok, ok, bad, no, no, no, no, no, no, ok, bad],
        [bad, *[no] * 10],
    ]
    assert [r.all("td")[0].text() for r in rows] == ["100 / 100", "20 / 100", "0 / 100"]
    bob_task3 = rows[1].all("td")[3]
    assert bob_task3.attrs["title"] == f"failed: {BAD_REASON}"
    assert bob_task3.attrs["class"] == "mark failed"
    assert rows[2].all("td")[2].attrs["title"] == "not reached: the lab could not be built"
    foot = [c.text() for c in table.one("tfoot").all("td")]
    assert foot == ["mean 40.0", "2 / 3", "2 / 3", *["1 / 3"] * 7, "2 / 3", "1 / 3"]


def test_class_page_links_resolve(pages: list[Path]) -> None:
    doc = _parse(pages[0])
    rows = doc.one("table", id="grades").one("tbody").all("tr")
    for row, page in zip(rows, pages[1:], strict=True):
        assert _target(pages[0], row.one("th").one("a").attrs["href"]) == page
        for td, task in zip(row.all("td")[1:], TASK_IDS, strict=True):
            href = td.one("a").attrs["href"]
            assert _target(pages[0], href) == page
            anchor = urlsplit(href).fragment
            assert anchor == f"task-{task}"
            assert _parse(page).one("section", id=anchor)


def test_submission_page(pages: list[Path], tmp_path: Path) -> None:
    bob = pages[2]
    doc = _parse(bob)
    assert doc.one("html").attrs["lang"] == "en"
    assert doc.one("h1").text() == "bob"
    assert _target(bob, doc.one("nav").one("a").attrs["href"]) == pages[0]
    facts = doc.one("dl").text()
    assert "/srv/course/bob" in facts
    assert "20 / 100 (3 of 11 tasks passed)" in facts
    assert "cgroup v2: 256 MiB, 64 pids" in facts
    sections = doc.all("section")
    assert [s.attrs["id"] for s in sections] == [f"task-{t}" for t in TASK_IDS]
    task3 = doc.one("section", id="task-task3")
    assert task3.attrs["class"] == "task failed"
    assert task3.one("h3").text() == f"task3: {BY_ID['task3'].title} \u2014 \u2717 failed"
    assert task3.one("p", **{"class": "checks"}).text() == f"Checks: {BY_ID['task3'].checks}"
    assert task3.one("p", **{"class": "reason"}).text() == f"Why it failed: {BAD_REASON}"
    assert task3.one("details").attrs.get("open") == ""  # a failure's log is open
    assert task3.one("pre").text() == "\n".join(BAD_LOG)
    links = task3.one("ul").all("a")
    assert [a.text() for a in links] == ["task3/client.pcap", "task3/routes.txt"]
    for a in links:
        assert _target(bob, a.attrs["href"]) == tmp_path / "artifacts" / "bob" / a.text()
    assert task3.one("ul").all("li")[-1].text() == "task3/gone.pcap (missing)"
    task4 = doc.one("section", id="task-task4")
    reason = task4.one("p", **{"class": "reason"}).text()
    assert reason == "Why it was not reached: needs task3 (...), which failed"
    overview = doc.one("table", **{"class": "overview"})
    assert [th.attrs["scope"] for th in overview.one("thead").all("th")] == ["col"] * 3
    assert [r.all("td")[0].text() for r in overview.one("tbody").all("tr")][:4] == [
        "\u2713 passed",
        "\u2713 passed",
        "\u2717 failed",
        "\u2013 not reached",
    ]


def test_odd_names_get_safe_pages(pages: list[Path]) -> None:
    doc = _parse(pages[3])
    assert doc.one("h1").text() == ODD_NAME
    row = _parse(pages[0]).one("table", id="grades").one("tbody").all("tr")[2]
    assert row.one("th").one("a").attrs["href"] == "class-submissions/carol___co__1.html"


def test_html_is_escaped_and_self_contained(pages: list[Path]) -> None:
    for page in pages:
        raw = page.read_text(encoding="utf-8")
        assert "<script>alert" not in raw and "<b>bold" not in raw
        doc = _parse(page)
        scripts = doc.all("script")
        assert len(scripts) == (1 if page == pages[0] else 0)  # only the sorting script
        assert all("src" not in s.attrs for s in scripts)
        for node in _every(doc):
            for name in ("src", "href", "action", "data"):
                value = node.attrs.get(name, "")
                assert not re.match(r"\s*(https?:)?//", value, re.I), (page, value)
        assert "@import" not in raw and "url(" not in raw
        assert not re.search(r"https?://", raw)
    bob = pages[2].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in bob
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in bob


def _every(node: Node) -> list[Node]:
    out: list[Node] = []
    for child in node.children:
        if isinstance(child, Node):
            out += [child, *_every(child)]
    return out


def test_html_rewrites_and_empty_report(tmp_path: Path) -> None:
    report = _report(tmp_path)
    first = write_html(report, tmp_path / "r.html", tmp_path)
    again = write_html(report, tmp_path / "r.html", tmp_path)
    assert first == again
    assert not list(tmp_path.rglob("*.tmp"))
    empty = write_html(GradeReport("tunnel", load_rubric()), tmp_path / "e.html", tmp_path)
    assert empty == [tmp_path / "e.html"]
    rows = _parse(empty[0]).one("table", id="grades").one("tbody").all("tr")
    assert rows == []
