"""The grade report as HTML pages a teacher and each student can open straight from disk.

    report.html                      the class: one row per submission, one cell per task
    report-submissions/alice.html    one submission: facts, then per task its status, what it
                                     checks, the reason, the log and links to the evidence

Pages are self-contained (inline CSS, a few lines of inline JS to sort the class table, no
external URL), so they work from file://, a CI artifact browser or any static web server.
Student program output ends up in reasons and logs: every piece of text is escaped.
"""

from __future__ import annotations

import os
import re
from html import escape
from pathlib import Path
from urllib.parse import quote

from vpnsim.grade.junit import number, ordered_verdicts, safe_text, task_title, write_atomically
from vpnsim.grade.path import PacketPath
from vpnsim.grade.path_svg import path_svg
from vpnsim.grade.registry import lab_tasks
from vpnsim.grade.report import GradeReport, SubmissionResult
from vpnsim.grade.tasks import Verdict

MARK = {True: "\u2713", False: "\u2717", None: "\u2013"}  # ✓ ✗ and an en dash
CLASS = {True: "passed", False: "failed", None: "not-reached"}
REASON_LABEL = {True: "Result", False: "Why it failed", None: "Why it was not reached"}

_STYLE = """
:root { color-scheme: light; --pass: #0a6b2d; --fail: #a4161a; --skip: #5c5c5c; }
body { font: 16px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1rem 1.5rem;
  max-width: 80rem; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.6rem; margin: .5rem 0; } h2 { font-size: 1.3rem; margin-top: 2rem; }
h3 { font-size: 1.1rem; margin: 0 0 .5rem; }
table { border-collapse: collapse; margin: 1rem 0; }
caption { text-align: left; padding: .25rem 0; color: #333; }
th, td { border: 1px solid #c8c8c8; padding: .3rem .55rem; text-align: left; }
thead th { background: #f0f0f0; vertical-align: bottom; }
tfoot th, tfoot td { background: #f7f7f7; font-weight: 600; }
td.mark { text-align: center; font-size: 1.15rem; }
td.mark a { text-decoration: none; display: block; color: inherit; }
.passed { color: var(--pass); } .failed { color: var(--fail); }
.not-reached { color: var(--skip); }
td.score, td.count { white-space: nowrap; text-align: right; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0;
  cursor: pointer; color: #0b4f9c; text-decoration: underline dotted; }
th[aria-sort="ascending"] button::after { content: " ▲"; }
th[aria-sort="descending"] button::after { content: " ▼"; }
a { color: #0b4f9c; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
section.task { border: 1px solid #d0d0d0; border-left: .4rem solid var(--skip);
  border-radius: .3rem; padding: .75rem 1rem; margin: 1rem 0; color: #1b1b1b; }
section.task.passed { border-left-color: var(--pass); }
section.task.failed { border-left-color: var(--fail); }
.status { font-weight: 700; }
.reason { white-space: pre-wrap; overflow-wrap: anywhere; margin: .5rem 0; padding: .5rem .75rem;
  border-radius: .25rem; background: #f4f4f4; }
section.failed .reason { background: #fdecea; border: 1px solid #e8a6a6; font-size: 1.05rem; }
pre { background: #f6f8fa; border: 1px solid #dcdcdc; padding: .6rem; overflow-x: auto;
  white-space: pre-wrap; overflow-wrap: anywhere; font-size: .9rem; }
.missing { color: var(--skip); font-style: italic; }
figure.path { margin: .75rem 0; overflow-x: auto; }
figure.path svg { max-width: 100%; height: auto; border: 1px solid #e0e0e0; border-radius: .25rem; }
figure.path figcaption { margin-top: .25rem; overflow-wrap: anywhere; }
.no-path { color: var(--skip); font-style: italic; }
.error { color: var(--fail); font-weight: 600; }
"""

