"""The task registries: one per lab, each task with its check, prerequisites and evidence;
the runs that attempt them; the TLS lab's submission contract and its small parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpnsim import tlslab
from vpnsim.grade import trace
from vpnsim.grade.registry import (
    EVERYTHING,
    LABS,
    Entry,
    LabTasks,
    Run,
    Task,
    UnknownLab,
    lab_of,
    lab_tasks,
)
from vpnsim.grade.rubric import RubricError, load_rubric, parse_rubric
from vpnsim.grade.submission import TlsContract, load_submission
from vpnsim.grade.tasks import TASK_IDS, Outcome, Verdict
from vpnsim.grade.tls_checks import tls_records
from vpnsim.grade.tls_ends import fill_command, wrong_name
from vpnsim.grade.tls_grader import tls_places, tls_scenario
from vpnsim.seed import seed_tunnel

TLS_IDS = (
    "tunnel_up",
    "encrypted",
    "client_interop",
    "server_auth",
    "server_interop",
    "client_auth",
    "multiple_clients",
    "large",
)


def _check(run: object) -> str:
    return "ok"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_each_lab_has_one_registry_with_a_check_per_task(lab: str) -> None:
    registry = lab_tasks(lab)
    assert registry.lab == lab
    for entry in registry.entries:
        assert callable(entry.check), entry.task.id
        assert entry.evidence and set(entry.evidence) <= set(EVERYTHING)
        assert entry.task.checks.endswith(".")
    attempted = [task for run in registry.runs for task in run.tasks]
    assert sorted(attempted) == sorted(registry.ids)  # each task in exactly one run
    rubric = load_rubric(None, lab)
    assert list(rubric.points) == list(registry.ids) and rubric.total == 100.0


def test_the_tunnel_lab_is_the_default_and_keeps_its_ids() -> None:
    assert lab_tasks("tunnel").ids == TASK_IDS
    assert lab_tasks("tls").ids == TLS_IDS
    assert lab_tasks("tls").by_id["server_auth"].needs == ("client_interop",)
    assert lab_tasks("tls").by_id["client_auth"].needs == ("server_interop",)


def test_an_unknown_lab_names_the_known_ones() -> None:
    with pytest.raises(UnknownLab, match=r"lab 'ipsec' cannot be graded \(known: tunnel, tls\)"):
        lab_tasks("ipsec")


def test_a_registry_refuses_a_later_need_and_an_unattempted_task() -> None:
    first, second = Task("a", "A", "A."), Task("b", "B", "B.", ("a",))
    good = LabTasks(
        "x", (Entry(first, _check), Entry(second, _check)), (Run("r", "r", ("a", "b")),), ""
    )
    assert good.ids == ("a", "b")
    with pytest.raises(ValueError, match="b needs unknown a"):
        LabTasks(
            "x", (Entry(second, _check), Entry(first, _check)), (Run("r", "r", ("a", "b")),), ""
        )
    with pytest.raises(ValueError, match="the runs attempt"):
        LabTasks("x", (Entry(first, _check), Entry(second, _check)), (Run("r", "r", ("a",)),), "")


def test_the_verdicts_tell_their_lab() -> None:
    assert lab_of(dict.fromkeys(TLS_IDS)).lab == "tls"
    assert lab_of(dict.fromkeys(TASK_IDS)).lab == "tunnel"
    assert lab_of({}).lab == "tunnel"


def test_a_tls_task_is_blocked_by_its_own_labs_prerequisite() -> None:
    outcome = Outcome(lab=lab_tasks("tls"))
    outcome.record("client_interop", Verdict(False, "your client exited with status 1: boom"))
    assert outcome.blocker("server_auth") == (
        "needs client_interop (Your client with the reference TLS server), which failed: "
        "your client exited with status 1"
    )
    assert list(outcome.ordered()) == list(TLS_IDS)


def test_a_rubric_for_the_tls_lab_knows_only_its_tasks() -> None:
    with pytest.raises(RubricError, match=r"points\.task3: no such task"):
        parse_rubric("[points]\ntask3 = 5\n", "r.toml", lab_tasks("tls").ids)
    assert parse_rubric("[points]\nencrypted = 5\n", "r.toml", TLS_IDS).total == 5.0


def test_the_seed_addresses_come_from_seed_py() -> None:
    lab = seed_tunnel()
    assert lab.tunnel is not None
    assert ("U", "server", lab.tunnel.server_address) == (trace.U, trace.SERVER, trace.SERVER_ADDR)
    assert (trace.U_ADDR, trace.SERVER_INNER, trace.V_ADDR) == (
        "10.9.0.5",
        "192.168.60.11",
        "192.168.60.5",
    )
    assert (
        lab.tunnel.client_tun,
        lab.tunnel.port,
        "192.168.53.",
    ) == (trace.CLIENT_TUN, trace.PORT, trace.TUN_PREFIX)


def test_grade_modules_stay_small() -> None:
    grade = Path(trace.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in grade.glob("*.py")}
    assert max(sizes.values()) <= 600, sizes


# -- the TLS lab's contract and parsers ---------------------------------------------------


def _folder(tmp_path: Path, toml: str, *files: str) -> Path:
    folder = tmp_path / "bob"
    folder.mkdir()
    (folder / "vpnsim.toml").write_text(toml)
    for name in files:
        (folder / name).write_text("print('hi')\n")
    return folder


def test_a_tls_submission_defaults_to_issued_certificates(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 'lab = "tls"\n', "tls_client.py", "tls_server.py")
    sub = load_submission(folder, "tls")
    assert sub.problem == ""
    assert sub.client == ("python3", "-u", "tls_client.py")
    assert sub.tls == TlsContract()
    assert (sub.tls.server_name, sub.tls.port, sub.tls.certificates) == (
        "vpnlabserver.com",
        4433,
        "issued",
    )


def test_a_tls_submission_names_its_own_material(tmp_path: Path) -> None:
    toml = (
        'lab = "tls"\nclient = "./vpnclient"\nserver = "./vpnserver {cert} {key}"\n'
        'server_name = "alice.com"\nport = 5555\ncertificates = "own"\nca = "certs/ca.pem"\n'
    )
    sub = load_submission(_folder(tmp_path, toml), "tls")
    assert sub.problem == ""
    assert sub.tls == TlsContract("alice.com", 5555, "own", "certs/ca.pem")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("port = 0", "port: expected a TCP port number, got 0"),
        ('certificates = "mine"', 'certificates: "issued" or "own", got \'mine\''),
        ('key = "/etc/ssl/key.pem"', "key: a path inside the submission's folder"),
        ('users = "../shadow"', "users: a path inside the submission's folder"),
    ],
)
def test_a_bad_tls_key_names_its_line(tmp_path: Path, line: str, problem: str) -> None:
    folder = _folder(tmp_path, f'lab = "tls"\nclient = "c"\nserver = "s"\n{line}\n')
    sub = load_submission(folder, "tls")
    assert sub.problem.startswith(f"{folder.resolve() / 'vpnsim.toml'}:4: {problem}")


def test_a_submission_for_another_lab_says_which(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 'lab = "tls"\nclient = "c"\nserver = "s"\n')
    sub = load_submission(folder, "tunnel")
    assert sub.problem.endswith(
        ":1: it is for the tls lab; this grading is for the tunnel lab (vpnsim grade --lab tls)"
    )
    (tmp_path / "x").mkdir()
    tunnel_only = _folder(tmp_path / "x", 'client = "c"\nserver = "s"\nport = 4433\n')
    assert "port: unknown key" in load_submission(tunnel_only, "tunnel").problem


def test_the_client_gets_the_name_and_port_where_it_asks() -> None:
    client = ("./vpnclient", "-h", "{host}", "-p", "{port}")
    filled = fill_command(client, {"host": "a", "port": "1"})
    assert filled == ["./vpnclient", "-h", "a", "-p", "1"]
    assert fill_command(("./vpnserver", "{cert}", "{x}"), {"cert": "c.pem"}) == [
        "./vpnserver", "c.pem", "{x}",
    ]  # fmt: skip
    assert wrong_name(TlsContract()) == "not-vpnlabserver.com"


def test_tls_records_are_read_from_a_segments_start() -> None:
    hello = b"\x16\x03\x01\x00\x02ab"
    data = b"\x17\x03\x03\x00\x03xyz"
    assert tls_records(hello + data) == ["handshake", "data"]
    assert tls_records(b"\x17\x03\x03\x10\x00" + b"x" * 10) == ["data"]  # begins here
    assert tls_records(b"LOGIN seed dees\n") == []
    assert tls_records(b"E\x00\x00\x54") == []  # an IP packet in clear


def test_the_tls_grading_lab_has_a_second_client_host() -> None:
    scenario = tls_scenario()
    hosts = {h.name: h for h in scenario.hosts}
    assert set(hosts) >= {"U", "U2", "gateway", "V"}
    assert hosts["U2"].interfaces[0].address == "10.0.2.9/24"
    assert hosts["U2"].interfaces[0].network == hosts["U"].interfaces[0].network
    places = tls_places(scenario)
    assert (places.server_host, places.server_address) == ("gateway", tlslab.SERVER_ADDRESS)
    assert (places.v_address, places.tun_net) == ("192.168.60.101", "192.168.53.0/24")
