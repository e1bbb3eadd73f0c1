"""`vpnsim draw SCENARIO`: a scenario's topology as a self-contained SVG.

Pure Python, no root, no graphviz: a layered layout that reads like the lab's own diagrams.

- Networks are horizontal buses, one per row, ordered so that a router joins neighbouring rows
  where the topology allows it (a chain of networks becomes a column of buses).
- Hosts are boxes in the bands between the buses. A host on one network hangs above the first
  bus or below its own; a host on several networks (a router) sits between its first two, with
  a line to each bus. Each line carries the interface's name and addresses, beside its host.
- An impaired link (the scenario's `[[impairments]]`) is drawn red and dashed, with what the
  seeded wire does to its packets.
- The tunnel is a green dashed pipe between the client's and the server's boxes, on a lane to
  the right of the buses, with each end's TUN (or TAP) address and the UDP port.

The output depends only on the scenario: integer coordinates, file order kept, no dates or
paths, so the same scenario gives byte-identical SVG (docs/scenarios/ is checked against it).
Text widths are estimated for a monospace font, which every viewer has.
"""

from __future__ import annotations

import ipaddress
import math
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpnsim.model import Host, Interface, Scenario, TunnelSpec

if TYPE_CHECKING:
    from vpnsim.impair.spec import Impairment

SVG_NS = "http://www.w3.org/2000/svg"

# Geometry, in px. Text is monospace: each character is ~0.6 em wide.
FONT = 12
NAME_FONT = 13
TITLE_FONT = 15
LINE_H = 15  # one line of 12 px text
PAD = 8
MARGIN = 16
BOX_H = 40
MIN_BOX_W = 72
# The first connector's distance from its box's left edge: lines up and lines down start at
# different places, so that a line below a box never continues one above the next box.
INSET_UP = 14
INSET_DOWN = 30
SLOT_GAP = 16  # between one connector's label and the next connector
HOST_GAP = 28  # between boxes in a band
CONN_MIN = 34  # shortest line from a box to its bus
EMPTY_BAND = 50  # height of a band without hosts (room for the buses' labels)
LANE_GAP = 28  # from the buses' right end to the tunnel's lane

STYLE = """
text { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12px;
       fill: #212121; }
.title { font-size: 15px; font-weight: bold; }
.subtitle, .caption { fill: #424242; }
.bus { stroke: #455a64; stroke-width: 4; stroke-linecap: round; }
.network .name { font-weight: bold; }
.network .subnet { fill: #455a64; }
.box { fill: #f5f5f5; stroke: #424242; stroke-width: 1.5; }
.router .box { fill: #fff8e1; }
.vpn .box { fill: #e8f5e9; stroke: #2e7d32; }
.host .name { font-size: 13px; font-weight: bold; }
.host .tags { font-size: 11px; fill: #616161; }
.wire { stroke: #607d8b; stroke-width: 2; }
.halo { stroke: #ffffff; stroke-width: 8; }
.impaired .wire { stroke: #c62828; stroke-width: 2.5; stroke-dasharray: 5 3; }
.impaired .mark { fill: #c62828; }
.impaired .impairment { fill: #c62828; }
.tunnel .pipe { fill: none; stroke: #2e7d32; stroke-width: 3; stroke-dasharray: 9 5; }
.tunnel .end { fill: #2e7d32; }
.tunnel text { fill: #1b5e20; }
"""


def text_width(text: str, size: int = FONT) -> int:
    return math.ceil(len(text) * size * 0.62)


# What is drawn ----------------------------------------------------------------------------


@dataclass
class Link:
    """One interface of a host: a line from the host's box to its network's bus."""

    iface: Interface
    row: int  # its network's row
    up: bool  # the bus is above the host's band
    lines: list[str]  # "eth0 10.9.0.5/24", then the IPv6 address if any
    wire: list[str]  # what its impairment does, or nothing
    x: int = 0

    @property
    def label_w(self) -> int:
        return max(text_width(line) for line in [*self.lines, *self.wire])

    @property
    def height(self) -> int:
        return (len(self.lines) + len(self.wire)) * LINE_H + 2 * PAD


@dataclass
class Box:
    host: Host
    band: int
    tags: list[str]
    links: list[Link]
    w: int = 0
    x: int = 0
    y: int = 0

    def side(self, up: bool) -> list[Link]:
        return [link for link in self.links if link.up == up]