# Sort the class table by name or score: buttons in the header, state in aria-sort.
_SCRIPT = """
(function () {
  var table = document.getElementById("grades");
  if (!table) { return; }
  var body = table.tBodies[0];
  table.querySelectorAll("thead button[data-sort]").forEach(function (button) {
    button.addEventListener("click", function () {
      var th = button.parentElement, key = button.getAttribute("data-sort");
      var order = th.getAttribute("aria-sort") === (key === "score" ? "descending" : "ascending")
        ? (key === "score" ? "ascending" : "descending")
        : (key === "score" ? "descending" : "ascending");
      table.querySelectorAll("thead th[aria-sort]").forEach(function (other) {
        other.setAttribute("aria-sort", "none");
      });
      th.setAttribute("aria-sort", order);
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.getAttribute("data-" + key), y = b.getAttribute("data-" + key);
        var c = key === "score" ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        if (c === 0) { c = a.getAttribute("data-name").localeCompare(b.getAttribute("data-name")); }
        return order === "ascending" ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
"""


def e(text: str) -> str:
    """Text (or an attribute value) as HTML: escaped, and XML-safe like the JUnit file."""
    return escape(safe_text(text), quote=True)


def _href(target: Path, from_dir: Path) -> str:
    """A relative URL from a page in `from_dir` to `target`, percent-encoded and escaped."""
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(from_dir))
    return e(quote(rel.replace(os.sep, "/")))


