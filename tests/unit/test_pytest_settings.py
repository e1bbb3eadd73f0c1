"""The plugin's settings as a user meets them: resolved once at start-up, and a bad value is a
usage error that names the option, before any test runs (a typo in `vpn_pcap` used to turn
captures off silently; a bad `vpn_probe_timeout` failed at fixture time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

INNER = """
def test_inner(request):
    from vpnsim.pytest.settings import settings_of

    found = settings_of(request.config)
    print("SETTINGS", found.impl.label, found.probe_timeout, found.pcap)
"""


@pytest.mark.parametrize(
    ("args", "ini", "error"),
    [
        ([], "vpn_pcap = faild", "ERROR: vpn_pcap (ini): expected one of failed, off, got 'faild'"),
        (
            [],
            "vpn_probe_timeout = 2s",
            "ERROR: vpn_probe_timeout (ini): expected seconds, > 0 and <= 3600, got '2s'",
        ),
        (
            ["--vpn-probe-timeout=0"],
            "",
            "ERROR: --vpn-probe-timeout: expected seconds, > 0 and <= 3600, got '0'",
        ),
        (
            ["--vpn-impl=no/such/folder"],
            "",
            "ERROR: --vpn-impl: --vpn-impl no/such/folder: expected reference, reference-aead, "
            "reference-offload, reference-aead-offload, reference-gso, reference-aead-gso, a "
            "folder with ",
        ),
    ],
)
def test_a_bad_setting_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, args: list[str], ini: str, error: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_inner=INNER)

    result = pytester.runpytest_subprocess(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(line.startswith(error) for line in result.errlines), result.errlines
    assert "test_inner" not in result.stdout.str()  # nothing ran


def test_settings_come_from_the_command_line_over_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nvpn_pcap = off\nvpn_probe_timeout = 5\n")
    pytester.makepyfile(test_inner=INNER)

    result = pytester.runpytest_subprocess("-s", "--vpn-probe-timeout=0.5")

    assert result.ret == pytest.ExitCode.OK
    assert any(line.endswith("SETTINGS reference 0.5 off") for line in result.outlines)
    assert "vpnsim: implementation under test: reference" in result.outlines  # the header


def test_the_plugin_leaves_hypothesis_alone() -> None:
    """Loading the plugin imports no Hypothesis, so it registers no profile of its own (it used
    to replace Hypothesis's `ci` profile in every project with vpnsim installed)."""
    code = "import sys, vpnsim.pytest.plugin; print('hypothesis' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout == "False\n"
