"""`nox -s fuzz`, small: every mode of the reference tunnel takes a storm of random, truncated,
replayed, bit-flipped and reordered datagrams at both ends while TCP flows, and crashes
nothing, writes nothing malformed to a TUN, and keeps forwarding (`vpnsim.tunnel.fuzz`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpnsim.tunnel.fuzz import MODES, run_mode

pytestmark = pytest.mark.lab

COUNT = 6000  # `nox -s fuzz` sends a million per mode


@pytest.mark.parametrize("mode", list(MODES))
def test_a_storm_of_bad_datagrams_crashes_nothing_and_traffic_flows(
    mode: str, tmp_path: Path
) -> None:
    result = run_mode(mode, COUNT, tmp_path)
    assert result.problems() == []
    assert result.sent == {"server": COUNT // 2, "client": COUNT // 2}
    # Some of the storm reached each end and was dropped there, counted (the rest: replays
    # of real packets a plain end forwards, or datagrams the kernel dropped in the burst).
    assert result.dropped["server"] > 0 and result.dropped["client"] > 0
    assert result.exit_codes == (0, 0)
