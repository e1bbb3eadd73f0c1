"""--vpn-impl values: the reference, a SEED submission folder, or client=/server= commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vpnsim.impl import REFERENCE, ImplementationError, TunnelImpl
from vpnsim.seed import seed_tunnel


def test_default_and_reference_select_the_reference_tunnel() -> None:
    assert TunnelImpl.parse([]) is REFERENCE
    assert TunnelImpl.parse(["reference"]) is REFERENCE


def test_reference_argv_carries_the_labs_addresses_and_port() -> None:
    spec = seed_tunnel().tunnel
    assert spec is not None
    assert REFERENCE.argv("client", spec) == (
        sys.executable,
        "-m",
        "vpnsim.tunnel",
        "client",
        "--port",
        "9090",
        "--server",
        "10.9.0.11",
        "--tun-address",
        "192.168.53.99/24",
        "--route",
        "192.168.60.0/24",
    )
    assert REFERENCE.argv("server", spec) == (
        sys.executable,
        "-m",
        "vpnsim.tunnel",
        "server",
        "--port",
        "9090",
        "--tun-address",
        "192.168.53.1/24",
    )


def test_a_folder_with_the_seed_file_names_runs_them_with_python3(tmp_path: Path) -> None:
    (tmp_path / "tun_client.py").write_text("")
    (tmp_path / "tun_server.py").write_text("")
    impl = TunnelImpl.parse([str(tmp_path)])
    assert impl.client_argv == ("python3", "-u", str(tmp_path / "tun_client.py"))
    assert impl.server_argv == ("python3", "-u", str(tmp_path / "tun_server.py"))
    assert impl.cwd == tmp_path


def test_a_folder_without_tun_server_py_is_refused_with_the_accepted_forms(tmp_path: Path) -> None:
    (tmp_path / "tun_client.py").write_text("")
    with pytest.raises(ImplementationError, match=r"tun_client\.py and tun_server\.py"):
        TunnelImpl.parse([str(tmp_path)])


def test_one_side_given_keeps_the_reference_on_the_other() -> None:
    impl = TunnelImpl.parse(["client=./my client --fast"])
    spec = seed_tunnel().tunnel
    assert spec is not None
    assert impl.argv("client", spec) == ("./my", "client", "--fast")
    assert impl.argv("server", spec) == REFERENCE.argv("server", spec)


@pytest.mark.parametrize("value", ["router=x", "client=", "client", "=cmd"])
def test_malformed_side_values_are_refused(value: str) -> None:
    with pytest.raises(ImplementationError):
        TunnelImpl.parse([value, "server=x"])
