"""The grade HTML report in a real headless Chromium, driven by Selenium over file:// URLs.

Uses Debian's chromium and chromium-driver (no browser download). `nox -s browser` installs
them and sets VPNSIM_BROWSER_REQUIRED, so there a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from vpnsim.grade.html import write_html
from vpnsim.grade.report import GradeReport, SubmissionResult
from vpnsim.grade.rubric import load_rubric
from vpnsim.grade.tasks import TASK_IDS, Verdict

pytestmark = pytest.mark.browser

PWNED = "<script>window.vpnsimPwned = 1; alert(1)</script>"
BAD_REASON = f"no UDP datagram to 9090 {PWNED} & \"quotes\" 'too'"
BAD_LOG = ("$ ping -c1 192.168.60.5", '<img src=x onerror="window.vpnsimPwned = 2"> & done')
ODD_NAME = "carol & co #1"  # a folder name is not a URL: quoting and page names are tested


def _report(base: Path) -> GradeReport:
    rubric = load_rubric()
    alice = {t: Verdict(True, f"{t} works", (f"$ check {t}", "ok")) for t in TASK_IDS}
    bob = {t: Verdict(None, "needs task3 (...), which failed") for t in TASK_IDS}
    bob["task1"] = Verdict(True, "U reaches the server")
    bob["task2"] = Verdict(True, "tun0 is up")
    bob["task3"] = Verdict(
        False, BAD_REASON, BAD_LOG, ("task3/client.pcap", "task3/server.log", "task3/gone.pcap")
    )
    bob["client_interop"] = Verdict(True, "ping and TCP work")
    bob["server_interop"] = Verdict(False, "the server exited: Traceback ...", ("$ tun_server",))
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
    write_html(_report(base), base / "report.html", base)
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
