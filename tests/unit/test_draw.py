"""`vpnsim draw`: the SVG is parsed back (xml.etree) and its content checked exactly: every host
and network named, each address beside its own host on the line to its own bus, the tunnel
between its two ends with its port, impaired links marked. No root needed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vpnsim.cli import main
from vpnsim.draw import render
from vpnsim.model import Host, Scenario
from vpnsim.scenario import load
from vpnsim.seed import seed_tunnel

ROOT = Path(__file__).parents[2]
SCENARIOS = ROOT / "vpnsim" / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))
DOCS = ROOT / "docs" / "scenarios"
SVG = "http://www.w3.org/2000/svg"
NS = {"s": SVG}

Box = tuple[int, int, int, int]  # x, y, width, height


def draw(capsys: pytest.CaptureFixture[str], scenario: str | Path) -> str:
    assert main(["draw", str(scenario)]) == 0
    return capsys.readouterr().out


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode())


def group(root: ET.Element, ident: str) -> ET.Element:
    found = root.find(f".//s:g[@id='{ident}']", NS)
    assert found is not None, f"no group {ident}"
    return found


def own_texts(element: ET.Element) -> list[str]:
    """The texts directly in a group (not those of the groups inside it)."""
    return [t.text or "" for t in element.findall("s:text", NS)]


def all_texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{{{SVG}}}text")]


def ids(root: ET.Element, cls: str) -> list[str]:
    return [
        g.get("id", "") for g in root.iter(f"{{{SVG}}}g") if cls in (g.get("class") or "").split()
    ]


def num(element: ET.Element, name: str) -> int:
    return int(element.get(name, "nan"))


def box_of(root: ET.Element, host: str) -> Box:
    rect = group(root, f"host-{host}").find("s:rect", NS)
    assert rect is not None
    return num(rect, "x"), num(rect, "y"), num(rect, "width"), num(rect, "height")


def bus_y(root: ET.Element, network: str) -> int:
    line = group(root, f"net-{network}").find("s:line", NS)
    assert line is not None and line.get("y1") == line.get("y2")
    return num(line, "y1")


def inside(x: int, y: int, box: Box) -> bool:
    bx, by, bw, bh = box
    return bx <= x <= bx + bw and by <= y <= by + bh


def check_links(root: ET.Element, path: Path) -> None:
    """Every interface of the file: a line from its host's box straight to its network's bus,
    and its address beside that line, between the box and the bus."""
    scenario = load(path).scenario
    for host in scenario.hosts:
        box = box_of(root, host.name)
        x, y, w, h = box
        for iface in host.interfaces:
            link = group(group(root, f"host-{host.name}"), f"link-{host.name}.{iface.name}")
            (line,) = [e for e in link.findall("s:line", NS) if e.get("class") == "wire"]
            lx, y1, y2 = num(line, "x1"), num(line, "y1"), num(line, "y2")
            assert num(line, "x2") == lx and x < lx < x + w
            assert y1 in (y, y + h), "the line starts on the box's top or bottom edge"
            assert y2 == bus_y(root, iface.network), "and ends on its own network's bus"
            label = link.find("s:text", NS)
            assert label is not None
            assert label.text == f"{iface.name} {iface.address}"
            assert x < num(label, "x") < x + w and num(label, "x") > lx
            assert min(y1, y2) < num(label, "y") < max(y1, y2)


# The shipped scenarios ------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_is_drawn_whole(
    capsys: pytest.CaptureFixture[str], path: Path
) -> None:
    svg = draw(capsys, path)
    root = parse(svg)
    scenario = load(path).scenario
    assert root.tag == f"{{{SVG}}}svg"
    assert ids(root, "host") == [f"host-{h.name}" for h in _band_order(scenario, root)]
    assert sorted(ids(root, "network")) == sorted(f"net-{n.name}" for n in scenario.networks)
    for net in scenario.networks:
        assert own_texts(group(root, f"net-{net.name}"))[:2] == [net.name, net.subnet]
    for host in scenario.hosts:
        assert own_texts(group(root, f"host-{host.name}"))[0] == host.name
    check_links(root, path)
    assert (scenario.tunnel is None) == (root.find(".//s:g[@id='tunnel']", NS) is None)
    # Boxes never overlap, and no line to a bus passes through another host's box.
    boxes = {h.name: box_of(root, h.name) for h in scenario.hosts}
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (ax, ay, aw, ah), (bx, by, bw, bh) = boxes[a], boxes[b]
            assert ax + aw < bx or bx + bw < ax or ay + ah < by or by + bh < ay, (a, b)
    _no_line_through_a_box(root, boxes)


def _band_order(scenario: Scenario, root: ET.Element) -> list[Host]:
    """Hosts in the order drawn: by their box's y, then x (bands top down, left to right)."""
    return sorted(scenario.hosts, key=lambda h: box_of(root, h.name)[1::-1])


