"""The built wheel carries the shipped scenarios and their schema: installed into a fresh venv
and run outside the checkout, `vpnsim validate` finds every shipped name (it used to say
"cannot read: No such file or directory").

Offline and fast: the wheel is built without build isolation (this environment's setuptools),
installed with `--no-deps --no-index`, and the venv sees the runtime dependencies it needs
through a .pth file listing links to this environment's copies, never vpnsim itself.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vpnsim.scenario.shipped import SHIPPED_DIR, shipped_names

ROOT = Path(__file__).parents[2]
# What `vpnsim validate` and `vpnsim schema` import besides the standard library and vpnsim.
DEPENDENCIES = ("pydantic", "pydantic_core", "typing_extensions", "annotated_types",
                "typing_inspection")  # fmt: skip


def _run(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}  # no PYTHONPATH
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel of this checkout installed; returns its bin/."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "vpnsim", source / "vpnsim", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = work / "dist"
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-q", "-w", wheels, source, cwd=work,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("vpnsim-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "vpnsim = vpnsim.pytest.plugin" in archive.read(entry_points).decode()
    assert {f"vpnsim/scenarios/{p.name}" for p in SHIPPED_DIR.iterdir()} <= names

    venv = work / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work).returncode == 0
    python = venv / "bin" / "python"
    install = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        "-q", wheel, cwd=work,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    links = work / "deps"
    links.mkdir()
    for name in DEPENDENCIES:
        origin = Path(importlib.util.find_spec(name).origin or "")  # type: ignore[union-attr]
        found = origin.parent if origin.name == "__init__.py" else origin
        (links / found.name).symlink_to(found)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "vpnsim-test-deps.pth").write_text(f"{links}\n")
    return venv / "bin"


def test_every_shipped_name_validates_from_the_installed_wheel(installed: Path) -> None:
    elsewhere = installed.parent  # not the checkout: nothing of it is on the path
    where = _run(installed / "python", "-c", "import vpnsim; print(vpnsim.__file__)", cwd=elsewhere)
    assert where.stdout.startswith(str(installed.parent / "lib")), where.stdout + where.stderr

    names = shipped_names()
    assert len(names) == 8
    result = _run(installed / "vpnsim", "validate", *names, cwd=elsewhere)

    assert (result.returncode, result.stderr) == (0, "")
    assert [line.split(": ok (")[0] for line in result.stdout.splitlines()] == names


def test_the_installed_schema_is_the_shipped_file(installed: Path) -> None:
    result = _run(installed / "vpnsim", "schema", cwd=installed.parent)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((SHIPPED_DIR / "schema.json").read_text())
