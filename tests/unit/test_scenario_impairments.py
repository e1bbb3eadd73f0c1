"""Impairments in scenario files: `[[impairments]]` and the `impair` / `clear_impairment` setup
actions. Every mistake is one located line, like the rest of the format. No root needed."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from vpnsim.impair.spec import Event, GilbertElliott, Impairment
from vpnsim.scenario import ImpairmentModel, ScenarioFileError, load

SCENARIOS = Path(__file__).parents[2] / "vpnsim" / "scenarios"

VALID = """\
[scenario]
name = "lossy"

[networks]
lan = { subnet = "10.0.0.0/24" }

[hosts.A]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.2/24" }]

[hosts.B]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.3/24" }]

[[impairments]]
link = "A:eth0"
seed = 7
loss = 0.2
delay_ms = 5
rate = "10mbit"
events = [
    "3:drop",
    "7:corrupt=40",
]

[[checks]]
name = "cut"
type = "unreachable"
from = "A"
to = "10.0.0.3"
setup = [
    { impair = { link = "A:eth0", loss = 1.0 } },
]

[[checks]]
name = "clean"
type = "reach"
from = "A"
to = "10.0.0.3"
setup = [{ clear_impairment = "A:eth0" }]
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as raised:
        load(path)
    return [p.replace(str(path), "s.toml") for p in raised.value.problems]


def loaded_impairment(tmp_path: Path, table: str) -> Impairment:
    """The impairment of a file whose only `[[impairments]]` entry is `table`."""
    path = tmp_path / "one.toml"
    head = VALID.split("[[impairments]]")[0]
    path.write_text(f'{head}[[impairments]]\nlink = "B:eth0"\n{table}\n')
    (entry,) = load(path).impairments
    return entry.impairment()