@dataclass
class Layout:
    scenario: Scenario
    rows: list[str]  # network names, top to bottom
    bands: list[list[Box]]  # band b is above bus b (the last band is below the last bus)
    bus_y: list[int] = field(default_factory=list)
    bus_x: tuple[int, int] = (0, 0)
    gutter: int = 0  # network labels end here
    width: int = 0
    height: int = 0

    def box(self, host: str) -> Box:
        return next(b for band in self.bands for b in band if b.host.name == host)


def render(scenario: Scenario, impairments: Mapping[str, Impairment] | None = None) -> str:
    """The scenario as SVG text; `impairments` maps HOST:IFNAME to what impairs that link."""
    layout = lay_out(scenario, impairments or {})
    root = _svg(layout)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


# Layout -----------------------------------------------------------------------------------


def network_rows(scenario: Scenario) -> list[str]:
    """Networks top to bottom: each connected group in breadth-first order from one of its
    far ends, so a chain of networks joined by routers comes out as a chain of rows."""
    declared = [net.name for net in scenario.networks]
    neighbours: dict[str, list[str]] = {name: [] for name in declared}
    for host in scenario.hosts:
        nets = list(dict.fromkeys(i.network for i in host.interfaces if i.network in neighbours))
        for a in nets:
            neighbours[a] += [b for b in nets if b != a and b not in neighbours[a]]

    def bfs(start: str) -> list[str]:
        order, queue, seen = [], deque([start]), {start}
        while queue:
            name = queue.popleft()
            order.append(name)
            for other in neighbours[name]:
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
        return order

    rows: list[str] = []
    for name in declared:
        if name in rows:
            continue
        group = bfs(name)
        far = bfs(group[-1])  # from the last one reached: a far end
        if declared.index(far[-1]) < declared.index(far[0]):
            far = bfs(far[-1])
        rows += far
    tunnel = scenario.tunnel
    # The client above the server, as in the lab's diagrams.
    if tunnel is not None and _mean_row(scenario, rows, tunnel.client) > _mean_row(
        scenario, rows, tunnel.server
    ):
        rows.reverse()
    return rows


def _mean_row(scenario: Scenario, rows: list[str], host: str) -> float:
    found = [rows.index(i.network) for i in scenario.host(host).interfaces if i.network in rows]
    return sum(found) / len(found) if found else 0.0


def _band(rows: Sequence[int]) -> int:
    """A host's band: above the first bus, below its own bus, or between its first two."""
    if not rows:
        return 0
    if len(set(rows)) == 1:
        return 0 if rows[0] == 0 else rows[0] + 1
    return min(rows) + 1


def _tags(scenario: Scenario, host: Host) -> list[str]:
    tags = []
    tunnel = scenario.tunnel
    if tunnel is not None and host.name == tunnel.client:
        tags.append("VPN client")
    if tunnel is not None and host.name == tunnel.server:
        tags.append("VPN server")
    if dict(host.sysctls).get("net.ipv4.ip_forward") == "1":
        tags.append("router")
    return tags


def impairment_lines(impairment: Impairment) -> list[str]:
    """`loss 20%, delay 5 ms` and `(seed 1, both directions)`, as two lines."""
    summary = impairment.summary()
    return [f"wire: {summary}", impairment.describe().removeprefix(summary).strip()]


def lay_out(scenario: Scenario, impairments: Mapping[str, Impairment]) -> Layout:
    rows = network_rows(scenario)
    row_of = {name: i for i, name in enumerate(rows)}
    bands: list[list[Box]] = [[] for _ in range(len(rows) + 1)]
    for host in scenario.hosts:
        band = _band([row_of[i.network] for i in host.interfaces if i.network in row_of])
        links = []
        for iface in host.interfaces:
            if iface.network not in row_of:
                continue
            row = row_of[iface.network]
            lines = [f"{iface.name} {iface.address}"]
            if iface.address6:
                lines.append(str(ipaddress.ip_interface(iface.address6)))
            impairment = impairments.get(f"{host.name}:{iface.name}")
            wire = impairment_lines(impairment) if impairment is not None else []
            links.append(Link(iface, row, row < band, lines, wire))
        bands[band].append(Box(host, band, _tags(scenario, host), links))
    tunnel = scenario.tunnel
    if tunnel is not None:  # the tunnel's ends last in their bands: the lane is on the right
        ends = [tunnel.client, tunnel.server]
        for members in bands:
            members.sort(
                key=lambda box: ends.index(box.host.name) + 1 if box.host.name in ends else 0
            )
    layout = Layout(scenario, rows, bands)
    _widths(layout)
    _vertical(layout)
    _horizontal(layout)
    return layout


