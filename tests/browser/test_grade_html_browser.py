"""The grade HTML report in a real headless Chromium, driven by Selenium over file:// URLs.

Uses Debian's chromium and chromium-driver (no browser download). `nox -s browser` installs
them and sets VPNSIM_BROWSER_REQUIRED, so there a missing browser fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from vpnsim.grade.html import write_html
from vpnsim.grade.path import PacketPath, build_path
from vpnsim.grade.report import GradeReport, SubmissionResult
from vpnsim.grade.rubric import load_rubric
from vpnsim.grade.tasks import TASK_IDS, Verdict

pytestmark = pytest.mark.browser

PWNED = "<script>window.vpnsimPwned = 1; alert(1)</script>"
BAD_REASON = f"no UDP datagram to 9090 {PWNED} & \"quotes\" 'too'"
BAD_LOG = ("$ ping -c1 192.168.60.5", '<img src=x onerror="window.vpnsimPwned = 2"> & done')
ODD_NAME = "carol & co #1"  # a folder name is not a URL: quoting and page names are tested
POINTS = ("U-tun", "U-eth0", "server-eth0", "server-tun", "server-eth1", "V-eth0")
ROUTE = [(p, "out") for p in POINTS] + [(p, "back") for p in reversed(POINTS)]
EVIL_TUN = '<img src=x onerror="window.vpnsimPwned = 3">'  # a TUN name is the program's
STOP_REASON = "your server never reads its TUN: requests reach V, replies stop at the server"
PATH_TASKS = ("task3", "task4", "task5", "large", "task7", "robust", "client_interop")


def _path(seen: int, required: int = 12, reason: str | None = None) -> PacketPath:
    """The first `seen` hops seen, the others not; `reason`: the check failed."""
    hops = [(point, leg, i < seen) for i, (point, leg) in enumerate(ROUTE)]
    names = {"U": "tun0", "server": EVIL_TUN}
    return build_path("64-byte ping from U to 192.168.60.5", hops, required, reason, names,
                      {"U-tun", "server-tun"})  # fmt: skip


def _report(base: Path) -> GradeReport:
    rubric = load_rubric()
    alice = {t: Verdict(True, f"{t} works", (f"$ check {t}", "ok")) for t in TASK_IDS}
    for task in PATH_TASKS:
        path = _path(12, 3 if task == "task3" else 12)
        alice[task] = Verdict(True, f"{task} works", (f"$ check {task}", "ok"), path=path)
    bob = {t: Verdict(None, "needs task3 (...), which failed") for t in TASK_IDS}
    bob["task1"] = Verdict(True, "U reaches the server")
    bob["task2"] = Verdict(True, "tun0 is up")
    bob["client_interop"] = Verdict(True, "ping and TCP work", path=_path(12))
    bob["task3"] = Verdict(
        False, BAD_REASON, BAD_LOG, ("task3/client.pcap", "task3/server.log", "task3/gone.pcap"),
        path=_path(1, 3, BAD_REASON),
    )  # fmt: skip
    bob["server_interop"] = Verdict(False, STOP_REASON, ("$ ping",), path=_path(9, 12, STOP_REASON))
    carol = {t: Verdict(None, "the lab could not be built") for t in TASK_IDS}
    carol["task1"] = Verdict(False, "U cannot reach the server")
    subs = []
    for name, tasks in (("alice", alice), ("bob", bob), (ODD_NAME, carol)):
        artifacts = base / "artifacts" / name
        (artifacts / "task3").mkdir(parents=True)
        (artifacts / "task3" / "client.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")
        (artifacts / "task3" / "server.log").write_text("server log\n")
        subs.append(
            SubmissionResult(
                path=f"/srv/course/{name}",
                name=name,
                tasks=tasks,
                score=rubric.score(tasks),
                max_score=rubric.total,
                artifacts=f"artifacts/{name}",
                seconds=12.5,
                limits="cgroup v2: 256 MiB, 64 pids",
            )
        )
    return GradeReport("tunnel", rubric, subs)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("grade")
    report = _report(base)
    write_html(report, base / "report.html", base)
    report.write_json(base / "report.json")
    return base


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = [p for p in (chromium, chromedriver) if not os.access(p, os.X_OK)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        why = f"needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("VPNSIM_BROWSER_REQUIRED"):
            pytest.fail(why)
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's own sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield browser
    finally:
        browser.quit()


def _open(driver: Any, page: Path) -> None:
    driver.get(page.as_uri())
    driver.get_log("browser")  # nothing from an earlier page counts against this one


def _by(css: str) -> tuple[str, str]:
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, css)


def _rows(driver: Any) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(*_by("th, td"))]
        for row in driver.find_elements(*_by("#grades tbody tr"))
    ]


def _path_of(url: str) -> Path:
    parts = urlsplit(url)
    assert parts.scheme == "file", url
    return Path(unquote(parts.path))


def _no_script_ran(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - the property raises when no alert is open
    assert driver.execute_script("return window.vpnsimPwned === undefined")


def _sort_state(button: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(button.find_element(By.XPATH, "..").get_attribute("aria-sort"))


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_class_table_shows_every_submission_and_task(driver: Any, report_dir: Path) -> None:
    _open(driver, report_dir / "report.html")
    assert driver.title == "vpnsim grade: tunnel"
    assert driver.find_element(*_by("h1")).text == "vpnsim grade: tunnel"
    headers = [th.text for th in driver.find_elements(*_by("#grades thead th"))]
    assert headers == ["Submission", "Score", *TASK_IDS]
    ok, bad, no = "\u2713", "\u2717", "\u2013"
    bob = [ok, ok, bad, no, no, no, no, no, no, ok, bad]
    assert _rows(driver) == [
        ["alice", "100 / 100", *[ok] * 11],
        ["bob", "20 / 100", *bob],
        [ODD_NAME, "0 / 100", bad, *[no] * 10],
    ]
    cell = driver.find_elements(*_by("#grades tbody tr"))[1].find_elements(*_by("td"))[3]
    assert cell.get_attribute("title") == f"failed: {BAD_REASON}"
    footer = [c.text for c in driver.find_elements(*_by("#grades tfoot th, #grades tfoot td"))]
    assert footer == ["Passed", "mean 40.0", "2 / 3", "2 / 3", *["1 / 3"] * 7, "2 / 3", "1 / 3"]
    _no_script_ran(driver)
    assert _severe(driver) == []


def test_a_submission_link_opens_its_page_with_the_failure_visible(
    driver: Any, report_dir: Path
) -> None:
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _open(driver, report_dir / "report.html")
    driver.find_element(*_by("#grades tbody tr:nth-child(2) th a")).click()
    WebDriverWait(driver, 10).until(ec.title_contains("bob"))
    assert _path_of(driver.current_url) == report_dir / "report-submissions" / "bob.html"
    assert driver.find_element(*_by("h1")).text == "bob"
    reason = driver.find_element(*_by("#task-task3 .reason"))
    assert reason.is_displayed()
    assert reason.text == f"Why it failed: {BAD_REASON}"  # the script shown as text
    log = driver.find_element(*_by("#task-task3 pre"))
    assert log.is_displayed()  # a failed task's log is open
    assert log.text == "\n".join(BAD_LOG)
    assert "Checks:" in driver.find_element(*_by("#task-task3 .checks")).text
    facts = driver.find_element(*_by("dl.facts")).text
    assert "/srv/course/bob" in facts and "cgroup v2: 256 MiB, 64 pids" in facts
    _no_script_ran(driver)
    assert driver.find_elements(*_by("script")) == []
    assert _severe(driver) == []


def test_evidence_links_point_to_existing_files(driver: Any, report_dir: Path) -> None:
    _open(driver, report_dir / "report-submissions" / "bob.html")
    links = driver.find_elements(*_by("#task-task3 ul.evidence a"))
    assert [a.text for a in links] == ["task3/client.pcap", "task3/server.log"]
    for a in links:
        assert _path_of(a.get_attribute("href")).is_file()
    items = [li.text for li in driver.find_elements(*_by("#task-task3 ul.evidence li"))]
    assert items[-1] == "task3/gone.pcap (missing)"
    folder = driver.find_element(*_by("dl.facts a"))
    assert _path_of(folder.get_attribute("href")) == report_dir / "artifacts" / "bob"


def test_marks_and_odd_names_lead_to_the_right_section(driver: Any, report_dir: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    _open(driver, report_dir / "report.html")
    row = driver.find_elements(*_by("#grades tbody tr"))[2]
    row.find_elements(*_by("td a"))[0].click()  # carol's task1 mark
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("#task-task1"))
    assert driver.find_element(*_by("h1")).text == ODD_NAME
    section = driver.find_element(*_by("#task-task1"))
    assert section.is_displayed()
    assert "U cannot reach the server" in section.find_element(*_by(".reason")).text
    driver.find_element(*_by("nav a")).click()
    WebDriverWait(driver, 10).until(lambda d: d.title == "vpnsim grade: tunnel")
    assert _severe(driver) == []


def test_sorting_by_score_and_name(driver: Any, report_dir: Path) -> None:
    _open(driver, report_dir / "report.html")
    score = driver.find_element(*_by("thead button[data-sort=score]"))
    name = driver.find_element(*_by("thead button[data-sort=name]"))

    def names() -> list[str]:
        return [row[0] for row in _rows(driver)]

    score.click()
    assert names() == ["alice", "bob", ODD_NAME]
    assert _sort_state(score) == "descending"
    score.click()
    assert names() == [ODD_NAME, "bob", "alice"]
    assert _sort_state(score) == "ascending"
    name.click()
    assert names() == ["alice", "bob", ODD_NAME]
    name.click()
    assert names() == [ODD_NAME, "bob", "alice"]
    assert _sort_state(score) == "none"
    footer = driver.find_element(*_by("#grades tfoot th")).text
    assert footer == "Passed"  # the summary row stays at the bottom
    assert _severe(driver) == []


# -- the packet's path ----------------------------------------------------------------------


def _json_tasks(report_dir: Path, name: str) -> dict[str, Any]:
    report = json.loads((report_dir / "report.json").read_text())
    subs = {sub["name"]: sub for sub in report["submissions"]}
    tasks: dict[str, Any] = subs[name]["tasks"]
    return tasks


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_each_traced_task_shows_the_path_the_json_holds(
    driver: Any, report_dir: Path, name: str
) -> None:
    _open(driver, report_dir / "report-submissions" / f"{name}.html")
    tasks = _json_tasks(report_dir, name)
    traced = [task for task, verdict in tasks.items() if verdict["path"] is not None]
    expected = PATH_TASKS if name == "alice" else ("task3", "client_interop", "server_interop")
    assert sorted(traced) == sorted(expected)
    for task, verdict in tasks.items():
        figures = driver.find_elements(*_by(f"#task-{task} figure.path"))
        path = verdict["path"]
        if path is None:
            assert figures == [], task
            continue
        assert len(figures) == 1, task
        svg = figures[0].find_element(*_by("svg.packet-path"))
        assert svg.is_displayed() and svg.size["width"] > 400, task
        hops = svg.find_elements(*_by("g.hop"))
        assert [
            (h.get_attribute("data-point"), h.get_attribute("data-leg"),
             h.get_attribute("data-state"))
            for h in hops
        ] == [(h["point"], h["leg"], h["state"]) for h in path["hops"]], task  # fmt: skip
        stops = svg.find_elements(*_by("g.hop.stop"))
        if path["stop"] is None:
            assert stops == [] and svg.get_attribute("data-stop") is None, task
        else:
            assert [s.get_attribute("data-index") for s in stops] == [str(path["stop"])], task
            assert svg.get_attribute("data-stop") == str(path["stop"]), task
        line = PacketPath.from_dict(path).line()
        assert figures[0].find_element(*_by("code.path-line")).text == line, task
    _no_script_ran(driver)
    assert _severe(driver) == []


def test_the_stopping_hop_is_marked_and_its_reason_is_beside_it(
    driver: Any, report_dir: Path
) -> None:
    _open(driver, report_dir / "report-submissions" / "bob.html")
    path = _json_tasks(report_dir, "bob")["server_interop"]["path"]
    assert (path["stop"], path["reason"]) == (9, STOP_REASON)
    svg = driver.find_element(*_by("#task-server_interop svg.packet-path"))
    stop = svg.find_element(*_by("g.hop.stop"))
    assert stop.get_attribute("data-point") == "server-eth0"
    assert stop.get_attribute("data-leg") == "back"
    circle = stop.find_element(*_by("circle:not(.ring)"))
    seen = svg.find_element(*_by("g.hop.seen circle"))
    not_seen = svg.find_element(*_by("g.hop.not-seen:not(.stop) circle"))
    red = "rgb(198, 40, 40)"
    assert circle.value_of_css_property("fill") == red  # the stop stands out...
    assert red not in {seen.value_of_css_property("fill"), not_seen.value_of_css_property("fill")}
    assert stop.find_element(*_by("circle.ring")).is_displayed()
    reason = svg.find_element(*_by("g.stop-reason"))
    texts = [t.text for t in reason.find_elements(*_by("text"))]
    assert texts[0] == "Stopped at server:eth0 (the reply):"
    assert " ".join(texts[1:]) == path["reason"]
    # ... and the reason is drawn under it, joined to it by the callout line.
    hop_box, reason_box = circle.rect, reason.find_element(*_by("rect")).rect
    assert reason_box["y"] > hop_box["y"] + hop_box["height"]
    assert reason_box["x"] <= hop_box["x"] and hop_box["x"] + hop_box["width"] <= (
        reason_box["x"] + reason_box["width"]
    )
    callout = svg.find_element(*_by("line.callout")).rect
    centre = hop_box["x"] + hop_box["width"] / 2
    assert abs(callout["x"] + callout["width"] / 2 - centre) <= 2
    assert callout["y"] < reason_box["y"] <= callout["y"] + callout["height"] + 2
    # The student's TUN name is shown as text, not run as markup.
    devices = [t.text for t in svg.find_elements(*_by("text.device"))]
    assert devices == ["tun0", "eth0", "eth0", EVIL_TUN, "eth1", "eth0"]
    _no_script_ran(driver)
    assert _severe(driver) == []


def test_a_failed_task_without_a_traced_ping_says_why_there_is_no_picture(
    driver: Any, report_dir: Path
) -> None:
    _open(driver, report_dir / "report-submissions" / "carol___co__1.html")
    note = driver.find_element(*_by("#task-task1 .no-path"))
    assert note.is_displayed() and note.text.startswith("This task traced no ping")
    assert driver.find_elements(*_by("svg")) == []
