"""The plugin's old module name, kept so `-p vpnsim.pytest_plugin` (and an install whose entry
point still names it) keeps working. The plugin is `vpnsim.pytest.plugin`: pytest finds hooks
and fixtures among a plugin module's names, so this module only re-exports them."""

from vpnsim.pytest.plugin import *  # noqa: F403  (the fixtures, as plugin.__all__ lists them)
from vpnsim.pytest.plugin import (
    pytest_addoption,
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_report_header,
    pytest_runtest_call,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_xdist_make_scheduler,
)

__all__ = [
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_xdist_make_scheduler",
]