def test_impairments_and_their_actions_load(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(VALID)
    loaded = load(path)
    (entry,) = loaded.impairments
    assert entry.link == "A:eth0"
    assert entry.impairment() == Impairment(
        seed=7,
        loss=0.2,
        delay_ms=5.0,
        rate=10_000_000,
        events=(Event(3, "drop"), Event(7, "corrupt", 40)),
    )
    cut, clean = loaded.checks
    (action,) = cut.setup
    assert action.impair is not None
    assert (action.impair.link, action.impair.impairment()) == ("A:eth0", Impairment(loss=1.0))
    assert clean.setup[0].clear_impairment == "A:eth0"


def test_a_file_without_impairments_has_none() -> None:
    assert load(SCENARIOS / "seed-tunnel.toml").impairments == ()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("rate = 10_000_000", Impairment(rate=10_000_000)),
        ('rate = "512kbit"', Impairment(rate=512_000)),
        ('rate = "1.5MBIT"', Impairment(rate=1_500_000)),
        ("loss = 1", Impairment(loss=1.0)),  # a TOML integer is a number too
        (
            "burst = { p = 0.05, r = 0.5 }\ndirection = 'out'",
            Impairment(burst=GilbertElliott(0.05, 0.5), direction="out"),
        ),
        (
            "corrupt = 0.1\ncorrupt_bytes = [20, 40]\nfix_checksums = true",
            Impairment(corrupt=0.1, corrupt_bytes=(20, 40), fix_checksums=True),
        ),
        (
            'dup = 0.01\nreorder = 0.02\njitter_ms = 2.5\nmtu = 1400\nevents = ["2:delay=30@out"]',
            Impairment(
                dup=0.01,
                reorder=0.02,
                jitter_ms=2.5,
                mtu=1400,
                events=(Event(2, "delay", 30, "out"),),
            ),
        ),
        ("", Impairment()),  # a clean wire
    ],
)
def test_every_field_reaches_the_impairment(
    tmp_path: Path, table: str, expected: Impairment
) -> None:
    assert loaded_impairment(tmp_path, table) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "loss = 0.2",
            "loss = 1.5",
            "s.toml:16: impairments[0].loss: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            "loss = 0.2",
            "los = 0.2",
            "s.toml:16: impairments[0].los: unknown key (check its spelling; see `vpnsim schema`)",
        ),
        (
            "loss = 0.2",
            'loss = "20%"',
            "s.toml:16: impairments[0].loss: Input should be a valid number (got '20%')",
        ),
        (
            'link = "A:eth0"\n',
            "",
            "s.toml:13: impairments[0].link: required key is missing",
        ),
        (
            'link = "A:eth0"\nseed',
            'link = "A"\nseed',
            "s.toml:14: impairments[0].link: 'A': use HOST:IFNAME, a host's interface, like U:eth0",
        ),
        (
            'link = "A:eth0"\nseed',
            'link = "A:eth1"\nseed',
            "s.toml:14: impairments[0].link: unknown link 'A:eth1' (links: A:eth0, B:eth0)",
        ),
        (
            'rate = "10mbit"',
            'rate = "10mbps"',
            "s.toml:18: impairments[0].rate: expected a rate like 10mbit, 512kbit or 1000000 "
            "(bit/s), got '10mbps'",
        ),
        (
            'rate = "10mbit"',
            "rate = 1.5e6",
            "s.toml:18: impairments[0].rate: expected bit/s as an integer or a string like "
            "'10mbit', got 1500000.0",
        ),
        (
            'rate = "10mbit"',
            'rate = "1kbit"',
            "s.toml:18: impairments[0].rate: expected at least 8000 bit/s, got 1000",
        ),
        (
            'rate = "10mbit"',
            "rate = 1000",
            "s.toml:18: impairments[0].rate: expected at least 8000 bit/s, got 1000",
        ),
        (
            '"7:corrupt=40",',
            '"7:explode",',
            "s.toml:21: impairments[0].events[1]: '7:explode': use PACKET:ACTION[=VALUE][@out|in], "
            "ACTION one of drop, dup, corrupt, reorder, delay (like 3:drop, 7:corrupt=40, "
            "2:delay=30@out)",
        ),
        (
            '"3:drop",',
            '"0:drop",',
            "s.toml:20: impairments[0].events[0]: '0:drop': packets count from 1; actions: drop, "
            "dup, corrupt, reorder, delay",
        ),
        (
            '"3:drop",',
            '"3:delay=20000",',
            "s.toml:20: impairments[0].events[0]: '3:delay=20000': at most 10000 ms",
        ),
        (
            'events = [\n    "3:drop",\n    "7:corrupt=40",\n]',
            'events = "3:drop"',
            "s.toml:19: impairments[0].events: Input should be a valid list (got '3:drop')",
        ),
        (
            "delay_ms = 5",
            "delay_ms = -5",
            "s.toml:17: impairments[0].delay_ms: Input should be greater than or equal to 0 "
            "(got -5)",
        ),
        (
            "delay_ms = 5",
            "direction = 'up'",
            "s.toml:17: impairments[0].direction: Input should be 'both', 'out' or 'in' (got 'up')",
        ),
        (
            "delay_ms = 5",
            "corrupt_bytes = [40]",
            "s.toml:17: impairments[0].corrupt_bytes: List should have at least 2 items after "
            "validation, not 1",
        ),
        (
            "delay_ms = 5",
            "burst = { p = 0.1, r = 2 }",
            "s.toml:17: impairments[0].burst.r: Input should be less than or equal to 1 (got 2)",
        ),
        (
            "delay_ms = 5",
            "burst = { p = 0.1 }",
            "s.toml:17: impairments[0].burst.r: required key is missing",
        ),
        (
            "seed = 7",
            "seed = -1",
            "s.toml:15: impairments[0].seed: Input should be greater than or equal to 0 (got -1)",
        ),
    ],
)
def test_each_mistake_in_an_impairment_is_one_located_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert VALID.count(old) == 1
    assert problems(tmp_path, VALID.replace(old, new)) == expected.split("\n")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # only the whole Impairment sees these: a cross-check, at the key it names
            "delay_ms = 5",
            "corrupt_bytes = [40, 20]",
            "s.toml:17: impairments[0].corrupt_bytes: expected [start, end) with 0 <= start < "
            "end, got (40, 20)",
        ),
        (  # ...or at the table, when it names two keys
            "delay_ms = 5",
            "burst = { p = 0.1, r = 0.5 }",
            "s.toml:13: impairments[0]: loss and burst: give one loss model, not both",
        ),
        (
            '{ impair = { link = "A:eth0", loss = 1.0 } }',
            '{ impair = { link = "A:eth0", loss = 1.0, burst = { p = 0.1, r = 0.5 } } }',
            "s.toml:30: checks[0].setup[0].impair: loss and burst: give one loss model, not both",
        ),
    ],
)
def test_a_value_the_impairment_itself_rejects_is_a_located_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert VALID.count(old) == 1
    assert problems(tmp_path, VALID.replace(old, new)) == [expected]


