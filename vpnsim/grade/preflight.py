"""Before any lab is built: can the student environment import what the submissions import?

Every Python file of every submission is parsed (`ast`; no student code runs, and a file that
does not parse is skipped: its syntax error is the student's finding, later). The top-level
modules it imports, less the submission's own modules, less the standard library of the
environment's Python, are looked up in the student environment by one process of its
`python3` (`importlib.util.find_spec`, which imports nothing). A module missing there would
fail every submission that imports it through no fault of the students: it is the harness's
problem, reported with what to install, and nothing is graded.

Imports inside a `try:` whose handlers catch ImportError (or its handlers: the fallback) are
optional and not required.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vpnsim.errors import HarnessError
from vpnsim.grade.environment import StudentEnvironment, grade_requirements

# Folders in a submission that are not its code: caches, VCS data, an environment of its own.
SKIPPED_DIRS = ("__pycache__", "node_modules", "site-packages", "dist-packages")
# Handlers that make a `try:` an optional import.
IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")
# Import names whose PyPI project has another name (the hint names the project).
PYPI_NAMES = {
    "Crypto": "pycryptodome",
    "Cryptodome": "pycryptodomex",
    "OpenSSL": "pyOpenSSL",
    "PIL": "Pillow",
    "attr": "attrs",
    "bs4": "beautifulsoup4",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
    "dns": "dnspython",
    "dotenv": "python-dotenv",
    "git": "GitPython",
    "jwt": "PyJWT",
    "magic": "python-magic",
    "nacl": "PyNaCl",
    "netfilterqueue": "NetfilterQueue",
    "pytun": "python-pytun",
    "serial": "pyserial",
    "sklearn": "scikit-learn",
    "usb": "pyusb",
    "yaml": "PyYAML",
    "zmq": "pyzmq",
}
MAX_SOURCE_BYTES = 2 * 2**20  # a larger "source" file is not read (not a program's own code)
SHOWN_USES = 5  # submissions named per missing module; the rest are counted
PROBE_TIMEOUT = 60.0

# Run by the environment's python3 (-I: its own stdlib and site-packages only): the names on
# stdin that are neither its standard library nor findable in it.
PROBE = """\
import importlib.util, json, sys
names = json.load(sys.stdin)
stdlib = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
missing = []
for name in names:
    if name in stdlib:
        continue
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        missing.append(name)
json.dump(missing, sys.stdout)
"""


@dataclass(frozen=True, order=True)
class Use:
    """Where a submission imports a module."""

    submission: str  # the folder's name
    file: str  # relative to the folder
    line: int

    def __str__(self) -> str:
        return f"{self.submission} ({self.file}:{self.line})"


@dataclass(frozen=True)
class Missing:
    module: str
    uses: tuple[Use, ...]

    @property
    def submissions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(use.submission for use in self.uses))


class MissingModules(HarnessError):
    """Submissions import modules the student environment lacks: nothing is graded."""

    def __init__(
        self,
        missing: list[Missing],
        environment: StudentEnvironment,
        requirements_file: Path | None = None,
    ) -> None:
        self.missing = missing
        self.environment = environment
        super().__init__(missing_message(missing, environment, requirements_file))


def missing_message(
    missing: list[Missing], environment: StudentEnvironment, requirements_file: Path | None = None
) -> str:
    lines = ["submissions import modules that the student environment lacks; nothing was graded:"]
    for item in missing:
        named = item.submissions
        uses = [next(u for u in item.uses if u.submission == name) for name in named]
        shown = ", ".join(str(use) for use in uses[:SHOWN_USES])
        more = f" and {len(named) - SHOWN_USES} more" if len(named) > SHOWN_USES else ""
        lines.append(f"  {item.module}: imported by {shown}{more}")
    lines.append(
        f"student programs run {environment.python}, which holds only what the course "
        "declares; to install them there:"
    )
    extra = [item.module for item in missing if in_grade_extra(item.module)]
    course = [item for item in missing if not in_grade_extra(item.module)]
    if extra:
        lines.append(f"  {', '.join(extra)}: pip install 'vpnsim[grade]'")
    if course:
        projects = ", ".join(dict.fromkeys(pypi_name(item.module) for item in course))
        where = (
            f"add {projects} to {requirements_file} (a line each) and grade again with "
            f"--requirements {requirements_file}"
            if requirements_file
            else f"list {projects} in a requirements file (a line each) and grade with "
            "--requirements FILE"
        )
        lines.append(f"  {', '.join(item.module for item in course)}: {where}")
    return "\n".join(lines)


def in_grade_extra(module: str) -> bool:
    """Whether `module` is what vpnsim's grade extra installs (scapy)."""
    return _normal(module) in {_normal(_project(line)) for line in grade_requirements()}


def pypi_name(module: str) -> str:
    """The PyPI project that provides `module` (most are named alike)."""
    return PYPI_NAMES.get(module, module)


