"""The student environment: the Python that graded programs run as `python3`, apart from the
grader's own.

A venv made from the base interpreter (never from the grader's venv), without system
site-packages, holding exactly what the course declares (vpnsim's `grade` extra, plus a
course's `--requirements FILE`) and pip. vpnsim itself, pyroute2 and pydantic are never
installed there, so a submission cannot run the reference tunnel as its own, and a module the
course did not declare is missing for every submission alike (the preflight says so before
anything is graded).

Built once per (requirements, base interpreter) under ENVS_ROOT/<key>, in a temporary folder
renamed when complete, under a lock file: grading shards on one machine share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from vpnsim.errors import HarnessError

ENVS_ROOT = Path("/var/lib/vpnsim/envs")
EXTRA = "grade"
# The `grade` extra of pyproject.toml, for a vpnsim whose metadata cannot be read (a source
# tree run without installing); a unit test keeps the two equal.
GRADE_REQUIREMENTS: tuple[str, ...] = ("scapy>=2.5",)
MANIFEST = "vpnsim-env.json"  # written last: an environment without it is not one
LOCK = ".lock"
PIP_LINES = 6  # of pip's output, in the error when a build fails
VENV_TIMEOUT = 300.0
PIP_TIMEOUT = 900.0
# Settings that would send pip's installs somewhere other than the venv being built.
PIP_REDIRECTS = ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_EDITABLE")


@dataclass(frozen=True)
class StudentEnvironment:
    prefix: Path  # a venv; prefix / "bin" / "python3" runs
    requirements: tuple[str, ...]  # what was installed (requirement lines)
    base_prefix: Path  # realpath of the base interpreter's prefix the venv runs on (its stdlib)

    @property
    def bin_dir(self) -> Path:
        return self.prefix / "bin"

    @property
    def python(self) -> Path:
        return self.bin_dir / "python3"

    def visible_dirs(self) -> tuple[Path, ...]:
        """Real paths the jail must bind read-only so prefix/bin/python3 runs: the venv and
        the base prefix."""
        return tuple(dict.fromkeys((Path(os.path.realpath(self.prefix)), self.base_prefix)))

    def hidden_dirs(self) -> tuple[Path, ...]:
        """Real paths inside visible_dirs the jail hides behind an empty tmpfs: the base
        interpreter's own site-packages/dist-packages (where the grader's packages may be),
        never the venv's."""
        venv = Path(os.path.realpath(self.prefix))
        base = self.base_prefix
        candidates = [
            *sorted(base.glob("lib/python3.*/site-packages")),
            *sorted(base.glob("lib/python3.*/dist-packages")),
            base / "lib" / "python3" / "dist-packages",  # Debian's
            *sorted(base.glob("local/lib/python3.*/dist-packages")),  # Debian's pip installs
            *sorted(base.glob("local/lib/python3.*/site-packages")),
        ]
        found: list[Path] = []
        for path in candidates:
            real = Path(os.path.realpath(path))
            if (
                real.is_dir()
                and _inside(real, base)
                and not _inside(real, venv)
                and not _inside(venv, real)
            ):
                found.append(real)
        return tuple(dict.fromkeys(found))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def grade_requirements() -> tuple[str, ...]:
    """The `grade` extra's requirement lines, from vpnsim's installed metadata (else the
    constant kept equal to pyproject.toml's)."""
    try:
        declared = metadata.requires("vpnsim")
    except metadata.PackageNotFoundError:
        declared = None
    if declared is None:
        return GRADE_REQUIREMENTS
    found = tuple(line for req in declared if (line := _in_extra(req, EXTRA)) is not None)
    return found or GRADE_REQUIREMENTS


EXTRA_MARKER = re.compile(r"""\s*extra\s*==\s*["']([^"']+)["']\s*""")


def _in_extra(requirement: str, extra: str) -> str | None:
    """`scapy>=2.5; extra == "grade"` -> `scapy>=2.5` when `extra` is grade, else None; a
    requirement with a marker of its own besides the extra keeps that marker."""
    spec, _, marker = requirement.partition(";")
    clauses = re.split(r"\band\b", marker) if marker.strip() else []
    extras = [m.group(1) for c in clauses if (m := EXTRA_MARKER.fullmatch(c))]
    if extras != [extra]:
        return None
    rest = [c.strip() for c in clauses if not EXTRA_MARKER.fullmatch(c)]
    return spec.strip() + (f"; {' and '.join(rest)}" if rest else "")