def test_a_link_impaired_twice_is_a_duplicate(tmp_path: Path) -> None:
    text = VALID.replace("\n[[checks]]", '\n[[impairments]]\nlink = "A:eth0"\n\n[[checks]]', 1)
    assert problems(tmp_path, text) == [
        "s.toml:25: impairments[1].link: duplicate link 'A:eth0' (also at impairments[0])"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '{ impair = { link = "A:eth0", loss = 1.0 } }',
            '{ impair = { link = "C:eth0", loss = 1.0 } }',
            "s.toml:30: checks[0].setup[0].impair.link: unknown link 'C:eth0' "
            "(links: A:eth0, B:eth0)",
        ),
        (
            '{ impair = { link = "A:eth0", loss = 1.0 } }',
            '{ impair = { link = "A:eth0", loss = 2.0 } }',
            "s.toml:30: checks[0].setup[0].impair.loss: Input should be less than or equal to 1 "
            "(got 2.0)",
        ),
        (
            '{ impair = { link = "A:eth0", loss = 1.0 } }',
            "{ impair = { loss = 1.0 } }",
            "s.toml:30: checks[0].setup[0].impair.link: required key is missing",
        ),
        (
            '{ impair = { link = "A:eth0", loss = 1.0 } }',
            '{ impair = { link = "A:eth0", lossy = 1.0 } }',
            "s.toml:30: checks[0].setup[0].impair.lossy: unknown key (check its spelling; see "
            "`vpnsim schema`)",
        ),
        (
            '{ clear_impairment = "A:eth0" }',
            '{ clear_impairment = "B:eth1" }',
            "s.toml:38: checks[1].setup[0].clear_impairment: unknown link 'B:eth1' "
            "(links: A:eth0, B:eth0)",
        ),
        (
            '{ clear_impairment = "A:eth0" }',
            "{ clear_impairment = true }",
            "s.toml:38: checks[1].setup[0].clear_impairment: Input should be a valid string "
            "(got True)",
        ),
        (
            '{ clear_impairment = "A:eth0" }',
            '{ clear_impairment = "A:eth0", stop = "client" }',
            "s.toml:38: checks[1].setup[0]: an action is exactly one of delete_route, add_route, "
            "sysctl, stop, start, impair, clear_impairment",
        ),
    ],
)
def test_each_mistake_in_an_impairment_action_is_one_located_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert VALID.count(old) == 1
    assert problems(tmp_path, VALID.replace(old, new)) == [expected]


def test_the_shipped_example_impairs_u_eth0_with_seeded_loss_and_delay() -> None:
    loaded = load(SCENARIOS / "example-lossy-link.toml")
    (entry,) = loaded.impairments
    assert entry.link == "U:eth0"
    assert entry.impairment() == Impairment(seed=1, loss=0.2, delay_ms=5.0)
    assert loaded.scenario.tunnel is not None
    actions = [action for check in loaded.checks for action in check.setup]
    assert [a.impair.impairment() for a in actions if a.impair] == [Impairment(loss=1.0)]
    assert [a.clear_impairment for a in actions if a.clear_impairment] == ["U:eth0"]


def test_the_model_and_the_impairment_know_the_same_fields() -> None:
    fields = set(ImpairmentModel.model_fields) - {"link"}
    assert fields == set(Impairment.__dataclass_fields__)


def test_the_shipped_schema_checks_impairments_as_an_editor_would() -> None:
    schema = json.loads((SCENARIOS / "schema.json").read_text())
    data = tomllib.loads(VALID)
    jsonschema.validate(data, schema)
    data["impairments"][0]["los"] = 0.2
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        jsonschema.validate(data, schema)
    del data["impairments"][0]["los"]
    data["impairments"][0]["events"].append("3:explode")
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(data, schema)


@pytest.mark.parametrize("module", ["vpnsim.impair.wire", "vpnsim.tunnel"])
def test_the_wire_and_the_tunnel_start_without_pydantic(module: str) -> None:
    # Both start in a lab for every run: pydantic's import would cost them ~0.1 s each.
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "vpnsim.impair.spec" in imported or module == "vpnsim.tunnel"
    assert not {name for name in imported if name.split(".")[0] == "pydantic"}
