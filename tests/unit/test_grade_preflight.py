"""The preflight: what submissions import, read without running them, checked in the real
student environment before anything is graded."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from vpnsim.grade.environment import StudentEnvironment, ensure_environment
from vpnsim.grade.preflight import (
    MAX_SOURCE_BYTES,
    Missing,
    MissingModules,
    Use,
    check_imports,
    find_missing,
    local_modules,
    missing_message,
    probe,
    python_files,
    required_imports,
    submission_imports,
)

CLIENT = """\
#!/usr/bin/env python3
import fcntl, struct, os
from scapy.all import *
import numpy as np
import helper
from lib import util
from . import sibling
try:
    import ujson as json
except ImportError:
    import json
    import simplejson


def stats():
    import yaml.loader
    return yaml
"""
SERVER = """\
import os, select
from scapy.all import IP
import numpy
"""
PYTHON2 = """\
import pandas
print "hello"
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> StudentEnvironment:
    """The default student environment (the grade extra: scapy), really built."""
    return ensure_environment(root=tmp_path_factory.mktemp("student-envs"))


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """alice imports scapy, numpy, her own modules, an optional ujson and yaml in a function,
    and keeps a Python 2 file that does not parse; bob imports only scapy and the stdlib."""
    alice = tmp_path / "class" / "alice"
    (alice / "lib").mkdir(parents=True)
    (alice / "tun_client.py").write_text(CLIENT)
    (alice / "tun_server.py").write_text(SERVER)
    (alice / "old.py").write_text(PYTHON2)
    (alice / "helper.py").write_text("import os\n")
    (alice / "lib" / "util.py").write_text("import zlib\n")
    bob = tmp_path / "class" / "bob"
    bob.mkdir()
    (bob / "tun_client.py").write_text("import os\nfrom scapy.all import *\n")
    (bob / "tun_server.py").write_text("import socket\nimport scapy.layers.inet\n")
    return tmp_path / "class"


def _imports(source: str) -> dict[str, int]:
    return required_imports(ast.parse(textwrap.dedent(source)))


# -- reading ----------------------------------------------------------------------------


def test_a_submissions_imports_with_where(course: Path) -> None:
    alice = course / "alice"
    assert submission_imports(alice) == {
        "fcntl": [Use("alice", "tun_client.py", 2)],
        "struct": [Use("alice", "tun_client.py", 2)],
        "os": [
            Use("alice", "helper.py", 1),
            Use("alice", "tun_client.py", 2),
            Use("alice", "tun_server.py", 1),
        ],
        "scapy": [Use("alice", "tun_client.py", 3), Use("alice", "tun_server.py", 2)],
        "numpy": [Use("alice", "tun_client.py", 4), Use("alice", "tun_server.py", 3)],
        "yaml": [Use("alice", "tun_client.py", 16)],
        "zlib": [Use("alice", "lib/util.py", 1)],
        "select": [Use("alice", "tun_server.py", 1)],
    }


def test_own_modules(course: Path) -> None:
    alice = course / "alice"
    (alice / "native.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (alice / "__pycache__").mkdir()
    (alice / "__pycache__" / "cached.cpython-311.pyc").write_bytes(b"")
    assert local_modules(alice) == {"tun_client", "tun_server", "old", "helper", "lib", "util",
                                    "native"}  # fmt: skip


def test_which_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("")
    (tmp_path / "vpnclient").write_text("#!/usr/bin/env python3\nimport numpy\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "notes").write_text("import numpy\n")
    for skipped in (".git", "__pycache__", "venv", ".venv"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "x.py").write_text("import numpy\n")
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert list(python_files(tmp_path)) == [tmp_path / "pkg" / "mod.py", tmp_path / "vpnclient"]
    assert submission_imports(tmp_path) == {"numpy": [Use(tmp_path.name, "vpnclient", 2)]}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import a.b.c", {"a": 1}),
        ("from x.y import z", {"x": 1}),
        ("import a as b, c", {"a": 1, "c": 1}),
        ("from . import a\nfrom .m import b\nfrom ..n import c", {}),
        ("try:\n    import a\nexcept ImportError:\n    a = None", {}),
        ("try:\n    import a\nexcept ModuleNotFoundError:\n    import b", {}),
        ("try:\n    import a\nexcept (ValueError, ImportError):\n    pass", {}),
        ("try:\n    import a\nexcept builtins.ImportError:\n    pass", {}),
        ("try:\n    import a\nexcept Exception:\n    pass", {}),
        ("try:\n    import a\nexcept:\n    pass", {}),
        ("try:\n    import a\nexcept ValueError:\n    pass", {"a": 2}),
        ("try:\n    pass\nexcept ImportError:\n    pass\nelse:\n    import a", {"a": 6}),
        ("try:\n    pass\nexcept ImportError:\n    pass\nfinally:\n    import a", {"a": 6}),
        ("try:\n    import a\nexcept ImportError:\n    pass\nimport a", {"a": 5}),
        ("import z\nimport a\nimport z", {"a": 2, "z": 1}),
        ("def f():\n    import a\nclass C:\n    import b", {"a": 2, "b": 4}),
        ("if x:\n    try:\n        import a\n    except ImportError:\n        import b", {}),
        ("try:\n    try:\n        import a\n    except ValueError:\n        import b\n"
         "except ImportError:\n    pass", {}),
    ],
)  # fmt: skip
def test_required_imports(source: str, expected: dict[str, int]) -> None:
    assert _imports(source) == expected