def _project(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return match.group(0) if match else requirement


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- reading the submissions ------------------------------------------------------------------


def check_imports(
    folders: Iterable[Path],
    environment: StudentEnvironment,
    requirements_file: Path | None = None,
) -> None:
    """Raise MissingModules when a submission in `folders` imports a module that the
    student environment lacks (`requirements_file`: the course's, named in the advice)."""
    missing = find_missing(folders, environment)
    if missing:
        raise MissingModules(missing, environment, requirements_file)


def find_missing(folders: Iterable[Path], environment: StudentEnvironment) -> list[Missing]:
    """The modules submissions import that the environment lacks, by name, with their uses."""
    uses: dict[str, list[Use]] = {}
    for folder in folders:
        for module, where in submission_imports(folder).items():
            uses.setdefault(module, []).extend(where)
    absent = probe(environment.python, sorted(uses))
    return [Missing(module, tuple(sorted(uses[module]))) for module in sorted(absent)]


def submission_imports(folder: Path) -> dict[str, list[Use]]:
    """Top-level modules the submission in `folder` requires (its own modules left out; the
    standard library still in), each with where it is imported."""
    if not folder.is_dir():  # an ungradable "submission": its report row says so
        return {}
    files = list(python_files(folder))
    local = local_modules(folder)
    found: dict[str, list[Use]] = {}
    for path in files:
        try:
            if path.stat().st_size > MAX_SOURCE_BYTES:
                continue
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):  # the student's finding, when it runs
            continue
        except OSError:  # unreadable: the student's finding too
            continue
        relative = str(path.relative_to(folder))
        for module, line in required_imports(tree).items():
            if module not in local:
                found.setdefault(module, []).append(Use(folder.name, relative, line))
    return found


def python_files(folder: Path) -> Iterator[Path]:
    """Every `*.py` of the submission, and scripts without the suffix that start with a
    python shebang, outside caches and environments of its own."""
    for path in sorted(_files(folder)):
        if path.suffix == ".py" or (not path.suffix and _python_shebang(path)):
            yield path


def _files(folder: Path) -> Iterator[Path]:
    for entry in folder.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if not _skipped(entry):
                yield from _files(entry)
        elif entry.is_file():
            yield entry


def _skipped(folder: Path) -> bool:
    return (
        folder.name.startswith(".")
        or folder.name in SKIPPED_DIRS
        or (folder / "pyvenv.cfg").exists()
    )


def _python_shebang(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            first = file.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def local_modules(folder: Path) -> set[str]:
    """Names the submission's own files and folders take on an import path: `name.py`,
    `name/`, `name.cpython-311-x86_64-linux-gnu.so`, in the folder or any subfolder (a
    program's own directory, or one it adds to sys.path, may be any of them)."""
    names: set[str] = set()
    stack = [folder]
    while stack:
        current = stack.pop()
        for entry in current.iterdir():
            if entry.is_symlink():  # not followed (loops), but its name may be imported
                names.add(entry.name.split(".", 1)[0])
            elif entry.is_dir() and not _skipped(entry):
                names.add(entry.name)
                stack.append(entry)
            elif entry.suffix in (".py", ".so", ".pyc", ".pyd"):
                names.add(entry.name.split(".", 1)[0])
    return names


def required_imports(tree: ast.AST) -> dict[str, int]:
    """Top-level module names imported outside optional `try:` blocks, with the first line
    each is imported on: `import x.y` -> x, `from x import y` -> x, relative imports left out."""
    finder = _ImportFinder()
    finder.visit(tree)
    return {name: line for name, line in sorted(finder.required.items())}


class _ImportFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.required: dict[str, int] = {}
        self.optional = 0  # depth of optional blocks around the current node

    def _add(self, name: str, line: int) -> None:
        if not self.optional:
            top = name.split(".", 1)[0]
            self.required[top] = min(line, self.required.get(top, line))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module, node.lineno)

    def visit_Try(self, node: ast.Try) -> None:
        self._try(node)

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self._try(node)

    def _try(self, node: ast.Try | ast.TryStar) -> None:
        optional = any(_catches_import_error(handler) for handler in node.handlers)
        self.optional += optional
        for statement in node.body:
            self.visit(statement)
        for handler in node.handlers:  # the fallback of an optional import
            self.visit(handler)
        self.optional -= optional
        for statement in [*node.orelse, *node.finalbody]:
            self.visit(statement)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    for kind in kinds:
        name = kind.attr if isinstance(kind, ast.Attribute) else getattr(kind, "id", None)
        if name in IMPORT_ERRORS:
            return True
    return False


# -- the environment ----------------------------------------------------------------------------


def probe(python: Path, names: list[str]) -> list[str]:
    """Of `names`, those that are neither in `python`'s standard library nor importable by
    it: one process of that interpreter, isolated (-I: no PYTHONPATH, no user site, no
    current folder)."""
    if not names:
        return []
    try:
        done = subprocess.run(
            [str(python), "-I", "-c", PROBE], input=json.dumps(names), capture_output=True,
            text=True, timeout=PROBE_TIMEOUT, cwd="/", env={"PATH": "/usr/bin:/bin"}, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"cannot ask the student environment ({python}): {exc}") from None
    if done.returncode != 0:
        raise HarnessError(
            f"cannot ask the student environment ({python}): exit status {done.returncode}: "
            f"{done.stderr.strip()[-500:]}"
        )
    missing = json.loads(done.stdout)
    assert isinstance(missing, list)
    return [str(name) for name in missing]
