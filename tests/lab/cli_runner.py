"""Run the `vpnsim` command as a user would: a new process, optionally as another user."""

from __future__ import annotations

import atexit
import functools
import importlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).parents[2]
# What `vpnsim validate` imports besides the standard library.
VALIDATE_PACKAGES = ("pydantic", "pydantic_core", "typing_extensions", "annotated_types",
                     "typing_inspection")  # fmt: skip


def vpnsim(
    *args: str, user: int | None = None, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "vpnsim", *args]
    if user is not None:
        path = [str(REPO), *_readable_packages()]
        argv = [
            "env",
            f"PYTHONPATH={os.pathsep.join(path)}",
            "setpriv",
            f"--reuid={user}",
            f"--regid={user}",
            "--clear-groups",
            *argv,
        ]
    if extra:
        argv = [*extra, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def world_readable_dir(prefix: str) -> Path:
    """A new folder any user can read, removed when this process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _world_readable(path: Path) -> bool:
    """Whether a user with no rights of its own can reach `path` (every parent searchable)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


@functools.cache
def _readable_packages() -> list[str]:
    """Where an unprivileged user can import the packages `validate` needs: the interpreter's
    own site-packages when it can read them (a venv, as nox makes), else a world-readable copy
    (e.g. a pyenv Python under /root, mode 700)."""
    modules = [importlib.import_module(name) for name in VALIDATE_PACKAGES]
    files = [Path(m.__file__ or "") for m in modules]
    if all(_world_readable(f.parent) for f in files):
        return []
    copy = world_readable_dir("vpnsim-site-")
    for file in files:
        if file.name == "__init__.py":
            shutil.copytree(file.parent, copy / file.parent.name)
        else:
            shutil.copy(file, copy / file.name)
    for entry in copy.rglob("*"):
        entry.chmod(0o755 if entry.is_dir() else 0o644)
    return [str(copy)]
