"""The two ends of a graded tunnel: the student's programs (jailed) or vpnsim's reference.

A student's program runs in a copy of the submission folder, inside the jail
(`vpnsim.grade.jail`): root only in the lab host's namespaces, limited in memory, processes
and time. Its exit is a finding, reported with the last lines of its stderr.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vpnsim import proc
from vpnsim.grade.environment import StudentEnvironment
from vpnsim.grade.jail import JailLimits, JailView, jail_cleanup, jailed_argv
from vpnsim.impl import reference_argv
from vpnsim.topology import Lab

Role = Literal["client", "server"]
STDERR_LINES = 4  # of a crashed program, in a reason (the whole log is evidence)


@dataclass
class Side:
    role: Role
    host: str
    student: bool
    program: proc.Program
    jail: str = ""
    work: Path = Path("/nonexistent")
    python_bin: str = ""  # the course's Python's bin folder (in its tracebacks' first line)

    @property
    def who(self) -> str:
        return f"your {self.role}" if self.student else f"the reference {self.role}"

    def exit_reason(self) -> str | None:
        """Why it is no longer running ("your server exited with status 1: ..."), or None."""
        code = self.program.exit_code()
        if code is None:
            return None
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        if code > 128:  # the jail reports a killed program as a shell does
            how = f"was killed by signal {code - 128}"
        # The work folder's path is a temporary name: show paths relative to the submission;
        # and `python3` for the course's interpreter, whose folder names a hash.
        stderr = self.program.stderr().replace(f"{self.work}/", "")
        if self.python_bin:
            stderr = stderr.replace(f"{self.python_bin}/", "")
        tail = crash_summary(stderr)
        return f"{self.who} {how}" + (f": {tail}" if tail else " (nothing on stderr)")


def _source_line(lines: list[str]) -> str:
    return next(
        (
            line.strip()
            for line in lines
            if line.startswith("    ") and not line.strip().startswith(("File ", "^"))
        ),
        "",
    )


def crash_summary(stderr: str) -> str:
    """The few stderr lines a student needs: for a Python traceback, the deepest line of
    their own code and the exception; otherwise the last lines.

    Several processes (a program that forks) may write tracebacks into one stderr at once,
    line by line, and a process killed mid-traceback leaves one unfinished: the summary is
    taken from the last traceback that reached its exception line."""
    lines = [
        line.rstrip()
        for line in stderr.strip().splitlines()
        if line.strip() and not GRADER_NOISE.search(line)
    ]
    if not lines:
        return ""
    if not any(line.startswith("Traceback") for line in lines):
        return "\n".join(lines[-STDERR_LINES:])
    first = next(i for i, line in enumerate(lines) if line.startswith("Traceback"))
    ends = [i for i in range(first + 1, len(lines)) if EXCEPTION_LINE.match(lines[i])]
    end = ends[-1] if ends else len(lines) - 1
    own = [
        i
        for i, line in enumerate(lines[:end])
        if line.lstrip().startswith('File "') and "/lib/python" not in line
        and "site-packages" not in line and not line.lstrip().startswith('File "<')
    ]  # fmt: skip
    picked = []
    if own:
        # The deepest own frame whose source line came before the exception line (the next
        # indented line that is neither a frame nor a caret line): interleaved, a process's
        # frame line may be the last one there while its source line came after.
        found = ((i, _source_line(lines[i + 1 : end])) for i in reversed(own))
        frame, code = next(((i, c) for i, c in found if c), (own[-1], ""))
        where = lines[frame].strip()
        if code:
            where += f": {code}"
        picked.append(where)
    picked.append(lines[end].strip())
    return "\n".join(picked)


# What Python's getpass writes when stdin is no terminal (the grader gives the login on stdin):
# the grader's doing, not the student's.
GRADER_NOISE = re.compile(
    r"GetPassWarning: Can not control echo|^\s*passwd = fallback_getpass\(|"
    r"^Warning: Password input may be echoed\.$"
)
# A compiler's diagnostic: "vpnclient.c:77:13: warning: ...", "tun.h:3: error: ...".
DIAGNOSTIC = re.compile(r"[^\s:]+:\d+(?::\d+)?: (?:fatal error|error|warning): ")
ERROR = re.compile(r"[^\s:]+:\d+(?::\d+)?: (?:fatal error|error): ")
# A linker's complaint: "vpnclient.c:(.text+0x1a): undefined reference to `tun_alloc'".
LINKER = re.compile(r"undefined reference to|multiple definition of|cannot find -l")
# The compiler driver's temporary files (/tmp/ccKSfN7H.o): another name on every run.
TEMPORARY = re.compile(r"/tmp/cc[A-Za-z0-9]{6}\.(?:o|s|i|ii|res)\b")


def build_summary(stderr: str) -> str:
    """The lines of a failed build that a student reads first: the compiler's first
    diagnostic (file:line, warning or error), then its first error if that came later, or
    else the linker's first complaint; without diagnostics, the last lines. A temporary
    file's name is replaced by a fixed one, so the same mistake reads the same each time."""
    lines = [
        TEMPORARY.sub("/tmp/ccXXXXXX.o", line.rstrip())
        for line in stderr.strip().splitlines()
        if line.strip()
    ]
    diagnostics = [line for line in lines if DIAGNOSTIC.match(line)]
    errors = [line for line in diagnostics if ERROR.match(line)]
    linker = [line for line in lines if LINKER.search(line)]
    picked = diagnostics[:1]
    for more in (errors[:1], [] if errors else linker[:1]):
        picked += [line for line in more if line not in picked]
    if not picked:
        picked = linker[:1]
    return "\n".join(picked) if picked else "\n".join(lines[-STDERR_LINES:])


