"""`pytest` at the repository root: tests/ and every scenarios/*.toml (one item per check).

The plugin that collects scenario files and provides the lab fixtures is registered by the
`pytest11` entry point once vpnsim is installed (`pip install -e .`, as nox does); from a bare
checkout it is loaded here instead.
"""

from importlib.metadata import entry_points

_installed = any(ep.name == "vpnsim" for ep in entry_points(group="pytest11"))
pytest_plugins = [] if _installed else ["vpnsim.pytest_plugin"]
