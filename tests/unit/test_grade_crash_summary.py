"""What a student reads about a crashed program: `crash_summary` of its stderr.

The tracebacks are real: tiny student scripts run with this Python (no root, no lab), and the
work folder is stripped from the paths as `Side.exit_reason` does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vpnsim.grade.sides import STDERR_LINES, build_summary, crash_summary

CORPUS = Path(__file__).resolve().parents[1] / "data" / "submissions"


def _stderr_of(work: Path, script: str, source: str, *, relative: bool = True) -> str:
    """Run `script` (written into `work`) and return its stderr, paths as exit_reason shows."""
    work.mkdir(parents=True, exist_ok=True)
    (work / script).write_text(source)
    return _run(work, script, relative=relative)


def _run(work: Path, script: str, *, relative: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, "-u", str(work / script)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    return result.stderr.replace(f"{work}/", "") if relative else result.stderr


def test_stderr_lines() -> None:
    assert STDERR_LINES == 4


@pytest.fixture(scope="module")
def scapy_crash(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A student's script that dies deep inside scapy (run once: importing scapy is slow)."""
    work = tmp_path_factory.mktemp("work")
    source = 'from scapy.all import IP\n\nIP(b"E" * 20).scr\n'
    return work, _stderr_of(work, "tun_client.py", source, relative=False)


def test_scapy_traceback_names_the_students_line_and_the_exception(
    scapy_crash: tuple[Path, str],
) -> None:
    work, stderr = scapy_crash
    stderr = stderr.replace(f"{work}/", "")
    # the real thing: two chained tracebacks, deep inside scapy
    assert stderr.count("Traceback (most recent call last):") == 2
    assert "scapy/packet.py" in stderr
    assert crash_summary(stderr) == (
        'File "tun_client.py", line 3, in <module>: IP(b"E" * 20).scr\nAttributeError: scr'
    )


def test_scapy_traceback_with_absolute_paths(scapy_crash: tuple[Path, str]) -> None:
    work, stderr = scapy_crash
    assert crash_summary(stderr) == (
        f'File "{work}/tun_client.py", line 3, in <module>: IP(b"E" * 20).scr\nAttributeError: scr'
    )


def test_the_deepest_own_frame_is_named(tmp_path: Path) -> None:
    (tmp_path / "tunnel.py").write_text(
        "import json\n\n\ndef parse(data):\n    return json.loads(data)\n"
    )
    source = "import tunnel\n\n\ndef main():\n    tunnel.parse('not json')\n\n\nmain()\n"
    stderr = _stderr_of(tmp_path, "tun_client.py", source)
    assert "/lib/python" in stderr  # json's own frames are in the traceback
    assert crash_summary(stderr) == (
        'File "tunnel.py", line 5, in parse: return json.loads(data)\n'
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)"
    )


def test_a_plain_exception(tmp_path: Path) -> None:
    source = "import os\n\ntun = os.open('/nonexistent/net/tun', os.O_RDWR)\n"
    stderr = _stderr_of(tmp_path, "tun_client.py", source)
    assert crash_summary(stderr) == (
        "File \"tun_client.py\", line 3, in <module>: tun = os.open('/nonexistent/net/tun', "
        "os.O_RDWR)\n"
        "FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent/net/tun'"
    )


def test_a_frozen_stdlib_frame_is_not_the_students_code(tmp_path: Path) -> None:
    # Python 3.11 freezes os, posixpath, codecs...: their frames read `File "<frozen
    # posixpath>", line N, in join` and have no source line under them.
    source = 'import os\n\nos.path.join(None, "tun")\n'
    stderr = _stderr_of(tmp_path, "tun_client.py", source)
    assert 'File "<frozen posixpath>"' in stderr
    assert crash_summary(stderr) == (
        'File "tun_client.py", line 3, in <module>: os.path.join(None, "tun")\n'
        "TypeError: expected str, bytes or os.PathLike object, not NoneType"
    )


def test_syntax_error_in_the_script_run(tmp_path: Path) -> None:
    # Python prints no "Traceback" header for a SyntaxError in the script it runs: the last
    # lines, which are the file and line, the code, the caret and the error.
    work = tmp_path / "work"
    work.mkdir()
    corpus = CORPUS / "syntax_error" / "tun_client.py"
    (work / "tun_client.py").write_text(corpus.read_text())
    stderr = _run(work, "tun_client.py")
    assert "Traceback" not in stderr
    lines = crash_summary(stderr).split("\n")
    assert len(lines) == 4
    assert lines[0] == 'File "tun_client.py", line 16'
    assert lines[1] == '    print "Interface Name: " + ifname'
    assert set(lines[2].strip()) == {"^"}
    assert lines[3] == (
        "SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?"
    )


