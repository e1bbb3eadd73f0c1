"""A task's packet path (`path.PacketPath`) drawn as inline SVG for the HTML report.

The lab is fixed, so is the drawing: U, the server and V as boxes left to right, one column
per device (U's TUN and eth0; the server's eth0, TUN and eth1; V's eth0) under its real
name, the request's hops on the upper row going right, the reply's on the lower row coming
back. Each hop is a circle marked ✓ seen, ✗ not seen or ? not looked at; hops beyond what
the task needs are faded. The hop where the packet stopped is red, ringed, and a line joins
it to the reason below the boxes.

For the browser tests and for scripts, the drawing says what it shows: the root has
class `packet-path` and `data-stop` (the stopping hop's index, absent when none), each hop
is a `g.hop` with `data-index`, `data-point`, `data-leg` and `data-state` (the JSON's), plus
the class `stop` on the stopping one; the reason is `g.stop-reason`.

Integer coordinates, no ids, no dates: the same path gives the same bytes, and several
drawings can share a page. Names come from student programs (a TUN's name), so all text
goes through ElementTree, which escapes it, after `safe_text` (no character XML forbids).
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

from vpnsim.draw import _el as el
from vpnsim.draw import text_width
from vpnsim.grade.junit import safe_text
from vpnsim.grade.path import NOT_LOOKED_AT, NOT_SEEN, SEEN, Hop, PacketPath
from vpnsim.grade.trace import (
    OUTER_NET,
    PRIVATE_NET,
    SERVER,
    SERVER_ADDR,
    SERVER_INNER,
    U_ADDR,
    V_ADDR,
    U,
    V,
)

COLUMNS = ("U-tun", "U-eth0", "server-eth0", "server-tun", "server-eth1", "V-eth0")
HOSTS = (  # name, address line, first and last column (the SEED lab's, from vpnsim.seed)
    (U, U_ADDR, 0, 1),
    (SERVER, f"{SERVER_ADDR} · {SERVER_INNER}", 2, 4),
    (V, V_ADDR, 5, 5),
)
NETWORKS = ((OUTER_NET, 2), (PRIVATE_NET, 5))  # label, the column it starts at
COL_W = 128
MARGIN = 16
WIDTH = 2 * MARGIN + COL_W * len(COLUMNS)
BOX_TOP = 40
BOX_H = 156
ROWS = {"out": BOX_TOP + 86, "back": BOX_TOP + 130}  # the request's row, the reply's
R = 13  # a hop's circle
LINE_H = 16
WRAP = 100  # characters of a reason line (12 px monospace: 100 * 7.44 px < WIDTH)
MAX_LINES = 8  # of the reason; the page shows it whole above the picture
CLASS = {SEEN: "seen", NOT_SEEN: "not-seen", NOT_LOOKED_AT: "not-looked-at"}

STYLE = """
.packet-path text { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12px;
  fill: #212121; }
.packet-path .probe { font-weight: bold; }
.packet-path .box { fill: #f5f5f5; stroke: #616161; stroke-width: 1.5; }
.packet-path .host-name { font-size: 13px; font-weight: bold; }
.packet-path .host-address, .packet-path .network, .packet-path .legend, .packet-path .leg {
  font-size: 11px; fill: #424242; }
.packet-path .device { font-weight: bold; fill: #263238; }
.packet-path .column { stroke: #b0bec5; stroke-width: 1; stroke-dasharray: 3 3; }
.packet-path .wire { stroke: #78909c; stroke-width: 4; stroke-linecap: round; }
.packet-path .step { stroke: #2e7d32; stroke-width: 2; fill: none; }
.packet-path .step.broken { stroke: #9e9e9e; stroke-dasharray: 4 3; }
.packet-path .head { fill: #2e7d32; } .packet-path .head.broken { fill: #9e9e9e; }
.packet-path .hop circle { stroke-width: 2; }
.packet-path .hop.seen circle { fill: #e8f5e9; stroke: #2e7d32; }
.packet-path .hop.seen text { fill: #1b5e20; }
.packet-path .hop.not-seen circle { fill: #ffffff; stroke: #9e9e9e; }
.packet-path .hop.not-seen text { fill: #757575; }
.packet-path .hop.not-looked-at circle { fill: #ffffff; stroke: #9e9e9e; stroke-dasharray: 2 2; }
.packet-path .hop.not-looked-at text { fill: #757575; }
.packet-path .hop text { font-size: 14px; font-weight: bold; }
.packet-path .hop.beyond { opacity: .45; }
.packet-path .hop.stop circle { fill: #c62828; stroke: #7f0000; stroke-width: 3; }
.packet-path .hop.stop text { fill: #ffffff; }
.packet-path .hop.stop .ring { fill: none; stroke: #c62828; stroke-width: 2; }
.packet-path .callout { stroke: #c62828; stroke-width: 2; }
.packet-path .stop-reason rect { fill: #fdecea; stroke: #c62828; }
.packet-path .stop-reason .where { font-weight: bold; fill: #7f0000; }
.packet-path .made-it { fill: #1b5e20; font-weight: bold; }
"""


def x_of(column: int) -> int:
    return MARGIN + COL_W * column + COL_W // 2


def column_of(hop: Hop) -> int:
    return COLUMNS.index(hop.point) if hop.point in COLUMNS else len(COLUMNS) - 1


def where(hop: Hop) -> str:
    """A hop in words: "server:tun0 (the reply)"."""
    return f"{hop.label} ({'the request' if hop.leg == 'out' else 'the reply'})"


def reason_lines(reason: str) -> list[str]:
    """The reason wrapped to WRAP characters, at most MAX_LINES lines (then "…")."""
    lines = [
        wrapped
        for line in safe_text(reason).splitlines()
        for wrapped in (textwrap.wrap(line, WRAP, break_on_hyphens=False) or [""])
    ]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], "… (the whole reason is above)"]
    return lines


def path_svg(path: PacketPath) -> str:
    """`path` as an <svg> element for an HTML page (inline: without the xmlns a file needs)."""
    lines = reason_lines(path.reason) if path.stop is not None else []
    below = BOX_TOP + BOX_H + 34  # under the boxes and the networks' names
    callout_h = (len(lines) + 1) * LINE_H + 12 if path.stop is not None else LINE_H
    height = below + callout_h + 12 + LINE_H + MARGIN
    attrs = {  # no xmlns: inline in HTML, <svg> is SVG (and the page names no URL)
        "class": "packet-path",
        "width": str(WIDTH),
        "height": str(height),
        "viewBox": f"0 0 {WIDTH} {height}",
        "role": "img",
        "aria-label": safe_text(f"{path.probe}: {path.line()}"),
    }
    if path.stop is not None:
        attrs["data-stop"] = str(path.stop)
    root = ET.Element("svg", attrs)
    el(root, "title", safe_text(f"{path.probe}: {path.line()}"))
    el(root, "style", STYLE)
    el(root, "text", safe_text(path.probe), class_="probe", x=MARGIN, y=MARGIN + 8)
    _hosts(root, path)
    if path.stop is not None:  # first: the hops it passes on its way down stay on top
        stopped = path.hops[path.stop]
        cx, cy = x_of(column_of(stopped)), ROWS.get(stopped.leg, ROWS["out"])
        el(root, "line", class_="callout", x1=cx, y1=cy + R + 5, x2=cx, y2=below)
    _steps(root, path)
    for i, hop in enumerate(path.hops):
        _hop(root, path, i, hop)
    if path.stop is not None:
        _reason(root, path, path.stop, lines, below)
    else:
        el(root, "text", "The ping made the way this task needs.", class_="made-it",
           x=MARGIN, y=below + 12)  # fmt: skip
    legend = "✓ seen · ✗ not seen · ? not captured · faded: beyond what this task needs"
    el(root, "text", legend, class_="legend", x=MARGIN, y=height - MARGIN + 4)
    return ET.tostring(root, "unicode")


def _hosts(root: ET.Element, path: PacketPath) -> None:
    devices: dict[str, str] = {}
    for hop in path.hops:
        devices.setdefault(hop.point, hop.device)
    for name, address, first, last in HOSTS:
        group = el(root, "g", class_="host", data_host=name)
        x = MARGIN + COL_W * first + 6
        w = COL_W * (last - first + 1) - 12
        el(group, "rect", class_="box", x=x, y=BOX_TOP, width=w, height=BOX_H, rx=6)
        if first == 0:
            for leg, y in ROWS.items():
                el(group, "text", leg, class_="leg", x=x + 6, y=y + 4)
        el(group, "text", name, class_="host-name", x=x + 8, y=BOX_TOP + 17)
        el(group, "text", address, class_="host-address",
           x=x + 8 + text_width(name, 13) + 8, y=BOX_TOP + 17)  # fmt: skip
        for column in range(first, last + 1):
            point = COLUMNS[column]
            device = safe_text(devices.get(point, point.split("-", 1)[1]))
            cx = x_of(column)
            el(group, "line", class_="column", x1=cx, y1=BOX_TOP + 52, x2=cx,
               y2=BOX_TOP + BOX_H - 8)  # fmt: skip
            el(group, "text", device, class_="device", x=cx, y=BOX_TOP + 44, text_anchor="middle")
    for label, column in NETWORKS:
        left, right = x_of(column - 1), x_of(column)
        mid = (left + right) // 2
        el(root, "line", class_="wire", x1=left, y1=BOX_TOP + BOX_H + 8, x2=right,
           y2=BOX_TOP + BOX_H + 8)  # fmt: skip
        el(root, "text", label, class_="network", x=mid, y=BOX_TOP + BOX_H + 24,
           text_anchor="middle")  # fmt: skip


def _steps(root: ET.Element, path: PacketPath) -> None:
    """An arrow from each hop to the next: green when both were seen."""
    for i in range(1, len(path.hops)):
        a, b = path.hops[i - 1], path.hops[i]
        broken = "" if a.state == SEEN and b.state == SEEN else " broken"
        gap = R + (8 if i == path.stop else 3)  # clear of the stopping hop's ring
        ax, bx = x_of(column_of(a)), x_of(column_of(b))
        ay, by = ROWS.get(a.leg, ROWS["out"]), ROWS.get(b.leg, ROWS["back"])
        if ay == by and ax != bx:
            sign = 1 if bx > ax else -1
            x1, x2 = ax + sign * (R + 2), bx - sign * gap
            el(root, "line", class_="step" + broken, x1=x1, y1=ay, x2=x2, y2=by)
            tip = [(x2 + sign * 1, by), (x2 - sign * 7, by - 4), (x2 - sign * 7, by + 4)]
        else:  # the turn at V: down from the request to the reply
            y1, y2 = ay + R + 2, by - gap
            el(root, "line", class_="step" + broken, x1=ax, y1=y1, x2=bx, y2=y2)
            tip = [(bx, y2 + 1), (bx - 4, y2 - 7), (bx + 4, y2 - 7)]
        points = " ".join(f"{x},{y}" for x, y in tip)
        el(root, "polygon", class_="head" + broken, points=points)


def _hop(root: ET.Element, path: PacketPath, i: int, hop: Hop) -> None:
    classes = ["hop", CLASS.get(hop.state, "not-looked-at")]
    if i >= path.required:
        classes.append("beyond")
    if i == path.stop:
        classes.append("stop")
    group = el(root, "g", class_=" ".join(classes), data_index=i, data_point=hop.point,
               data_leg=hop.leg, data_state=hop.state)  # fmt: skip
    cx, cy = x_of(column_of(hop)), ROWS.get(hop.leg, ROWS["out"])
    needed = "" if i < path.required else ", beyond what this task needs"
    stopped = ": the packet stopped here" if i == path.stop else ""
    el(group, "title", safe_text(f"{where(hop)}: {hop.state}{needed}{stopped}"))
    if i == path.stop:
        el(group, "circle", class_="ring", cx=cx, cy=cy, r=R + 5)
    el(group, "circle", cx=cx, cy=cy, r=R)
    el(group, "text", hop.mark, x=cx, y=cy + 5, text_anchor="middle")


def _reason(root: ET.Element, path: PacketPath, stop: int, lines: list[str], top: int) -> None:
    hop = path.hops[stop]
    group = el(root, "g", class_="stop-reason")
    height = (len(lines) + 1) * LINE_H + 12
    el(group, "rect", x=MARGIN, y=top, width=WIDTH - 2 * MARGIN, height=height, rx=4)
    el(group, "text", safe_text(f"Stopped at {where(hop)}:"), class_="where",
       x=MARGIN + 8, y=top + LINE_H + 2)  # fmt: skip
    for k, line in enumerate(lines):
        el(group, "text", line, class_="line", x=MARGIN + 8, y=top + LINE_H * (k + 2) + 2)
