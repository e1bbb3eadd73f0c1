"""The student environment: what graded programs run as `python3`, apart from the grader's.

Real builds (pip reaches the package index): two processes building one environment at once,
a cached call that builds nothing, a failed build that leaves nothing, and what the built
environment can and cannot import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from vpnsim.errors import HarnessError
from vpnsim.grade import environment
from vpnsim.grade.environment import (
    GRADE_REQUIREMENTS,
    LOCK,
    MANIFEST,
    StudentEnvironment,
    _in_extra,
    base_interpreter,
    course_requirements,
    ensure_environment,
    environment_key,
    find_environment,
    grade_requirements,
    read_requirements,
)

REPO = Path(__file__).parents[2]
COURSE_FILE = "six==1.17.0\n# a comment\n\nscapy>=2.5  # also in the grade extra\n"
BUILD = """\
import json, sys
from pathlib import Path
from vpnsim.grade.environment import ensure_environment
env = ensure_environment(Path(sys.argv[1]), root=Path(sys.argv[2]))
print(json.dumps([str(env.prefix), list(env.requirements), str(env.base_prefix)]))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One environment (the grade extra plus a course file adding six), asked for by two
    processes at the same moment on an empty root."""
    base = tmp_path_factory.mktemp("student-envs")
    root, course = base / "envs", base / "course.txt"
    course.write_text(COURSE_FILE)
    argv = [sys.executable, "-c", BUILD, str(course), str(root)]
    procs = [
        subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    return {
        "root": root,
        "course": course,
        "pids": [proc.pid for proc in procs],
        "codes": [proc.returncode for proc in procs],
        "outputs": outputs,
    }


@pytest.fixture(scope="module")
def env(built: dict[str, Any]) -> StudentEnvironment:
    found = find_environment(built["course"], root=built["root"])
    assert found is not None
    return found


def _python(env: StudentEnvironment, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The environment's python3 as the jail runs it: in the submission's folder, with a
    minimal environment."""
    return subprocess.run(
        [str(env.bin_dir / "python3"), *args], cwd=cwd, capture_output=True, text=True,
        env={"PATH": f"{env.bin_dir}:/usr/bin:/bin", "HOME": str(cwd)}, timeout=60, check=False,
    )  # fmt: skip


def test_two_processes_at_once_build_it_once_and_get_the_same_environment(
    built: dict[str, Any],
) -> None:
    executable, base_prefix = base_interpreter()
    requirements = ("scapy>=2.5", "six==1.17.0")
    key = environment_key(requirements, executable)
    prefix = built["root"] / key
    expected = json.dumps([str(prefix), list(requirements), str(base_prefix)]) + "\n"
    assert built["codes"] == [0, 0], built["outputs"]
    assert [out for out, _ in built["outputs"]] == [expected, expected]
    # One environment, the lock, and no leftover of a second or half-made build.
    assert sorted(p.name for p in built["root"].iterdir()) == sorted([LOCK, key])
    manifest = json.loads((prefix / MANIFEST).read_text())
    assert manifest["builder_pid"] in built["pids"]
    assert manifest["requirements"] == list(requirements)
    assert manifest["base_executable"] == str(executable)