def _widths(layout: Layout) -> None:
    for band in layout.bands:
        for box in band:
            text = max(text_width(box.host.name, NAME_FONT), text_width(", ".join(box.tags), 11))
            widths = [text + 2 * PAD, MIN_BOX_W]
            for up in (True, False):
                x = INSET_UP if up else INSET_DOWN
                for link in box.side(up):
                    link.x = x  # relative to the box, for now
                    x += 6 + link.label_w + SLOT_GAP
                widths.append(x - SLOT_GAP + PAD)
            box.w = max(widths)


def _vertical(layout: Layout) -> None:
    y = MARGIN + TITLE_FONT + (LINE_H + 6 if layout.scenario.description else 0) + 2 * PAD
    for b, band in enumerate(layout.bands):
        up = max((link.height for box in band for link in box.side(True)), default=0)
        down = max((link.height for box in band for link in box.side(False)), default=0)
        up = max(up, CONN_MIN) if up else 0
        down = max(down, CONN_MIN) if down else 0
        if band and not down and b < len(layout.rows):  # a bus below, but no line to it
            down = 2 * PAD
        if band:
            for box in band:
                box.y = y + up
            if b == 0 and not up:  # nothing above the first band's boxes but the title
                for box in band:
                    box.y += PAD
                up = PAD
        height = up + BOX_H + down if band else EMPTY_BAND
        y += max(height, EMPTY_BAND)
        if b < len(layout.rows):
            layout.bus_y.append(y)
    layout.height = y + PAD


def _tunnel_labels(tunnel: TunnelSpec) -> tuple[list[str], list[str], list[str]]:
    """Lines beside the client's end, the server's end, and the pipe."""
    kind = tunnel.mode.upper()
    client = [f"{kind} {tunnel.client_tun}"] + ([tunnel.client_tun6] if tunnel.client_tun6 else [])
    server = [f"{kind} {tunnel.server_tun}"] + ([tunnel.server_tun6] if tunnel.server_tun6 else [])
    pipe = [f"tunnel ({kind})", f"UDP port {tunnel.port}", f"to {tunnel.server_address}"]
    return client, server, pipe


def _horizontal(layout: Layout) -> None:
    labels = [_network_lines(layout.scenario, name) for name in layout.rows]
    layout.gutter = MARGIN + max((text_width(s) for ls in labels for s in ls), default=0)
    bus_x0 = layout.gutter + PAD
    x0 = bus_x0 + 2 * PAD + 8
    tunnel = layout.scenario.tunnel
    same_band_gap = 0
    if tunnel is not None:
        client_lines, server_lines, pipe_lines = _tunnel_labels(tunnel)
        if layout.box(tunnel.client).band == layout.box(tunnel.server).band:
            same_band_gap = max(
                max(map(text_width, client_lines)) + max(map(text_width, server_lines)) + 24,
                max(map(text_width, pipe_lines)) + 24,
            )

    def band_width(band: list[Box]) -> int:
        extra = same_band_gap - HOST_GAP if same_band_gap and _both_ends(band, tunnel) else 0
        return sum(box.w for box in band) + HOST_GAP * max(len(band) - 1, 0) + extra

    content = max([band_width(band) for band in layout.bands] + [MIN_BOX_W])
    right_end = x0 + content
    # A line down to a bus that is not the next one passes through the bands between: their
    # boxes (and the labels under them) are moved aside, so the line crosses none.
    crossing: list[tuple[int, int]] = []  # (x, the last band it passes through)
    for b, band in enumerate(layout.bands):
        avoid = [ax for ax, last in crossing if b <= last]
        x = x0 if avoid else x0 + (content - band_width(band)) // 2
        for box in band:
            while hit := [ax for ax in avoid if x - PAD <= ax <= x + box.w + PAD]:
                x = max(hit) + PAD + 1
            box.x = x
            for link in box.links:
                link.x += x
                if not link.up and link.row > b:
                    crossing.append((link.x, link.row))
            gap = same_band_gap if tunnel and box.host.name == tunnel.client else 0
            right_end = max(right_end, x + box.w)
            x += box.w + (gap if gap and _both_ends(band, tunnel) else HOST_GAP)
    layout.bus_x = (bus_x0, right_end + 2 * PAD)
    right = layout.bus_x[1]
    if tunnel is not None and not same_band_gap:
        lane, _, _ = _lane(layout, tunnel)
        right = lane + 10 + max(map(text_width, pipe_lines))
    title = [layout.scenario.name, layout.scenario.description, *_caption(layout.scenario)]
    widest = max(text_width(line, TITLE_FONT if i == 0 else FONT) for i, line in enumerate(title))
    layout.width = max(right, widest + MARGIN) + MARGIN
    layout.height += LINE_H * len(_caption(layout.scenario)) + MARGIN


