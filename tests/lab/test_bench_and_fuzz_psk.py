"""The PSK files of `vpnsim bench tunnels` and of the fuzz (`nox -s fuzz`) are made as any
AEAD tunnel's are (`vpn.write_psk`): 0600 from their creation, even under a umask that would
let others read, in the lab's own state folder, and gone when the tunnel is."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.impl import REFERENCE_VARIANTS
from vpnsim.seed import seed_tunnel
from vpnsim.topology import build_lab
from vpnsim.tunnel.bench.contenders import CONTENDERS
from vpnsim.tunnel.fuzz import MODES, start_reference_lab

pytestmark = pytest.mark.lab


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that masks nothing: a file written with default permissions is 0666."""
    before = os.umask(0)
    yield
    os.umask(before)


def _argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_the_fuzz_runs_every_variant_of_the_table() -> None:
    assert sorted(MODES.values()) == sorted(REFERENCE_VARIANTS.values())


@pytest.mark.usefixtures("open_umask")
def test_the_fuzz_lab_psk_is_private_and_goes_with_its_lab(tmp_path: Path) -> None:
    lab, tunnel = start_reference_lab(tmp_path, "pk", MODES["aead"])
    try:
        psk = tunnel.psk_file
        assert psk is not None and psk.parent == lab.state_dir
        assert stat.S_IMODE(psk.stat().st_mode) == 0o600
        for program in (tunnel.client, tunnel.server):
            assert program.argv[program.argv.index("--psk-file") + 1] == str(psk)
    finally:
        lab.teardown()
    assert not psk.exists()


@pytest.mark.usefixtures("open_umask")
def test_the_bench_psk_is_private_and_goes_when_its_contender_stops(tmp_path: Path) -> None:
    lab = build_lab(seed_tunnel(), log_dir=tmp_path / "logs", owner_pid=os.getpid())
    try:
        started = CONTENDERS["reference-aead"](lab, tmp_path, None)
        try:
            psks = list(lab.state_dir.glob("*.psk"))
            assert len(psks) == 1
            assert stat.S_IMODE(psks[0].stat().st_mode) == 0o600
            for pid in started.pids:
                argv = _argv(pid)
                assert argv[argv.index("--psk-file") + 1] == str(psks[0])
        finally:
            started.stop()
        assert not psks[0].exists()
        assert list(tmp_path.glob("*.psk")) == []  # none in the bench's work folder either
        plain = CONTENDERS["reference"](lab, tmp_path, None)
        plain.stop()
        assert list(lab.state_dir.glob("*.psk")) == []
    finally:
        lab.teardown()
