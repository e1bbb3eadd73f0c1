"""Loading a student's submission folder: SEED file names or a vpnsim.toml; problems recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpnsim.grade.submission import Submission, load_submission, seed_command

CORPUS = Path(__file__).resolve().parents[1] / "data" / "submissions"
KNOWN = "(known: client, server, build, lab)"
SEED_CLIENT_ARGV = ("python3", "-u", "tun_client.py")
SEED_SERVER_ARGV = ("python3", "-u", "tun_server.py")


def _folder(tmp_path: Path, *files: str, toml: str | None = None, name: str = "alice") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file in files:
        (folder / file).write_text("print('hi')\n")
    if toml is not None:
        (folder / "vpnsim.toml").write_text(toml)
    return folder


def _config(folder: Path) -> str:
    return str(folder.resolve() / "vpnsim.toml")


def test_seed_command() -> None:
    assert seed_command("tun_client.py") == SEED_CLIENT_ARGV


def test_seed_names(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py", "tun_server.py")
    sub = load_submission(folder)
    assert sub == Submission(folder.resolve(), SEED_CLIENT_ARGV, SEED_SERVER_ARGV)
    assert sub.problem == ""
    assert sub.build == ()
    assert sub.lab == "tunnel"
    assert sub.name == "alice"


def test_path_is_resolved(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py", "tun_server.py")
    sub = load_submission(tmp_path / "." / "alice" / ".." / "alice")
    assert sub.path == folder.resolve()
    assert sub.name == "alice"


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        ((), "no tun_client.py and no tun_server.py"),
        (("tun_client.py",), "no tun_server.py"),
        (("tun_server.py",), "no tun_client.py"),
        (("vpn_client.py", "vpn_server.py", "README.md"), "no tun_client.py and no tun_server.py"),
    ],
)
def test_missing_seed_files_are_named(tmp_path: Path, files: tuple[str, ...], missing: str) -> None:
    folder = _folder(tmp_path, *files)
    sub = load_submission(folder)
    assert sub.problem == f"{missing} in alice/ (and no vpnsim.toml naming what to run)"
    assert sub.client == ()
    assert sub.server == ()
    assert sub.path == folder.resolve()


def test_a_seed_name_that_is_a_folder_does_not_count(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py")
    (folder / "tun_server.py").mkdir()
    assert load_submission(folder).problem == (
        "no tun_server.py in alice/ (and no vpnsim.toml naming what to run)"
    )


def test_not_a_folder(tmp_path: Path) -> None:
    file = tmp_path / "alice.zip"
    file.write_bytes(b"PK\x03\x04")
    sub = load_submission(file)
    assert sub.problem == f"{file}: not a folder"
    assert sub.client == sub.server == ()
    missing = tmp_path / "bob"
    assert load_submission(missing).problem == f"{missing}: not a folder"


def test_config_commands_are_split_like_a_shell(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        toml=(
            "# what to run\n"
            "client = \"python3 -u vpn_client.py --name 'my tun'\"\n"
            "server = './vpnserver -p 9090'\n"
            'build = "make -C src all"\n'
            'lab = "tunnel"\n'
        ),
    )
    sub = load_submission(folder)
    assert sub.problem == ""
    assert sub.client == ("python3", "-u", "vpn_client.py", "--name", "my tun")
    assert sub.server == ("./vpnserver", "-p", "9090")
    assert sub.build == ("make", "-C", "src", "all")
    assert sub.lab == "tunnel"
    assert sub.path == folder.resolve()


def test_config_wins_over_seed_files(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path, "tun_client.py", "tun_server.py", toml='client = "c"\nserver = "s"\n'
    )
    sub = load_submission(folder)
    assert (sub.client, sub.server, sub.problem) == (("c",), ("s",), "")


def test_only_client_in_config_and_seed_server_present(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_server.py", toml='client = "./client"\n')
    sub = load_submission(folder)
    assert sub.problem == ""
    assert sub.client == ("./client",)
    assert sub.server == SEED_SERVER_ARGV
    assert sub.build == ()


def test_only_server_in_config_and_seed_client_present(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py", toml='server = "./server"\n')
    sub = load_submission(folder)
    assert (sub.client, sub.server, sub.problem) == (SEED_CLIENT_ARGV, ("./server",), "")


def test_empty_config_with_seed_files_uses_them(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py", "tun_server.py", toml='build = "make"\n')
    sub = load_submission(folder)
    assert (sub.client, sub.server, sub.build) == (SEED_CLIENT_ARGV, SEED_SERVER_ARGV, ("make",))
    assert sub.problem == ""


def test_no_server_at_all(tmp_path: Path) -> None:
    folder = _folder(tmp_path, toml='client = "./client"\n')
    sub = load_submission(folder)
    assert sub.problem == f"{_config(folder)}: no server command and no tun_server.py in alice/"


def test_no_client_at_all(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_server.py", toml="# nothing here\n")
    sub = load_submission(folder)
    assert sub.problem == f"{_config(folder)}: no client command and no tun_client.py in alice/"


def test_key_typo_names_its_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path, toml='# my vpn\n\nclinet = "./client"\nserver = "./server"\n')
    sub = load_submission(folder)
    assert sub.problem == f"{_config(folder)}:3: clinet: unknown key {KNOWN}"
    assert "vpnsim.toml:3: clinet: unknown key" in sub.problem
    assert sub.client == sub.server == ()


def test_unknown_table_names_its_header_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path, toml='client = "c"\nserver = "s"\n[extra]\nx = 1\n')
    assert load_submission(folder).problem == f"{_config(folder)}:3: extra: unknown key {KNOWN}"


@pytest.mark.parametrize(
    ("toml", "key", "line"),
    [
        ('server = "s"\nclient = 5\n', "client", 2),
        ('client = "c"\n\nserver = ["./s", "-v"]\n', "server", 3),
        ('client = "c"\nserver = "s"\nbuild = true\n', "build", 3),
        ('client = "   "\nserver = "s"\n', "client", 1),
        ('client = ""\nserver = "s"\n', "client", 1),
        ('server = "s"\n[client]\ncmd = "c"\n', "client", 2),
    ],
)
def test_non_string_command_names_its_line(tmp_path: Path, toml: str, key: str, line: int) -> None:
    folder = _folder(tmp_path, "tun_client.py", "tun_server.py", toml=toml)
    sub = load_submission(folder)
    assert sub.problem == f"{_config(folder)}:{line}: {key}: expected a command string"


def test_bad_quoting_names_its_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path, toml='client = "python3 \'vpn client.py"\nserver = "s"\n')
    sub = load_submission(folder)
    assert sub.problem == f"{_config(folder)}:1: client: No closing quotation"


def test_unknown_lab(tmp_path: Path) -> None:
    folder = _folder(tmp_path, toml='client = "c"\nserver = "s"\nlab = "ipsec"\n')
    sub = load_submission(folder)
    assert sub.problem == f"{_config(folder)}:3: lab: 'ipsec' cannot be graded (known: tunnel, tls)"


def test_toml_syntax_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py", "tun_server.py", toml='client = "c\n')
    sub = load_submission(folder)
    assert sub.problem.startswith(f"{_config(folder)}: ")
    assert "line 1" in sub.problem
    assert sub.client == sub.server == ()


def test_unreadable_config(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py", "tun_server.py")
    (folder / "vpnsim.toml").write_bytes(b'client = "\xff\xfe"\n')
    sub = load_submission(folder)
    assert sub.problem.startswith(f"{_config(folder)}: cannot read: ")


def test_a_config_folder_is_ignored(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tun_client.py", "tun_server.py")
    (folder / "vpnsim.toml").mkdir()
    sub = load_submission(folder)
    assert (sub.client, sub.server, sub.problem) == (SEED_CLIENT_ARGV, SEED_SERVER_ARGV, "")


def test_corpus_has_submissions() -> None:
    folders = sorted(p for p in CORPUS.iterdir() if p.is_dir())
    assert len(folders) >= 10
    assert {"correct", "classic", "syntax_error", "toml_c_names"} <= {p.name for p in folders}


@pytest.mark.parametrize(
    "name", sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []
)
def test_every_corpus_submission_loads(name: str) -> None:
    sub = load_submission(CORPUS / name)
    assert sub.problem == ""
    assert sub.path == (CORPUS / name).resolve()
    assert sub.name == name
    assert sub.lab == "tunnel"
    assert sub.build == ()
    if name == "toml_c_names":
        assert sub.client == ("python3", "-u", "vpn_client.py")
        assert sub.server == ("python3", "-u", "vpn_server.py")
    else:
        assert sub.client == SEED_CLIENT_ARGV
        assert sub.server == SEED_SERVER_ARGV