def _both_ends(band: list[Box], tunnel: TunnelSpec | None) -> bool:
    names = {box.host.name for box in band}
    return tunnel is not None and {tunnel.client, tunnel.server} <= names


def _lane(layout: Layout, tunnel: TunnelSpec) -> tuple[int, Box, Box]:
    """x of the tunnel's vertical lane, right of the buses and of both ends' labels."""
    client, server = layout.box(tunnel.client), layout.box(tunnel.server)
    client_lines, server_lines, _ = _tunnel_labels(tunnel)
    lane = max(
        layout.bus_x[1] + LANE_GAP,
        client.x + client.w + 8 + max(map(text_width, client_lines)) + PAD,
        server.x + server.w + 8 + max(map(text_width, server_lines)) + PAD,
    )
    return lane, client, server


def _network_lines(scenario: Scenario, name: str) -> list[str]:
    net = scenario.network(name)
    return [name, net.subnet] + ([net.subnet6] if net.subnet6 else [])


def _caption(scenario: Scenario) -> list[str]:
    tunnel = scenario.tunnel
    if tunnel is None:
        return []
    lines = []
    for host, routes in (
        (tunnel.client, tunnel.client_routes),
        (tunnel.server, tunnel.server_routes),
    ):
        if routes:
            lines.append(f"{host} routes {', '.join(routes)} into the tunnel")
    return lines


# SVG --------------------------------------------------------------------------------------


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    element = ET.SubElement(
        parent, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()}
    )
    if text is not None:
        element.text = text
    return element


def _svg(layout: Layout) -> ET.Element:
    scenario = layout.scenario
    w, h = layout.width, layout.height
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": str(w),
            "height": str(h),
            "viewBox": f"0 0 {w} {h}",
            "role": "img",
        },
    )
    _el(
        root,
        "title",
        f"{scenario.name}: {scenario.description}" if scenario.description else scenario.name,
    )
    _el(root, "style", STYLE)
    _el(root, "rect", class_="background", x=0, y=0, width=w, height=h, fill="#ffffff")
    y = MARGIN + TITLE_FONT
    _el(root, "text", scenario.name, class_="title", x=MARGIN, y=y)
    if scenario.description:
        _el(root, "text", scenario.description, class_="subtitle", x=MARGIN, y=y + LINE_H + 6)

    for row, name in enumerate(layout.rows):
        group = _el(root, "g", class_="network", id=f"net-{name}")
        bus_y = layout.bus_y[row]
        _el(group, "title", f"network {name}: " + ", ".join(_network_lines(scenario, name)[1:]))
        x0, x1 = layout.bus_x
        _el(group, "line", class_="bus", x1=x0, y1=bus_y, x2=x1, y2=bus_y)
        name_line, *subnets = _network_lines(scenario, name)
        _el(
            group, "text", name_line, class_="name", x=layout.gutter, y=bus_y - 6, text_anchor="end"
        )
        for k, subnet in enumerate(subnets):
            _el(group, "text", subnet, class_="subnet", x=layout.gutter, y=bus_y + 14 + k * LINE_H,
                text_anchor="end")  # fmt: skip

    for band in layout.bands:
        for box in band:
            _host(root, layout, box)

    if scenario.tunnel is not None:
        _tunnel(root, layout, scenario.tunnel)

    caption_y = h - MARGIN - LINE_H * (len(_caption(scenario)) - 1)
    for k, line in enumerate(_caption(scenario)):
        _el(root, "text", line, class_="caption", x=MARGIN, y=caption_y + k * LINE_H)
    return root