def _page_file_names(submissions: list[SubmissionResult]) -> dict[str, str]:
    """Submission name -> its page's file name: safe as a file name and a URL, unique."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for sub in submissions:
        stem = re.sub(r"[^\w.-]", "_", sub.name)
        if not stem or stem.startswith("."):
            stem = "_" + stem
        candidate, n = stem, 1
        while candidate.lower() in taken:  # also on case-insensitive file systems
            n += 1
            candidate = f"{stem}-{n}"
        taken.add(candidate.lower())
        names[sub.name] = candidate + ".html"
    return names


def _page(title: str, body: list[str], script: str = "") -> bytes:
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        '<link rel="icon" href="data:,">',  # no favicon request (a 404 in the console)
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
    ]
    tail = [f"<script>{script}</script>"] if script else []
    return "\n".join([*head, *body, *tail, "</body>", "</html>", ""]).encode("utf-8")


def _class_page(report: GradeReport, page_dir: str, pages: dict[str, str]) -> list[str]:
    rubric = report.rubric
    heading = f"vpnsim grade: {report.lab}"
    facts = [
        f"{len(report.submissions)} submission{'s' if len(report.submissions) != 1 else ''}",
        f"rubric: {rubric.source} ({number(rubric.total)} points)",
    ]
    if report.shard:
        facts.append(f"shard {report.shard}")
    out = [
        "<header>",
        f"<h1>{e(heading)}</h1>",
        f"<p>{' · '.join(e(f) for f in facts)}</p>",
        "</header>",
        "<main>",
        '<table id="grades">',
        "<caption>Scores and tasks: &#x2713; passed, &#x2717; failed, &ndash; not reached. "
        "Point at a mark for the reason, or follow it to the submission's page.</caption>",
        "<thead>",
        "<tr>",
        '<th scope="col" aria-sort="none"><button type="button" data-sort="name">'
        "Submission</button></th>",
        '<th scope="col" aria-sort="none"><button type="button" data-sort="score">'
        "Score</button></th>",
    ]
    task_ids = _task_columns(report)
    for task_id in task_ids:
        points = rubric.points.get(task_id, 0.0)
        label = f"{task_title(task_id, report.lab)} ({number(points)} points)"
        out.append(f'<th scope="col"><abbr title="{e(label)}">{e(task_id)}</abbr></th>')
    out += ["</tr>", "</thead>", "<tbody>"]
    for sub in report.submissions:
        page = f"{page_dir}/{pages[sub.name]}"
        verdicts = dict(ordered_verdicts(sub, report.lab))
        out.append(f'<tr data-name="{e(sub.name)}" data-score="{number(sub.score)}">')
        out.append(f'<th scope="row"><a href="{e(quote(page))}">{e(sub.name)}</a></th>')
        if sub.error:  # the harness failed on it: no marks, what failed across the row
            out.append('<td class="score error">error</td>')
            out.append(f'<td class="error" colspan="{len(task_ids)}">{e(sub.error)}</td></tr>')
            continue
        out.append(f'<td class="score">{number(sub.score)} / {number(sub.max_score)}</td>')
        for task_id in task_ids:
            v = verdicts.get(task_id, Verdict(None, "not run"))
            tip = f"{v.status}: {v.reason}"
            link = f"{quote(page)}#task-{quote(task_id)}"
            out.append(
                f'<td class="mark {CLASS[v.passed]}" title="{e(tip)}">'
                f'<a href="{e(link)}" aria-label="{e(f"{task_id} {tip}")}">'
                f"{MARK[v.passed]}</a></td>"
            )
        out.append("</tr>")
    out += ["</tbody>", "<tfoot>", "<tr>", '<th scope="row">Passed</th>']
    subs = [s for s in report.submissions if not s.error]
    mean = sum(s.score for s in subs) / len(subs) if subs else 0.0
    out.append(f'<td class="score">mean {mean:.1f}</td>')
    for task_id in task_ids:
        passed = sum(1 for s in subs if task_id in s.tasks and s.tasks[task_id].passed is True)
        label = f"{passed} of {len(subs)} passed {task_id}"
        out.append(f'<td class="count" title="{e(label)}">{passed} / {len(subs)}</td>')
    out += ["</tr>", "</tfoot>", "</table>", "</main>"]
    return out


def _task_columns(report: GradeReport) -> list[str]:
    ids = lab_tasks(report.lab).ids
    extra = {t for s in report.submissions for t in s.tasks if t not in ids}
    return [*ids, *sorted(extra)]


def _submission_page(
    report: GradeReport, sub: SubmissionResult, class_href: str, page_dir: Path, artifacts: Path
) -> list[str]:
    verdicts = ordered_verdicts(sub, report.lab)
    passed = sum(1 for _, v in verdicts if v.passed is True)
    out = [
        f'<nav><a href="{class_href}">← All submissions ({e(report.lab)})</a></nav>',
        "<main>",
        f"<h1>{e(sub.name)}</h1>",
        '<dl class="facts">',
        f"<dt>Path</dt><dd><code>{e(sub.path)}</code></dd>",
        "<dt>Score</dt><dd>none: not graded</dd>"
        if sub.error
        else f"<dt>Score</dt><dd>{number(sub.score)} / {number(sub.max_score)} "
        f"({passed} of {len(verdicts)} tasks passed)</dd>",
        f"<dt>Sandbox limits</dt><dd>{e(sub.limits) or 'not recorded'}</dd>",
        f"<dt>Grading time</dt><dd>{sub.seconds:.1f} s</dd>",
        f"<dt>Rubric</dt><dd>{e(report.rubric.source)}</dd>",
    ]
    if artifacts.is_dir():
        where = _href(artifacts, page_dir)
        out.append(f'<dt>Evidence folder</dt><dd><a href="{where}/">{e(sub.artifacts)}</a></dd>')
    if sub.error:
        out += [
            "</dl>",
            '<p class="reason error"><strong>Not graded, the grader failed:</strong> '
            f"{e(sub.error)}</p>",
            "</main>",
        ]
        return out
    out += ["</dl>", "<h2>Tasks</h2>", '<table class="overview">']
    out.append(
        '<thead><tr><th scope="col">Task</th><th scope="col">Status</th>'
        '<th scope="col">Points</th></tr></thead>'
    )
    out.append("<tbody>")
    for task_id, v in verdicts:
        out.append(
            f'<tr><th scope="row"><a href="#task-{e(quote(task_id))}">'
            f"{e(task_id)}: {e(task_title(task_id, report.lab))}</a></th>"
            f'<td class="{CLASS[v.passed]}">{MARK[v.passed]} {v.status}</td>'
            f'<td class="score">{_points(report, task_id, v)}</td></tr>'
        )
    out += ["</tbody>", "</table>"]
    for task_id, v in verdicts:
        out += _task_section(report, task_id, v, page_dir, artifacts)
    out.append("</main>")
    return out


def _points(report: GradeReport, task_id: str, v: Verdict) -> str:
    points = report.rubric.points.get(task_id, 0.0)
    return f"{number(points if v.passed is True else 0.0)} / {number(points)}"


def _task_section(
    report: GradeReport, task_id: str, v: Verdict, page_dir: Path, artifacts: Path
) -> list[str]:
    task = lab_tasks(report.lab).by_id.get(task_id)
    status = CLASS[v.passed]
    out = [
        f'<section class="task {status}" id="task-{e(task_id)}" '
        f'aria-labelledby="heading-{e(task_id)}">',
        f'<h3 id="heading-{e(task_id)}">{e(task_id)}: {e(task_title(task_id, report.lab))} — '
        f'<span class="status {status}">{MARK[v.passed]} {v.status}</span></h3>',
    ]
    if task is not None:
        out.append(f'<p class="checks"><strong>Checks:</strong> {e(task.checks)}</p>')
    out.append(f'<p class="reason"><strong>{REASON_LABEL[v.passed]}:</strong> {e(v.reason)}</p>')
    if v.path is not None:
        out += _path_figure(task_id, v.path)
    elif v.passed is False:
        out.append(f'<p class="no-path">{NO_PATH}</p>')
    out.append(f"<p>Points: {_points(report, task_id, v)} · {v.seconds:.1f} s</p>")
    if v.log:
        is_open = " open" if v.passed is False else ""
        out.append(f"<details{is_open}><summary>Commands run and their output</summary>")
        out.append(f'<pre class="log">{e(chr(10).join(v.log))}</pre>')
        out.append("</details>")
    if v.evidence:
        out.append(f'<h4 id="evidence-{e(task_id)}">Evidence</h4>')
        out.append(f'<ul aria-labelledby="evidence-{e(task_id)}" class="evidence">')
        for item in v.evidence:
            target = artifacts / item
            if target.exists():
                out.append(f'<li><a href="{_href(target, page_dir)}">{e(item)}</a></li>')
            else:
                out.append(f'<li>{e(item)} <span class="missing">(missing)</span></li>')
        out.append("</ul>")
    out.append("</section>")
    return out


NO_PATH = "This task traced no ping through the tunnel (it checks something else, or failed \
before sending one): there is no path to draw."


def _path_figure(task_id: str, path: PacketPath) -> list[str]:
    """The packet's path: the picture (its text is escaped by path_svg) and its one line."""
    return [
        f'<figure class="path" aria-labelledby="path-{e(task_id)}">',
        path_svg(path),
        f'<figcaption id="path-{e(task_id)}">Path of the {e(path.probe)}: '
        f'<code class="path-line">{e(path.line())}</code></figcaption>',
        "</figure>",
    ]


def write_html(report: GradeReport, path: Path, artifacts_base: Path) -> list[Path]:
    """Write the class page at `path` and one page per submission in `<stem>-submissions/`.

    `artifacts_base` is the folder the submissions' `artifacts` paths are relative to (the
    JSON report's). Returns the pages written, the class page first."""
    page_dir_name = f"{path.stem}-submissions"
    page_dir = path.parent / page_dir_name
    pages = _page_file_names(report.submissions)
    written: list[Path] = []
    class_href = _href(path, page_dir)
    for sub in report.submissions:
        page = page_dir / pages[sub.name]
        body = _submission_page(report, sub, class_href, page_dir, artifacts_base / sub.artifacts)
        write_atomically(page, _page(f"{sub.name} — vpnsim grade: {report.lab}", body))
        written.append(page)
    body = _class_page(report, page_dir_name, pages)
    write_atomically(path, _page(f"vpnsim grade: {report.lab}", body, _SCRIPT))
    return [path, *written]