def _no_line_through_a_box(root: ET.Element, boxes: dict[str, Box]) -> None:
    for host_group in root.findall("s:g[@class]", NS):
        if "host" not in (host_group.get("class") or "").split():
            continue
        owner = host_group.get("id", "").removeprefix("host-")
        for line in host_group.iter(f"{{{SVG}}}line"):
            x, y1, y2 = num(line, "x1"), num(line, "y1"), num(line, "y2")
            for name, (bx, by, bw, bh) in boxes.items():
                if name != owner:
                    crosses = bx <= x <= bx + bw and min(y1, y2) < by + bh and max(y1, y2) > by
                    assert not crosses, f"{owner}'s line at x={x} crosses {name}'s box"


def test_seed_tunnel_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    root = parse(draw(capsys, SCENARIOS / "seed-tunnel.toml"))
    assert own_texts(root)[:2] == [
        "seed-tunnel",
        "SEED VPN Tunneling Lab: U reaches 192.168.60.0/24 only through the tunnel",
    ]
    assert own_texts(group(root, "net-net-10.9.0.0")) == ["net-10.9.0.0", "10.9.0.0/24"]
    assert own_texts(group(root, "host-U")) == ["U", "VPN client"]
    assert own_texts(group(root, "host-server")) == ["server", "VPN server, router"]
    assert own_texts(group(root, "host-V")) == ["V"]
    assert all_texts(group(root, "host-server")) == [
        "eth0 10.9.0.11/24",
        "eth1 192.168.60.11/24",
        "server",
        "VPN server, router",
    ]
    assert all_texts(group(root, "host-V2")) == ["eth0 192.168.60.6/24", "V2"]
    # The lab's picture: U above the outside net, the server between both nets, V and V2 below.
    outside, inside_ = bus_y(root, "net-10.9.0.0"), bus_y(root, "net-192.168.60.0")
    assert outside < inside_
    u, server, v = box_of(root, "U"), box_of(root, "server"), box_of(root, "V")
    assert u[1] + u[3] < outside < server[1] < server[1] + server[3] < inside_ < v[1]
    assert box_of(root, "V2")[1] == v[1]
    assert "U routes 192.168.60.0/24 into the tunnel" in own_texts(root)
    assert not ids(root, "impaired")


