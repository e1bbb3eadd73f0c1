"""The grade report as JUnit XML, the test-report format CI systems read.

    <testsuites name="vpnsim grade: tunnel" tests=".." failures=".." errors="0" skipped="..">
      <testsuite name="alice" tests="11" failures="1" errors="0" skipped="6" time="..">
        <properties> score, max_score, path, limits, artifacts </properties>
        <testcase classname="vpnsim.grade.alice" name="task1: Network setup" time="0.512">
          <system-out>the task's log lines</system-out>            (passed)
          <failure message="REASON" type="failed">log lines</failure>  (failed)
          <skipped message="REASON"/>                                (not reached)
      <testsuite name="bob" tests="1" errors="1" ...>   (the harness failed on it: no verdicts)
        <testcase classname="vpnsim.grade.bob" name="grading"><error message="WHAT FAILED"/>

A task that traced a ping through the tunnel has its path (`vpnsim.grade.path`) as one line
at the head of its text, and, when it failed, at the end of its message:
`REASON [path: U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun0 ✗]`.

GitLab, Jenkins and the GitHub test reporters show the message and the text. Student program
output ends up in reasons and logs, so text is made XML-safe: characters XML 1.0 cannot carry
(escape sequences, NULs, undecodable bytes) are shown as \\xNN instead of breaking the file.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from vpnsim.grade.registry import lab_of, lab_tasks
from vpnsim.grade.report import GradeReport, SubmissionResult
from vpnsim.grade.tasks import Verdict

# Everything XML 1.0 allows but \r (line ends become \n first: parsers would do it anyway).
_NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LINE_END = re.compile("\r\n?")


def safe_text(text: str) -> str:
    """`text` with characters XML (and HTML) cannot carry shown as \\xNN / \\uNNNN."""

    def shown(match: re.Match[str]) -> str:
        code = ord(match.group())
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            return f"\\x{code - 0xDC00:02x}"
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _NOT_XML.sub(shown, _LINE_END.sub("\n", text))


def task_title(task_id: str, lab: str = "tunnel") -> str:
    task = lab_tasks(lab).by_id.get(task_id)
    return task.title if task else task_id


def ordered_verdicts(sub: SubmissionResult, lab: str | None = None) -> list[tuple[str, Verdict]]:
    """Every task of `lab` (by default the one whose tasks these are) in its order (one
    missing from the report is "not run"), then any others."""
    ids = (lab_tasks(lab) if lab else lab_of(sub.tasks)).ids
    rows = [(task_id, sub.tasks.get(task_id, Verdict(None, "not run"))) for task_id in ids]
    rows += [(task_id, v) for task_id, v in sub.tasks.items() if task_id not in ids]
    return rows


def number(value: float) -> str:
    """85.0 -> "85", 42.5 -> "42.5": scores as people write them."""
    return f"{value:g}"


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def junit_tree(report: GradeReport) -> ET.Element:
    root = ET.Element("testsuites", name=safe_text(f"vpnsim grade: {report.lab}"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for sub in report.submissions:
        suite = _suite(sub)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        seconds += sub.seconds
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("skipped", str(totals["skipped"]))
    root.set("time", f"{seconds:.3f}")
    return root


def _suite(sub: SubmissionResult) -> ET.Element:
    if sub.error:
        return _error_suite(sub)
    lab = lab_of(sub.tasks).lab
    verdicts = ordered_verdicts(sub, lab)
    suite = ET.Element("testsuite", name=safe_text(sub.name))
    suite.set("tests", str(len(verdicts)))
    suite.set("failures", str(sum(1 for _, v in verdicts if v.passed is False)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for _, v in verdicts if v.passed is None)))
    suite.set("time", f"{sub.seconds:.3f}")
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("score", number(sub.score)),
        ("max_score", number(sub.max_score)),
        ("path", sub.path),
        ("limits", sub.limits),
        ("artifacts", sub.artifacts),
    ):
        ET.SubElement(properties, "property", name=name, value=safe_text(value))
    classname = safe_text(f"vpnsim.grade.{sub.name}")
    for task_id, verdict in verdicts:
        case = ET.SubElement(suite, "testcase", classname=classname)
        case.set("name", safe_text(f"{task_id}: {task_title(task_id, lab)}"))
        case.set("time", f"{verdict.seconds:.3f}")
        log = safe_text("\n".join(verdict.log))
        if verdict.path is not None:
            log = safe_text(f"path: {verdict.path.line()}") + ("\n" + log if log else "")
        if verdict.evidence:
            evidence = "\n".join(f"  {sub.artifacts}/{e}" for e in verdict.evidence)
            log += ("\n\n" if log else "") + safe_text(f"evidence (beside the report):\n{evidence}")
        if verdict.passed is False:
            failure = ET.SubElement(case, "failure", message=safe_text(failure_message(verdict)))
            failure.set("type", "failed")
            failure.text = log or safe_text(verdict.reason)
        elif verdict.passed is None:
            ET.SubElement(case, "skipped", message=safe_text(verdict.reason))
        elif log:
            ET.SubElement(case, "system-out").text = log
    return suite


def failure_message(verdict: Verdict) -> str:
    """The reason, and the path of the task's ping when it traced one."""
    if verdict.path is None:
        return verdict.reason
    return f"{verdict.reason} [path: {verdict.path.line()}]"


def _error_suite(sub: SubmissionResult) -> ET.Element:
    """A submission the harness failed on: one test case in error, no task verdicts."""
    suite = ET.Element("testsuite", name=safe_text(sub.name), tests="1", failures="0")
    suite.set("errors", "1")
    suite.set("skipped", "0")
    suite.set("time", f"{sub.seconds:.3f}")
    properties = ET.SubElement(suite, "properties")
    for name, value in (("path", sub.path), ("artifacts", sub.artifacts)):
        ET.SubElement(properties, "property", name=name, value=safe_text(value))
    case = ET.SubElement(suite, "testcase", classname=safe_text(f"vpnsim.grade.{sub.name}"))
    case.set("name", "grading")
    case.set("time", f"{sub.seconds:.3f}")
    error = ET.SubElement(case, "error", message=safe_text(sub.error), type="harness")
    error.text = safe_text(f"{sub.error}\ntraceback: {sub.artifacts}/harness-error.txt")
    return suite


def write_junit(report: GradeReport, path: Path) -> None:
    """Write `report` as JUnit XML to `path` (atomically: a CI job never reads half a file)."""
    root = junit_tree(report)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    write_atomically(path, data + b"\n")