def test_it_holds_exactly_what_the_course_declares_and_pip(env: StudentEnvironment) -> None:
    listed = subprocess.run(
        [str(env.bin_dir / "python3"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sorted(p["name"].lower() for p in json.loads(listed.stdout)) == ["pip", "scapy", "six"]
    assert (env.prefix / "requirements.txt").read_text() == "scapy>=2.5\nsix==1.17.0\n"


def test_scapy_imports_and_the_graders_packages_do_not(
    env: StudentEnvironment, tmp_path: Path
) -> None:
    ok = _python(env, "-c", "import scapy.all, six; print(scapy.all.IP().version)", cwd=tmp_path)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "4\n", "")
    for module in ("vpnsim", "pyroute2", "pydantic"):
        failed = _python(env, "-c", f"import {module}", cwd=tmp_path)
        assert failed.returncode == 1
        assert failed.stderr.splitlines()[-1] == f"ModuleNotFoundError: No module named '{module}'"


def test_the_reference_tunnel_cannot_be_run_as_a_students_own(
    env: StudentEnvironment, tmp_path: Path
) -> None:
    cheat = _python(env, "-m", "vpnsim.tunnel", "client", cwd=tmp_path)
    assert (cheat.returncode, cheat.stdout) == (1, "")
    assert cheat.stderr == (
        f"{env.bin_dir / 'python3'}: Error while finding module specification for "
        "'vpnsim.tunnel' (ModuleNotFoundError: No module named 'vpnsim')\n"
    )


def test_it_runs_on_the_base_interpreter_without_its_site_packages(
    env: StudentEnvironment, tmp_path: Path
) -> None:
    assert env.base_prefix == Path(os.path.realpath(sys.base_prefix))
    shown = _python(
        env, "-c", "import sys, site; print(sys.prefix); print(sys.base_prefix); "
        "print(sorted(p for p in sys.path if p.endswith('-packages')))",
        cwd=tmp_path,
    )  # fmt: skip
    site = env.prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert shown.stdout.splitlines() == [
        str(env.prefix),
        str(env.base_prefix),
        str([str(site / "site-packages")]),
    ]
    assert "include-system-site-packages = false\n" in (env.prefix / "pyvenv.cfg").read_text()


def test_scripts_point_at_where_it_lives_not_where_it_was_built(env: StudentEnvironment) -> None:
    shebang = (env.bin_dir / "pip").read_text().splitlines()[0]
    assert shebang == f"#!{env.bin_dir}/python{sys.version_info.major}.{sys.version_info.minor}"
    done = subprocess.run([str(env.bin_dir / "pip"), "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert f"from {env.prefix}/lib/" in done.stdout


def test_visible_and_hidden_dirs(env: StudentEnvironment) -> None:
    assert env.visible_dirs() == (env.prefix, env.base_prefix)
    # The base interpreter's own answer, asked outside any venv.
    base = subprocess.run(
        [str(base_interpreter()[0]), "-I", "-c", "import json, site; "
         "print(json.dumps(site.getsitepackages()))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = tuple(Path(os.path.realpath(p)) for p in json.loads(base.stdout) if os.path.isdir(p))
    assert expected != ()
    assert sorted(env.hidden_dirs()) == sorted(expected)  # Debian lists them in another order
    assert all(env.base_prefix in path.parents for path in env.hidden_dirs())
    assert not any(env.prefix in path.parents for path in env.hidden_dirs())


def test_a_cached_call_builds_nothing(
    built: dict[str, Any], env: StudentEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = env.prefix / MANIFEST
    before = manifest.stat().st_mtime_ns

    def no_build(*args: object) -> None:
        raise AssertionError("a cached environment was built again")

    monkeypatch.setattr(environment, "_build", no_build)
    assert ensure_environment(built["course"], root=built["root"]) == env
    assert manifest.stat().st_mtime_ns == before
    assert sorted(p.name for p in built["root"].iterdir()) == sorted([LOCK, env.prefix.name])


def test_a_failed_build_raises_naming_the_requirement_and_leaves_nothing(tmp_path: Path) -> None:
    course = tmp_path / "course.txt"
    course.write_text("vpnsim-no-such-project-4d1f==1.0\n")
    root = tmp_path / "envs"
    with pytest.raises(HarnessError) as info:
        ensure_environment(course, root=root)
    message = str(info.value)
    assert message.startswith(
        "the student environment could not be built: pip could not install "
        f"vpnsim-no-such-project-4d1f==1.0 (from {course}); pip said:\n"
    )
    assert message.splitlines()[-1] == (
        "  ERROR: No matching distribution found for vpnsim-no-such-project-4d1f==1.0"
    )
    assert [p.name for p in root.iterdir()] == [LOCK]
    assert find_environment(course, root=root) is None


def test_a_killed_builds_leftover_is_removed_by_the_next_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "envs"
    key = environment_key(course_requirements(), base_interpreter()[0])
    stale = root / f".{key}.build-999999-abcdef"
    (stale / "bin").mkdir(parents=True)
    built: list[Path] = []

    def fake_build(
        building: Path, final: Path, requirements: tuple[str, ...], *rest: object
    ) -> None:
        built.append(building)
        (building / "bin").mkdir(parents=True)
        (building / "bin" / "python3").symlink_to(sys.executable)
        (building / MANIFEST).write_text(
            json.dumps({"requirements": list(requirements), "base_prefix": "/base"})
        )

    monkeypatch.setattr(environment, "_build", fake_build)
    env = ensure_environment(root=root)
    assert env == StudentEnvironment(root / key, GRADE_REQUIREMENTS, Path("/base"))
    assert len(built) == 1 and built[0].parent == root
    assert sorted(p.name for p in root.iterdir()) == sorted([LOCK, key])


def test_an_environment_without_its_manifest_is_not_one(tmp_path: Path) -> None:
    key = environment_key(course_requirements(), base_interpreter()[0])
    (tmp_path / key / "bin").mkdir(parents=True)
    (tmp_path / key / "bin" / "python3").symlink_to(sys.executable)
    assert find_environment(root=tmp_path) is None


# -- requirements -------------------------------------------------------------------------


def test_the_default_requirements_are_exactly_the_grade_extra() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = tuple(pyproject["project"]["optional-dependencies"]["grade"])
    assert extra == GRADE_REQUIREMENTS == ("scapy>=2.5",)
    assert grade_requirements() == extra
    assert course_requirements() == extra
    # The test extra brings the grade extra (interop tests run scapy programs).
    assert "vpnsim[grade]" in pyproject["project"]["optional-dependencies"]["test"]


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ('scapy>=2.5; extra == "grade"', "scapy>=2.5"),
        ("scapy>=2.5 ; extra == 'grade'", "scapy>=2.5"),
        ('pytest>=8.0; extra == "test"', None),
        ("pyroute2>=0.9.5", None),
        ('x>1; python_version >= "3.11" and extra == "grade"', 'x>1; python_version >= "3.11"'),
    ],
)
def test_the_grade_extra_read_from_metadata(requirement: str, expected: str | None) -> None:
    assert _in_extra(requirement, "grade") == expected


def test_grade_requirements_from_installed_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    declared = ["pydantic>=2.7", 'numpy>=2; extra == "grade"', 'scapy>=2.6; extra == "grade"',
                'pytest>=8.0; extra == "test"']  # fmt: skip
    monkeypatch.setattr(environment.metadata, "requires", lambda name: declared)
    assert grade_requirements() == ("numpy>=2", "scapy>=2.6")
    monkeypatch.setattr(environment.metadata, "requires", lambda name: ["pydantic>=2.7"])
    assert grade_requirements() == GRADE_REQUIREMENTS


def test_a_requirements_file_adds_to_the_grade_extra(tmp_path: Path) -> None:
    course = tmp_path / "requirements.txt"
    course.write_text("# course\nnumpy>=1.26\n\n  pycryptodome==3.20 # AES\nscapy>=2.5\n")
    assert read_requirements(course) == ("numpy>=1.26", "pycryptodome==3.20", "scapy>=2.5")
    assert course_requirements(course) == ("scapy>=2.5", "numpy>=1.26", "pycryptodome==3.20")


@pytest.mark.parametrize("line", ["-r other.txt", "--requirement other.txt", "-c pins.txt"])
def test_a_requirements_file_with_includes_is_refused(tmp_path: Path, line: str) -> None:
    course = tmp_path / "requirements.txt"
    course.write_text(f"numpy\n{line}\n")
    with pytest.raises(HarnessError) as info:
        read_requirements(course)
    assert str(info.value) == (
        f"{course}:2: {line}: list the requirements themselves (includes are not followed)"
    )


def test_a_missing_requirements_file(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as info:
        ensure_environment(tmp_path / "nope.txt", root=tmp_path / "envs")
    assert str(info.value) == (
        f"--requirements {tmp_path / 'nope.txt'}: cannot read it: No such file or directory"
    )
    assert not (tmp_path / "envs").exists()


def test_the_key_follows_requirements_and_interpreter_not_their_order() -> None:
    python = Path("/usr/bin/python3.11")
    assert environment_key(("a", "b"), python) == environment_key(("b", "a"), python)
    assert environment_key(("a",), python) != environment_key(("a", "b"), python)
    assert environment_key(("a",), python) != environment_key(("a",), Path("/opt/py/python3"))
    assert len(environment_key(("a",), python)) == 16


# -- hidden dirs on other layouts -----------------------------------------------------------


def test_hidden_dirs_of_a_debian_layout(tmp_path: Path) -> None:
    usr = tmp_path / "usr"
    for folder in ("lib/python3.11/dist-packages", "lib/python3/dist-packages",
                   "local/lib/python3.11/dist-packages", "lib/python3.11/encodings"):  # fmt: skip
        (usr / folder).mkdir(parents=True)
    venv = tmp_path / "envs" / "k"
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    env = StudentEnvironment(venv, ("scapy>=2.5",), usr)
    assert env.hidden_dirs() == (
        usr / "lib/python3.11/dist-packages",
        usr / "lib/python3/dist-packages",
        usr / "local/lib/python3.11/dist-packages",
    )
    assert env.visible_dirs() == (venv, usr)


def test_hidden_dirs_never_hold_the_venv(tmp_path: Path) -> None:
    """A venv under the base prefix (e.g. /usr/local/...): its site-packages stay visible."""
    base = tmp_path / "py"
    (base / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    venv = base / "lib" / "python3.11" / "site-packages" / "envs" / "k"
    venv.mkdir(parents=True)
    assert StudentEnvironment(venv, (), base).hidden_dirs() == ()
    assert StudentEnvironment(venv, (), base).bin_dir == venv / "bin"


# -- the course runner passes it on ---------------------------------------------------------


def _graded_with(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[StudentEnvironment | None]:
    """The environment each submission's grading got from grade_course (one submission)."""
    from vpnsim.grade import course
    from vpnsim.grade.grader import GradeOptions
    from vpnsim.grade.report import SubmissionResult
    from vpnsim.grade.rubric import load_rubric

    seen: list[StudentEnvironment | None] = []

    def fake_grade(
        path: Path, name: str, options: GradeOptions, notify: object, grade: object
    ) -> SubmissionResult:
        seen.append(options.environment)
        return SubmissionResult(str(path), name, {}, 0.0, 100.0, name)

    monkeypatch.setattr(course, "_grade", fake_grade)
    given = kwargs.pop("options_environment", None)
    options = GradeOptions(load_rubric(), Path("/a"), Path("/r"), environment=given)
    course.grade_course([Path("/course/alice")], options, **kwargs)
    return seen


def test_grade_course_passes_the_environment_to_every_submission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vpnsim.grade import course

    mine = StudentEnvironment(Path("/envs/mine"), ("scapy>=2.5",), Path("/base"))
    other = StudentEnvironment(Path("/envs/other"), ("scapy>=2.5",), Path("/base"))
    default = StudentEnvironment(Path("/envs/default"), ("scapy>=2.5",), Path("/base"))
    monkeypatch.setattr(course, "ensure_environment", lambda: default)
    assert _graded_with(monkeypatch, environment=mine) == [mine]
    assert _graded_with(monkeypatch, environment=mine, options_environment=other) == [mine]
    assert _graded_with(monkeypatch, options_environment=other) == [other]
    assert _graded_with(monkeypatch) == [default]


def test_it_travels_to_spawned_workers() -> None:
    import pickle

    env = StudentEnvironment(Path("/envs/k"), ("scapy>=2.5", "six"), Path("/base"))
    assert pickle.loads(pickle.dumps(env)) == env