def read_requirements(path: Path) -> tuple[str, ...]:
    """The requirement lines of a pip requirements file (comments and blank lines dropped).
    Includes (-r, -c) are refused: the environment's key could not see their contents."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise HarnessError(f"--requirements {path}: cannot read it: {exc.strerror}") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.split()[0] in ("-r", "-c", "--requirement", "--constraint") or line.startswith(
            ("-r", "-c", "--requirement=", "--constraint=")
        ):
            raise HarnessError(
                f"{path}:{number}: {line}: list the requirements themselves (includes are "
                "not followed)"
            )
        lines.append(line)
    return tuple(lines)


def base_interpreter() -> tuple[Path, Path]:
    """(the base interpreter's executable, its prefix), both real paths: the Python the
    grader's venv (if any) was made from."""
    executable = getattr(sys, "_base_executable", None) or sys.executable
    return Path(os.path.realpath(executable)), Path(os.path.realpath(sys.base_prefix))


def environment_key(requirements: tuple[str, ...], executable: Path) -> str:
    identity = "\n".join([str(executable), sys.version, "", *sorted(set(requirements))])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def course_requirements(requirements_file: Path | None = None) -> tuple[str, ...]:
    """The grade extra's requirement lines, then the file's (duplicates dropped)."""
    extra = read_requirements(requirements_file) if requirements_file else ()
    return tuple(dict.fromkeys([*grade_requirements(), *extra]))


def find_environment(
    requirements_file: Path | None = None, root: Path = ENVS_ROOT
) -> StudentEnvironment | None:
    """The environment ensure_environment would return, if it is built already; else None."""
    requirements = course_requirements(requirements_file)
    return _load(root / environment_key(requirements, base_interpreter()[0]))


def ensure_environment(
    requirements_file: Path | None = None, root: Path = ENVS_ROOT
) -> StudentEnvironment:
    """The environment for these requirements (default: the grade extra's), built once and
    cached under root/<key> (key: hash of the requirement lines and the base interpreter); a
    build that fails raises vpnsim.errors.HarnessError naming the requirement and pip's last
    lines, and leaves no half-made env (build in a temp dir, rename when complete). Safe
    when two processes (grading shards) call it at once (a lock file).

    A requirements file adds to the grade extra's requirements."""
    requirements = course_requirements(requirements_file)
    executable, base_prefix = base_interpreter()
    final = root / environment_key(requirements, executable)
    cached = _load(final)
    if cached is not None:
        return cached
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(
            f"cannot make {root} for the student environment: {exc.strerror} (run as root)"
        ) from None
    with _locked(root / LOCK):
        cached = _load(final)  # another process built it while this one waited
        if cached is not None:
            return cached
        for stale in root.glob(f".{final.name}.build-*"):  # a build that was killed
            shutil.rmtree(stale, ignore_errors=True)
        building = root / f".{final.name}.build-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            _build(building, final, requirements, executable, base_prefix, requirements_file)
            building.rename(final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    environment = _load(final)
    assert environment is not None
    return environment


def _load(prefix: Path) -> StudentEnvironment | None:
    """The environment at `prefix` if it was completed (its manifest is written last)."""
    try:
        data = json.loads((prefix / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not (prefix / "bin" / "python3").exists():  # its base interpreter was removed
        return None
    return StudentEnvironment(
        prefix=prefix,
        requirements=tuple(data["requirements"]),
        base_prefix=Path(data["base_prefix"]),
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(
    building: Path,
    final: Path,
    requirements: tuple[str, ...],
    executable: Path,
    base_prefix: Path,
    requirements_file: Path | None,
) -> None:
    """A complete environment in `building`, made to live at `final`."""
    env = {k: v for k, v in os.environ.items() if k not in PIP_REDIRECTS and k != "VIRTUAL_ENV"}
    venv = _run([str(executable), "-I", "-m", "venv", str(building)], env, VENV_TIMEOUT)
    if venv.returncode != 0:
        raise HarnessError(
            f"the student environment could not be made: {executable} -m venv failed "
            f"(on Debian: apt-get install python3-venv):\n{_last_lines(venv.stdout)}"
        )
    python = str(building / "bin" / "python3")
    pip = [python, "-I", "-m", "pip", "--disable-pip-version-check", "--no-input"]
    # venv's ensurepip adds setuptools (Python < 3.12); the course did not declare it.
    _run([*pip, "uninstall", "--yes", "--quiet", "setuptools"], env, PIP_TIMEOUT)
    listed = building / "requirements.txt"
    listed.write_text("".join(f"{line}\n" for line in requirements))
    install = _run([*pip, "install", "--requirement", str(listed)], env, PIP_TIMEOUT)
    if install.returncode != 0:
        source = f" (from {requirements_file})" if requirements_file else ""
        raise HarnessError(
            f"the student environment could not be built: pip could not install "
            f"{_culprit(install.stdout, requirements)}{source}; pip said:\n"
            f"{_last_lines(install.stdout)}"
        )
    _relocate(building, final)
    manifest = {
        "requirements": list(requirements),
        "base_executable": str(executable),
        "base_prefix": str(base_prefix),
        "python": sys.version,
        "builder_pid": os.getpid(),
    }
    (building / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else ""
        raise HarnessError(
            f"building the student environment: `{' '.join(argv[2:])}` did not finish within "
            f"{timeout:g} s:\n{_last_lines(output or '')}"
        ) from None


def _culprit(output: str, requirements: tuple[str, ...]) -> str:
    """The requirement pip names in its error, else all of them."""
    for pattern in (
        r"No matching distribution found for (\S+)",
        r"Could not find a version that satisfies the requirement (\S+)",
        r"Invalid requirement: '([^']+)'",
        r"Failed to build (\S+)",
    ):
        if match := re.search(pattern, output):
            return match.group(1)
    return ", ".join(requirements)


def _last_lines(output: str, count: int = PIP_LINES) -> str:
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    return "\n".join(f"  {line}" for line in lines[-count:])


def _relocate(building: Path, final: Path) -> None:
    """Point the venv's scripts (pip's shebangs, activate) at where it will live. The
    interpreter itself finds its prefix from pyvenv.cfg's place, and compiled modules get
    their file names from where they are loaded."""
    old, new = str(building).encode(), str(final).encode()
    for script in (building / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        content = script.read_bytes()
        if old in content:
            script.write_bytes(content.replace(old, new))