def test_the_tunnel_runs_from_the_clients_box_to_the_servers_with_its_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = parse(draw(capsys, SCENARIOS / "seed-site-to-site.toml"))
    tunnel = group(root, "tunnel")
    path = tunnel.find("s:path", NS)
    assert path is not None
    match = re.fullmatch(r"M (\d+) (\d+) H (\d+) V (\d+) H (\d+)", path.get("d", ""))
    assert match, path.get("d")
    x1, y1, lane, y2, x2 = map(int, match.groups())
    (cx, cy, cw, ch), (sx, sy, sw, sh) = box_of(root, "client"), box_of(root, "server")
    assert (x1, y1) == (cx + cw, cy + ch // 2), "starts on the client's right edge"
    assert (x2, y2) == (sx + sw, sy + sh // 2), "ends on the server's right edge"
    assert lane > max(int(line.get("x2", 0)) for line in root.iter(f"{{{SVG}}}line"))
    labels = {t.text: (num(t, "x"), num(t, "y")) for t in tunnel.findall("s:text", NS)}
    assert list(labels) == [
        "TUN 192.168.53.99/24",
        "TUN 192.168.53.1/24",
        "tunnel (TUN)",
        "UDP port 9090",
        "to 10.9.0.11",
    ]
    # Each TUN address beside its own end of the pipe.
    assert (
        labels["TUN 192.168.53.99/24"][0] > x1 and abs(labels["TUN 192.168.53.99/24"][1] - y1) < 10
    )
    assert labels["TUN 192.168.53.1/24"][0] > x2 and abs(labels["TUN 192.168.53.1/24"][1] - y2) < 10
    assert labels["UDP port 9090"][0] > lane and y1 < labels["UDP port 9090"][1] < y2
    # The chain of networks as rows; each router between the two nets it joins.
    rows = ["net-192.168.50.0", "net-10.9.0.0", "net-192.168.60.0"]
    ys = [bus_y(root, name) for name in rows]
    assert ys == sorted(ys)
    assert ys[0] < cy < ys[1] < sy < ys[2]
    for host in ("U1", "U2"):
        assert box_of(root, host)[1] < ys[0]
    for host in ("V", "V2"):
        assert box_of(root, host)[1] > ys[2]
    assert own_texts(root)[-2:] == [
        "client routes 192.168.60.0/24 into the tunnel",
        "server routes 192.168.50.0/24 into the tunnel",
    ]


def test_an_impaired_link_is_marked_with_what_its_wire_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = parse(draw(capsys, SCENARIOS / "example-lossy-link.toml"))
    assert ids(root, "impaired") == ["link-U.eth0"]
    link = group(root, "link-U.eth0")
    assert link.get("class") == "link impaired"
    assert all_texts(link) == [
        "eth0 10.9.0.5/24",
        "wire: loss 20%, delay 5 ms",
        "(seed 1, both directions)",
    ]
    assert [t.get("class") for t in link.findall("s:text", NS)] == [
        "address",
        "impairment",
        "impairment",
    ]
    mark = link.find("s:circle", NS)
    line = link.find("s:line[@class='wire']", NS)
    assert mark is not None and line is not None
    assert num(mark, "cx") == num(line, "x1")
    assert num(line, "y1") < num(mark, "cy") < num(line, "y2")
    title = link.find("s:title", NS)
    assert title is not None and "loss 20%" in (title.text or "")
    # The style that makes it red and dashed is in the file itself.
    style = root.find("s:style", NS)
    assert style is not None and ".impaired .wire" in (style.text or "")
    assert "stroke-dasharray" in (style.text or "").split(".impaired .wire")[1].split("}")[0]


def test_ipv6_addresses_and_tap_ends(capsys: pytest.CaptureFixture[str]) -> None:
    root = parse(draw(capsys, SCENARIOS / "example-ipv6-inside.toml"))
    assert all_texts(group(root, "link-server.eth1")) == ["eth1 192.168.60.11/24", "fd00:60::11/64"]
    assert own_texts(group(root, "net-inside")) == ["inside", "192.168.60.0/24", "fd00:60::/64"]
    tunnel = all_texts(group(root, "tunnel"))
    assert tunnel[:4] == [
        "TUN 192.168.53.99/24",
        "fd00:53::99/64",
        "TUN 192.168.53.1/24",
        "fd00:53::1/64",
    ]
    tap = all_texts(group(parse(draw(capsys, "seed-tap")), "tunnel"))
    assert tap[:3] == ["TAP 192.168.53.99/24", "TAP 192.168.53.1/24", "tunnel (TAP)"]


def test_a_scenario_without_a_tunnel_has_no_tunnel(capsys: pytest.CaptureFixture[str]) -> None:
    root = parse(draw(capsys, SCENARIOS / "example-router-chain.toml"))
    assert root.find(".//s:g[@id='tunnel']", NS) is None
    ys = [bus_y(root, name) for name in ("left", "middle", "right")]
    assert ys == sorted(ys)
    a, r1, r2, b = (box_of(root, h)[1] for h in ("A", "r1", "r2", "B"))
    assert a < ys[0] < r1 < ys[1] < r2 < ys[2] < b
    assert own_texts(group(root, "host-r1")) == ["r1", "router"]
    assert own_texts(group(root, "host-A")) == ["A"]


# The same bytes, every time ---------------------------------------------------------------


def test_the_same_scenario_gives_byte_identical_svg(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = SCENARIOS / "example-lossy-link.toml"
    first = draw(capsys, path)
    assert draw(capsys, path) == first
    out = tmp_path / "d.svg"
    assert main(["draw", str(path), "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_bytes() == first.encode()
    # A copy elsewhere, under another file name: nothing of the path is in the drawing.
    copy = tmp_path / "elsewhere.toml"
    copy.write_text(path.read_text())
    assert draw(capsys, copy) == first
    # By name, a shipped scenario file is the same file.
    assert draw(capsys, "example-lossy-link") == first


def test_the_built_in_lab_draws_the_same_topology_as_its_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    by_name = parse(draw(capsys, "seed-tunnel"))  # built in (vpnsim.seed), as `lab up` reads it
    from_file = parse(draw(capsys, SCENARIOS / "seed-tunnel.toml"))
    for cls in ("host", "network", "link"):
        assert ids(by_name, cls) == ids(from_file, cls)
    for ident in [*ids(from_file, "host"), "tunnel"]:
        assert all_texts(group(by_name, ident)) == all_texts(group(from_file, ident))
    assert render(seed_tunnel()) == render(seed_tunnel())


def test_the_svg_is_self_contained(capsys: pytest.CaptureFixture[str]) -> None:
    for path in SHIPPED:
        svg = draw(capsys, path)
        root = parse(svg)
        tags = {element.tag for element in root.iter()}
        assert tags <= {
            f"{{{SVG}}}{t}"
            for t in ("svg", "title", "style", "rect", "text", "g", "line", "circle", "path")
        }, tags
        for element in root.iter():
            assert not any("href" in name or name.startswith("on") for name in element.attrib)
        assert "url(" not in svg and "@import" not in svg and "<script" not in svg
        assert svg.startswith(
            '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'
        )


def test_text_is_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (SCENARIOS / "seed-tls.toml").read_text()
    path = tmp_path / "amp.toml"
    path.write_text(
        text.replace(
            'description = "SEED TLS/SSL VPN Lab: U reaches V only through the TLS tunnel; '
            'impostors are refused"',
            'description = "A & B <script>alert(1)</script> \\"quoted\\""',
        )
    )
    root = parse(draw(capsys, path))
    assert own_texts(root)[1] == 'A & B <script>alert(1)</script> "quoted"'
    assert root.find(".//s:script", NS) is None


# Layouts beyond the shipped ones -----------------------------------------------------------

LAN = """\
[scenario]
name = "lan-vpn"

[networks]
lan = { subnet = "10.0.0.0/24" }
dmz = { subnet = "10.5.0.0/24" }
back = { subnet = "10.6.0.0/24" }

[hosts.A]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.2/24" }]

[hosts.B]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.3/24" }]

[hosts.C]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.4/24" }]

[hosts.R]
router = true
interfaces = [
    { name = "eth0", network = "lan", address = "10.0.0.1/24" },
    { name = "eth1", network = "dmz", address = "10.5.0.1/24" },
    { name = "eth2", network = "back", address = "10.6.0.1/24" },
]

[hosts.D]
interfaces = [
    { name = "eth0", network = "back", address = "10.6.0.2/24" },
    { name = "eth1", network = "dmz", address = "10.5.0.9/24" },
]

[tunnel]
client = "A"
server = "B"
server_address = "10.0.0.3"
port = 1194
client_tun = "192.168.53.99/24"
server_tun = "192.168.53.1/24"
client_routes = []

[[impairments]]
link = "R:eth2"
burst = { p = 0.05, r = 0.5 }
direction = "out"
"""


def test_ends_on_one_network_and_lines_past_a_bus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lan.toml"
    path.write_text(LAN)
    root = parse(draw(capsys, path))
    check_links(root, path)
    boxes = {h: box_of(root, h) for h in "ABCDR"}
    _no_line_through_a_box(root, boxes)
    # Client and server side by side: a straight pipe from one box to the other.
    tunnel = group(root, "tunnel")
    path_el = tunnel.find("s:path", NS)
    assert path_el is not None
    (ax, ay, aw, ah), (bx, by, _, _) = boxes["A"], boxes["B"]
    assert ay == by
    assert path_el.get("d") == f"M {ax + aw} {ay + ah // 2} H {bx}"
    assert all_texts(tunnel) == [
        "UDP port 1194 to 10.0.0.3",
        "TUN 192.168.53.99/24",
        "TUN 192.168.53.1/24",
    ]
    assert not any("routes" in line for line in own_texts(root))  # no routes into it
    # R's line to the bus two rows away leaves a gap (a halo) in the bus it passes over.
    link = group(root, "link-R.eth2")
    assert link.get("class") == "link impaired"
    assert [e.get("class") for e in link.findall("s:line", NS)] == ["halo", "wire"]
    assert all_texts(link)[1:] == [
        "wire: burst loss GilbertElliott(p=0.05, r=0.5) (mean 9.09%)",
        "(seed 0, out only)",
    ]
    assert [e.get("class") for e in group(root, "link-R.eth0").findall("s:line", NS)] == ["wire"]


# Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "router = true",
            "routr = true",
            "24: hosts.server.routr: unknown key (check its spelling; see `vpnsim schema`)",
        ),
        (
            'routes = [{ dst = "default", via = "192.168.60.11" }]',
            'routes = [{ dst = "default", via = "10.7.0.1" }]',
            "32: hosts.V.routes[0].via: gateway 10.7.0.1 is not on any network of V "
            "(192.168.60.0/24): it cannot be reached",
        ),
        (
            'link = "U:eth0"',
            'link = "U:eth9"',
            "50: impairments[0].link: unknown link 'U:eth9' (links: U:eth0, server:eth0, "
            "server:eth1, V:eth0, V2:eth0)",
        ),
    ],
    ids=["schema", "cross-reference", "impairment"],
)
def test_a_malformed_scenario_gives_validates_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, problem: str
) -> None:
    name = "example-lossy-link" if "eth9" in new else "seed-tunnel"
    text = (SCENARIOS / f"{name}.toml").read_text()
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, 1))
    out = tmp_path / "never.svg"
    assert main(["draw", str(bad), "-o", str(out)]) == 2
    drawn = capsys.readouterr()
    assert main(["validate", str(bad)]) == 2
    validated = capsys.readouterr()
    assert drawn.out == "" and not out.exists()
    assert drawn.err == validated.err == f"{bad}:{problem}\n"