def test_a_file_that_does_not_parse_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "tun_client.py").write_text(PYTHON2)
    (tmp_path / "nul.py").write_bytes(b"import numpy\x00\n")
    (tmp_path / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nimport scapy # \xe9\n")
    assert submission_imports(tmp_path) == {"scapy": [Use(tmp_path.name, "latin.py", 2)]}


def test_symlinks_are_not_followed_but_count_as_own_modules(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.py").write_text("import numpy\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "tun_client.py").write_text("import shared\nimport loop\nimport yaml\n")
    (sub / "shared").symlink_to(elsewhere)
    (sub / "loop").symlink_to(sub)
    (sub / "zero.py").symlink_to("/dev/zero")
    assert local_modules(sub) == {"tun_client", "shared", "loop", "zero"}
    assert submission_imports(sub) == {"yaml": [Use("sub", "tun_client.py", 3)]}


def test_a_huge_file_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("import numpy\n" + "#" * MAX_SOURCE_BYTES)
    (tmp_path / "tun_client.py").write_text("import yaml\n")
    assert submission_imports(tmp_path) == {"yaml": [Use(tmp_path.name, "tun_client.py", 1)]}


def test_a_path_that_is_not_a_folder_imports_nothing(tmp_path: Path) -> None:
    (tmp_path / "tun_client.py").write_text("import numpy\n")
    assert submission_imports(tmp_path / "tun_client.py") == {}
    assert submission_imports(tmp_path / "nothing-here") == {}


def test_a_folder_without_python_files(tmp_path: Path) -> None:
    (tmp_path / "vpnserver.c").write_text("#include <stdio.h>\n")
    assert submission_imports(tmp_path) == {}


# -- the environment -------------------------------------------------------------------------


def test_probe_asks_the_environment(env: StudentEnvironment) -> None:
    names = ["scapy", "numpy", "os", "asyncio", "_thread", "sys", "vpnsim", "pydantic",
             "pyroute2", "pip"]  # fmt: skip
    assert probe(env.python, names) == ["numpy", "vpnsim", "pydantic", "pyroute2"]
    assert probe(env.python, []) == []


def test_the_missing_modules_of_a_class(course: Path, env: StudentEnvironment) -> None:
    missing = find_missing([course / "alice", course / "bob"], env)
    assert missing == [
        Missing("numpy", (Use("alice", "tun_client.py", 4), Use("alice", "tun_server.py", 3))),
        Missing("yaml", (Use("alice", "tun_client.py", 16),)),
    ]


def test_check_imports_raises_the_harness_message(course: Path, env: StudentEnvironment) -> None:
    with pytest.raises(MissingModules) as info:
        check_imports([course / "alice", course / "bob"], env)
    assert str(info.value) == (
        "submissions import modules that the student environment lacks; nothing was graded:\n"
        "  numpy: imported by alice (tun_client.py:4)\n"
        "  yaml: imported by alice (tun_client.py:16)\n"
        f"student programs run {env.prefix}/bin/python3, which holds only what the course "
        "declares; to install them there:\n"
        "  numpy, yaml: list numpy, PyYAML in a requirements file (a line each) and grade "
        "with --requirements FILE"
    )


def test_a_class_that_imports_only_what_is_there_passes(
    course: Path, env: StudentEnvironment
) -> None:
    assert check_imports([course / "bob"], env) is None


def test_a_missing_grade_extra_module_says_to_install_the_extra(tmp_path: Path) -> None:
    env = StudentEnvironment(tmp_path / "env", ("six",), Path("/usr"))
    uses = tuple(Use(f"s{n}", "tun_client.py", 3) for n in range(1, 8))
    message = missing_message([Missing("scapy", uses)], env)
    assert message.splitlines()[1:] == [
        "  scapy: imported by s1 (tun_client.py:3), s2 (tun_client.py:3), s3 (tun_client.py:3),"
        " s4 (tun_client.py:3), s5 (tun_client.py:3) and 2 more",
        f"student programs run {tmp_path}/env/bin/python3, which holds only what the course "
        "declares; to install them there:",
        "  scapy: pip install 'vpnsim[grade]'",
    ]


def test_the_advice_names_the_courses_requirements_file(tmp_path: Path) -> None:
    env = StudentEnvironment(tmp_path / "env", ("scapy>=2.5",), Path("/usr"))
    missing = [
        Missing("Crypto", (Use("alice", "tun_client.py", 1), Use("alice", "tun_server.py", 1))),
        Missing("cv2", (Use("bob", "a.py", 2), Use("carol", "b.py", 9))),
    ]
    requirements = tmp_path / "course.txt"
    assert missing_message(missing, env, requirements).splitlines()[1:] == [
        "  Crypto: imported by alice (tun_client.py:1)",
        "  cv2: imported by bob (a.py:2), carol (b.py:9)",
        f"student programs run {tmp_path}/env/bin/python3, which holds only what the course "
        "declares; to install them there:",
        f"  Crypto, cv2: add pycryptodome, opencv-python to {requirements} (a line each) and "
        f"grade again with --requirements {requirements}",
    ]