def test_syntax_error_in_an_imported_module(tmp_path: Path) -> None:
    (tmp_path / "tunnel.py").write_text("import os\n\ndef up(:\n    pass\n")
    stderr = _stderr_of(tmp_path, "tun_server.py", "import tunnel\n")
    assert stderr.startswith("Traceback (most recent call last):")
    assert crash_summary(stderr) == (
        'File "tunnel.py", line 3: def up(:\nSyntaxError: invalid syntax'
    )


def test_hand_written_traceback_skips_library_frames() -> None:
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "tun_server.py", line 30, in <module>\n'
        "    sock.sendto(data, (ip, port))\n"
        '  File "/usr/lib/python3.11/socket.py", line 10, in sendto\n'
        "    return x\n"
        '  File "/opt/venv/site-packages/scapy/all.py", line 3, in f\n'
        "    g()\n"
        "OSError: [Errno 90] Message too long\n"
    )
    assert crash_summary(stderr) == (
        'File "tun_server.py", line 30, in <module>: sock.sendto(data, (ip, port))\n'
        "OSError: [Errno 90] Message too long"
    )


def test_traceback_only_in_library_code_gives_the_exception() -> None:
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/runpy.py", line 1, in _run\n'
        "    exec(code)\n"
        "KeyboardInterrupt\n"
    )
    assert crash_summary(stderr) == "KeyboardInterrupt"


def test_text_before_the_traceback_is_dropped() -> None:
    stderr = (
        "Interface Name: tun0\n"
        "WARNING: No route found\n"
        "Traceback (most recent call last):\n"
        '  File "tun_client.py", line 9, in <module>\n'
        "    os.write(tun, data)\n"
        "OSError: [Errno 22] Invalid argument\n"
    )
    assert crash_summary(stderr) == (
        'File "tun_client.py", line 9, in <module>: os.write(tun, data)\n'
        "OSError: [Errno 22] Invalid argument"
    )


def test_non_traceback_stderr_gives_the_last_four_lines() -> None:
    stderr = "one\ntwo\n\nthree   \n   \nfour\nfive\t\nsix\n\n"
    assert crash_summary(stderr) == "three\nfour\nfive\nsix"


def test_short_non_traceback_stderr_is_kept() -> None:
    assert crash_summary("vpnserver: bind: Address already in use\n") == (
        "vpnserver: bind: Address already in use"
    )
    assert crash_summary("a\nb") == "a\nb"


@pytest.mark.parametrize("stderr", ["", "\n", "   \n\t\n", "\n\n\n"])
def test_empty_stderr(stderr: str) -> None:
    assert crash_summary(stderr) == ""


def test_interleaved_tracebacks_of_forked_processes_end_at_the_last_finished_one() -> None:
    # A fork bomb's children fail os.fork() together, each writing a traceback line by line
    # into the same stderr; the last one is killed (SIGKILL) before its exception line.
    stderr = (
        "bye\n"
        "Traceback (most recent call last):\n"
        "Traceback (most recent call last):\n"
        '  File "tun_client.py", line 24, in <module>\n'
        '  File "tun_client.py", line 24, in <module>\n'
        "    os.fork()\n"
        "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"
        "    os.fork()\n"
        "bye\n"
        "Traceback (most recent call last):\n"
        '  File "tun_client.py", line 24, in <module>\n'
    )

    assert crash_summary(stderr) == (
        'File "tun_client.py", line 24, in <module>: os.fork()\n'
        "BlockingIOError: [Errno 11] Resource temporarily unavailable"
    )


def test_a_frame_whose_source_line_came_after_the_exception_line_is_passed_over() -> None:
    # Two children's tracebacks, line by line: the second's frame line is the last before the
    # first's exception line, and its `os.fork()` comes after it.
    stderr = (
        "Traceback (most recent call last):\n"
        "Traceback (most recent call last):\n"
        '  File "tun_client.py", line 24, in <module>\n'
        "    os.fork()\n"
        '  File "tun_client.py", line 24, in <module>\n'
        "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"
        "    os.fork()\n"
    )

    assert crash_summary(stderr) == (
        'File "tun_client.py", line 24, in <module>: os.fork()\n'
        "BlockingIOError: [Errno 11] Resource temporarily unavailable"
    )