# "OSError: [Errno 22] ...", "KeyboardInterrupt", "mod.CustomError: ...": a traceback's last
# line (a capitalised name, so a stray "bye" printed by a sibling process is not one).
EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:: .*)?$")


def jail_view(environment: StudentEnvironment) -> JailView:
    """What student programs see of the course's Python: its venv first on PATH, the venv
    and its base interpreter read-only, the base interpreter's own packages hidden."""
    return JailView(
        bins=(environment.bin_dir,),
        read_only=environment.visible_dirs(),
        hidden=environment.hidden_dirs(),
    )


class Sides:
    """Starts and stops the ends of one lab's tunnel; cleans up every jail it made."""

    def __init__(
        self, lab: Lab, work: Path, client: tuple[str, ...], server: tuple[str, ...],
        limits: JailLimits, environment: StudentEnvironment,
    ) -> None:  # fmt: skip
        self.lab = lab
        self.work = work
        self.commands = {"client": client, "server": server}
        self.limits = limits
        self.jails: list[str] = []
        self.starts = {"client": 0, "server": 0}
        self.view = jail_view(environment)

    def start(self, role: Role, student: bool) -> Side:
        spec = self.lab.scenario.tunnel
        assert spec is not None
        host = spec.client if role == "client" else spec.server
        if not student:
            argv = reference_argv(role, spec)
            program = self.lab.start(host, argv, log_name=f"reference-{role}")
            return Side(role, host, False, program)
        return self.start_jailed(role, host, self.commands[role])

    def start_jailed(self, role: Role, host: str, command: Sequence[str]) -> Side:
        """Run the student's `command` for `role` on `host`, jailed, in the work copy."""
        name = f"{self.lab.name}-{role}{len(self.jails)}"
        self.jails.append(name)
        argv = jailed_argv(command, self.work, self.limits, name, view=self.view)
        self.starts[role] += 1
        log_name = role if self.starts[role] == 1 else f"{role}-start{self.starts[role]}"
        program = self.lab.start(host, argv, log_name=log_name, cwd=self.work)
        return Side(role, host, True, program, name, self.work, str(self.view.bins[0]))

    def build_host(self) -> str:
        """Where the build runs: the server's host."""
        spec = self.lab.scenario.tunnel
        assert spec is not None
        return spec.server

    def build(self, argv: tuple[str, ...], timeout: float) -> str | None:
        """Run the submission's build command (jailed, on the server host); None when it
        succeeded, else why not."""
        name = f"{self.lab.name}-build"
        self.jails.append(name)
        jailed = jailed_argv(argv, self.work, self.limits, name, view=self.view)
        program = self.lab.start(self.build_host(), jailed, log_name="build", cwd=self.work)
        try:
            code = program.popen.wait(timeout) if program.popen else None
        except subprocess.TimeoutExpired:
            program.stop()
            return f"the build ({shlex.join(argv)}) did not finish within {timeout:g} s"
        if code == 0:
            return None
        how = f"exited with status {code}"
        if code is not None and (code < 0 or code > 128):  # the jail reports N+128
            how = f"was killed by signal {-code if code < 0 else code - 128}"
        summary = build_summary(program.stderr().replace(f"{self.work}/", ""))
        return f"the build ({shlex.join(argv)}) failed, {how}" + (
            f": {summary}" if summary else " (nothing on stderr)"
        )

    def stop(self, side: Side) -> None:
        side.program.stop()
        if side.jail:
            jail_cleanup(side.jail)

    def cleanup(self) -> None:
        """Stop every program started here and remove every jail (idempotent)."""
        for program in self.lab.programs:
            program.stop(timeout=0.5)
        for name in self.jails:
            jail_cleanup(name)
