"""`pytest` at the repository root: tests/ and every vpnsim/scenarios/*.toml (one item per check).

The plugin that collects scenario files and provides the lab fixtures is registered by the
`pytest11` entry point once vpnsim is installed (`pip install -e .`, as nox does); from a bare
checkout it is loaded here instead.

The plugin leaves Hypothesis's profiles alone; this project's own `ci` profile is registered
here, where nox's `--hypothesis-profile=ci` finds it.
"""

from importlib.metadata import entry_points

from hypothesis import HealthCheck, settings

_installed = any(ep.name == "vpnsim" for ep in entry_points(group="pytest11"))
# pytester: tests of the plugin run pytest sessions of their own, as a user's project would.
pytest_plugins = ["pytester"] if _installed else ["pytester", "vpnsim.pytest.plugin"]

# Same examples every run, no per-example deadline (the first packet through a fresh tunnel
# may take milliseconds).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