def test_a_traceback_cut_before_its_exception_line_still_gives_what_there_is() -> None:
    stderr = 'Traceback (most recent call last):\n  File "tun_server.py", line 9, in <module>\n'

    assert crash_summary(stderr) == 'File "tun_server.py", line 9, in <module>'  # once


# -- a failed build: the compiler's first diagnostic, not the middle of its caret lines -------


def _gcc(work: Path, source: str, name: str = "vpnclient.c") -> str:
    """gcc's stderr for `source` (compiled and linked in `work`, as a student's make would)."""
    (work / name).write_text(source)
    result = subprocess.run(
        ["gcc", "-Wall", "-o", "vpnclient", name],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        check=False,
    )
    assert result.returncode == 1, result.stderr
    return result.stderr


IMPLICIT = (
    "#include <stdio.h>\n\nint main(void)\n{\n"
    '    int fd = tun_alloc("tun0");\n    printf("%d\\n", fd);\n    return 0;\n}\n'
)


def test_build_summary_starts_at_the_first_warning_and_names_the_link_error(tmp_path: Path) -> None:
    stderr = _gcc(tmp_path, IMPLICIT)
    assert stderr.startswith("vpnclient.c: In function ")  # not a diagnostic: no line number
    assert "/tmp/cc" in stderr  # the linker names the compiler's temporary object file
    summary = build_summary(stderr)
    first, second = summary.split("\n")
    assert first.startswith("vpnclient.c:5:14: warning: implicit declaration of function ")
    assert first.endswith("[-Wimplicit-function-declaration]")
    assert second.startswith("vpnclient.c:(.text+0x")  # the offset is the compiler's
    assert second.endswith("undefined reference to `tun_alloc'")


def test_build_summary_is_the_same_on_every_run(tmp_path: Path) -> None:
    first = _gcc(tmp_path, IMPLICIT)
    again = _gcc(tmp_path, IMPLICIT)
    assert first != again  # another temporary file name each time
    assert build_summary(first) == build_summary(again)


def test_build_summary_of_an_error_before_a_warning(tmp_path: Path) -> None:
    source = "int main(void)\n{\n    int x = 1\n    return x;\n}\n"
    summary = build_summary(_gcc(tmp_path, source, "bad.c"))
    assert summary.startswith("bad.c:4:5: error: expected ")
    assert "\n" not in summary  # the first diagnostic is the first error: one line


def test_build_summary_adds_the_first_error_after_a_warning() -> None:
    stderr = (
        "vpnserver.c: In function 'main':\n"
        "vpnserver.c:12:5: warning: unused variable 'n' [-Wunused-variable]\n"
        "   12 |     int n;\n"
        "      |         ^\n"
        "vpnserver.c:20:9: error: 'sockfd' undeclared (first use in this function)\n"
        "vpnserver.c:21:9: error: 'tunfd' undeclared (first use in this function)\n"
        "make: *** [Makefile:4: vpnserver] Error 1\n"
    )
    assert build_summary(stderr) == (
        "vpnserver.c:12:5: warning: unused variable 'n' [-Wunused-variable]\n"
        "vpnserver.c:20:9: error: 'sockfd' undeclared (first use in this function)"
    )


def test_build_summary_of_a_link_error_alone_hides_the_temporary_file() -> None:
    stderr = (
        "/usr/bin/ld: /tmp/ccKSfN7H.o: in function `main':\n"
        "/usr/bin/ld: /tmp/ccKSfN7H.o: undefined reference to `tun_alloc'\n"
        "collect2: error: ld returned 1 exit status\n"
    )
    assert (
        build_summary(stderr) == "/usr/bin/ld: /tmp/ccXXXXXX.o: undefined reference to `tun_alloc'"
    )


def test_build_summary_without_diagnostics_gives_the_last_lines() -> None:
    stderr = "cc vpnclient.c\none\ntwo\nthree\nmake: *** No rule to make target 'all'.  Stop.\n"
    assert (
        build_summary(stderr) == "one\ntwo\nthree\nmake: *** No rule to make target 'all'.  Stop."
    )
    assert build_summary("") == ""


def test_getpass_warnings_are_the_graders_doing_not_the_students() -> None:
    # The TLS lab gives a client its login on stdin: Python's getpass then warns.
    stderr = (
        "/usr/lib/python3.11/getpass.py:91: GetPassWarning: Can not control echo on the "
        "terminal.\n  passwd = fallback_getpass(prompt, stream)\n"
        "Warning: Password input may be echoed.\nPassword: \n"
    )
    assert crash_summary(stderr) == "Password:"