def test_a_toml_syntax_error_and_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[scenario\nname = 1\n")
    for path in (broken, tmp_path / "missing.toml"):
        assert main(["draw", str(path)]) == 2
        drawn = capsys.readouterr().err
        main(["validate", str(path)])
        assert drawn == capsys.readouterr().err
        assert drawn.startswith(f"{path}: ")


def test_an_unknown_name_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", "seed-tunel"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vpnsim: error: unknown scenario 'seed-tunel'; known scenarios: ")
    assert "seed-tunnel" in err and "example-lossy-link" in err


# The diagrams in the README ------------------------------------------------------------------


def test_the_committed_diagrams_are_what_vpnsim_draw_makes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/scenarios/NAME.svg is `vpnsim draw scenarios/NAME.toml`, and the README shows each
    (it says how to regenerate them)."""
    assert sorted(p.stem for p in DOCS.glob("*.svg")) == [p.stem for p in SHIPPED]
    stale = [p.stem for p in SHIPPED if (DOCS / f"{p.stem}.svg").read_text() != draw(capsys, p)]
    assert not stale, f"regenerate docs/scenarios/ (see the README): {stale}"
    readme = (ROOT / "README.md").read_text()
    for p in SHIPPED:
        assert f"](docs/scenarios/{p.stem}.svg)" in readme