def _host(root: ET.Element, layout: Layout, box: Box) -> None:
    classes = ["host"] + (["router"] if "router" in box.tags else [])
    classes += ["vpn"] if any(tag.startswith("VPN") for tag in box.tags) else []
    group = _el(root, "g", class_=" ".join(classes), id=f"host-{box.host.name}")
    described = ", ".join(f"{i.name} {i.address} on {i.network}" for i in box.host.interfaces)
    _el(group, "title", f"{box.host.name}: {described}")
    for link in box.links:
        name = f"{box.host.name}:{link.iface.name}"
        impaired = bool(link.wire)
        g = _el(
            group,
            "g",
            class_="link impaired" if impaired else "link",
            id=f"link-{box.host.name}.{link.iface.name}",
        )
        _el(
            g,
            "title",
            f"{name} on {link.iface.network}" + (f": {' '.join(link.wire)}" if impaired else ""),
        )
        edge = box.y if link.up else box.y + BOX_H
        bus = layout.bus_y[link.row]
        crossing = abs(link.row - (box.band - 1 if link.up else box.band)) > 0
        if crossing:  # passes over other buses: a gap in them shows it does not join them
            _el(
                g,
                "line",
                class_="halo",
                x1=link.x,
                y1=edge,
                x2=link.x,
                y2=bus + (4 if link.up else -4),
            )
        _el(g, "line", class_="wire", x1=link.x, y1=edge, x2=link.x, y2=bus)
        lines = [*link.lines, *link.wire]
        for j, line in enumerate(lines):
            if link.up:
                base = edge - PAD - (len(lines) - 1 - j) * LINE_H - 3
            else:
                base = edge + PAD + 11 + j * LINE_H
            cls = "address" if j < len(link.lines) else "impairment"
            _el(g, "text", line, class_=cls, x=link.x + 6, y=base)
        if impaired:
            near = layout.bus_y[box.band - 1] if link.up else layout.bus_y[box.band]
            _el(g, "circle", class_="mark", cx=link.x, cy=(edge + near) // 2, r=4)
    _el(group, "rect", class_="box", x=box.x, y=box.y, width=box.w, height=BOX_H, rx=4)
    cx = box.x + box.w // 2
    name_y = box.y + (17 if box.tags else 25)  # alone, the name is in the middle
    _el(group, "text", box.host.name, class_="name", x=cx, y=name_y, text_anchor="middle")
    if box.tags:
        _el(
            group,
            "text",
            ", ".join(box.tags),
            class_="tags",
            x=cx,
            y=box.y + 32,
            text_anchor="middle",
        )


def _tunnel(root: ET.Element, layout: Layout, tunnel: TunnelSpec) -> None:
    client_lines, server_lines, pipe_lines = _tunnel_labels(tunnel)
    group = _el(root, "g", class_="tunnel", id="tunnel")
    _el(
        group,
        "title",
        f"tunnel {tunnel.client} -> {tunnel.server}: "
        f"UDP port {tunnel.port} at {tunnel.server_address}",
    )
    client, server = layout.box(tunnel.client), layout.box(tunnel.server)
    if client.band == server.band:  # side by side: a straight pipe between them
        y = client.y + BOX_H // 2
        x1, x2 = client.x + client.w, server.x
        _el(group, "path", class_="pipe", d=f"M {x1} {y} H {x2}")
        _el(group, "circle", class_="end", cx=x1, cy=y, r=4)
        _el(group, "circle", class_="end", cx=x2, cy=y, r=4)
        _el(
            group,
            "text",
            " ".join(pipe_lines[1:]),
            class_="port",
            x=(x1 + x2) // 2,
            y=y - 6,
            text_anchor="middle",
        )
        for k, line in enumerate(client_lines):
            _el(group, "text", line, class_="client-end", x=x1 + 6, y=y + 15 + k * LINE_H)
        for k, line in enumerate(server_lines):
            _el(
                group,
                "text",
                line,
                class_="server-end",
                x=x2 - 6,
                y=y + 15 + k * LINE_H,
                text_anchor="end",
            )
        return
    lane, _, _ = _lane(layout, tunnel)
    y1, y2 = client.y + BOX_H // 2, server.y + BOX_H // 2
    x1, x2 = client.x + client.w, server.x + server.w
    _el(group, "path", class_="pipe", d=f"M {x1} {y1} H {lane} V {y2} H {x2}")
    _el(group, "circle", class_="end", cx=x1, cy=y1, r=4)
    _el(group, "circle", class_="end", cx=x2, cy=y2, r=4)
    for cls, x, y, lines in (
        ("client-end", x1, y1, client_lines),
        ("server-end", x2, y2, server_lines),
    ):
        _el(group, "text", lines[0], class_=cls, x=x + 8, y=y - 6)
        for k, line in enumerate(lines[1:]):
            _el(group, "text", line, class_=cls, x=x + 8, y=y + 15 + k * LINE_H)
    mid = (y1 + y2) // 2 - (len(pipe_lines) * LINE_H) // 2 + 11
    for k, line in enumerate(pipe_lines):
        cls = "port" if line.startswith("UDP") else "pipe-label"
        _el(group, "text", line, class_=cls, x=lane + 10, y=mid + k * LINE_H)
