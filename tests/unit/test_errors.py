"""One root, VpnsimError, with the harness's errors, the user's and the findings apart; each
class keeps its name and the built-in base an older `except` may name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import vpnsim
from vpnsim.errors import (
    EXIT_FINDING,
    EXIT_USAGE,
    Finding,
    HarnessError,
    PacketError,
    UsageError,
    VpnsimError,
)
from vpnsim.grade.bandwidth import CapsFailed
from vpnsim.grade.course import CourseError
from vpnsim.grade.path import PathError
from vpnsim.grade.preflight import MissingModules
from vpnsim.grade.registry import UnknownLab
from vpnsim.grade.report import ReportError
from vpnsim.grade.rubric import RubricError
from vpnsim.grade.sandbox import JailError
from vpnsim.grade.workcopy import SubmissionTooLarge
from vpnsim.impair.control import WireGone
from vpnsim.impair.oracle import Unpredictable
from vpnsim.impair.spec import ImpairmentError
from vpnsim.impl import ImplementationError
from vpnsim.model import ScenarioError
from vpnsim.names import HostNameError
from vpnsim.net.namespace import NamespaceError
from vpnsim.net.rtnl import NetlinkFailure
from vpnsim.net.sysctl import SysctlError
from vpnsim.packets import MalformedPacket
from vpnsim.pki import PkiError
from vpnsim.proc import ProgramFailed
from vpnsim.scenario import ScenarioFileError
from vpnsim.scenario.redirect import NftablesMissing
from vpnsim.traffic.errors import NoRoute, ProbeFailed
from vpnsim.tunnel.bench.measure import BenchError
from vpnsim.tunnel.crypto import CryptoError, PskFileError
from vpnsim.tunnel.frames import MalformedFrame
from vpnsim.tunnel.secure_wire import MalformedMessage
from vpnsim.tunnel.shadow import ShadowError, UnsupportedHash
from vpnsim.tunnel.tls_channel import ChannelClosed

BRANCHES = {
    HarnessError: [
        SysctlError,
        NamespaceError,
        NetlinkFailure,
        WireGone,
        JailError,
        MissingModules,
        CapsFailed,
        PkiError,
        NftablesMissing,
        BenchError,
    ],
    UsageError: [
        ScenarioError,
        ScenarioFileError,
        ImpairmentError,
        ImplementationError,
        RubricError,
        PathError,
        ShadowError,
        UnsupportedHash,
        HostNameError,
        PskFileError,
        CourseError,
        ReportError,
        UnknownLab,
        Unpredictable,
    ],
    Finding: [
        ProgramFailed,
        ProbeFailed,
        NoRoute,
        SubmissionTooLarge,
        MalformedPacket,
        MalformedFrame,
        ChannelClosed,
        CryptoError,
        MalformedMessage,
    ],
}
# Not errors: Stopped is the tunnel's signal handler unwinding its loop; Interrupted (and
# CourseInterrupted) a command's, KeyboardInterrupts. The two others are in files this change
# was not to edit (pytest_scenarios.py, grade/trace.py): findings.
OUTSIDE = {"Stopped", "Interrupted", "CourseInterrupted", "CheckFailed", "Failed"}


def test_the_three_branches_share_the_root_and_nothing_else() -> None:
    for branch in (HarnessError, UsageError, Finding):
        assert issubclass(branch, VpnsimError)
    assert not issubclass(HarnessError, UsageError | Finding)
    assert not issubclass(UsageError, HarnessError | Finding)
    assert not issubclass(Finding, HarnessError | UsageError)
    assert issubclass(PacketError, Finding)


@pytest.mark.parametrize(
    ("branch", "cls"), [(branch, cls) for branch, classes in BRANCHES.items() for cls in classes]
)
def test_each_class_is_on_its_branch(branch: type[VpnsimError], cls: type[Exception]) -> None:
    assert issubclass(cls, branch)
    others = {HarnessError, UsageError, Finding} - {branch}
    assert not any(issubclass(cls, other) for other in others)


def test_the_built_in_bases_stay() -> None:
    # `except ValueError` around scenario and option parsing, pytest's report of an
    # AssertionError as a test failure, `except RuntimeError` around a harness step.
    values: list[type[Exception]] = [ScenarioError, ImpairmentError, ImplementationError]
    values += [RubricError, MalformedPacket, MalformedFrame, CourseError, ReportError]
    assert all(issubclass(cls, ValueError) for cls in values)
    assert issubclass(ProbeFailed, AssertionError)
    assert all(issubclass(cls, RuntimeError) for cls in (HarnessError, JailError, ProgramFailed))


def test_exit_status_of_each_branch() -> None:
    assert (UsageError("x").exit_status, HarnessError("x").exit_status) == (EXIT_USAGE, 2)
    assert (ProgramFailed.exit_status, NoRoute("x").exit_status) == (EXIT_FINDING, 1)


def test_messages_are_unchanged() -> None:
    assert str(NoRoute("ICMP echo: no route")) == "ICMP echo: no route"
    with pytest.raises(VpnsimError, match=r"^IPv6 header in 3 bytes$"):
        from vpnsim.packets import inner_addresses

        inner_addresses(b"\x60\0\0")


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every class in vpnsim/ that derives from an exception, by module.name."""
    found: dict[str, type[BaseException]] = {}
    root = Path(vpnsim.__file__).parent
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = [node.name for node in tree.body if isinstance(node, ast.ClassDef) and node.bases]
        if not names or path.name == "__main__.py":
            if path.name == "__main__.py":  # not imported (it would run); read by name
                found |= {f"{path}:{name}": BaseException for name in names if name in OUTSIDE}
            continue
        module_name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        module = importlib.import_module(module_name)
        for name in names:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found[f"{module_name}.{name}"] = cls
    return found


def test_every_exception_class_of_vpnsim_is_under_the_root() -> None:
    classes = _exception_classes()
    outside = {key for key, cls in classes.items() if not issubclass(cls, VpnsimError)}
    assert {key.rsplit(".", 1)[-1].rsplit(":", 1)[-1] for key in outside} == OUTSIDE
    listed = {cls for group in BRANCHES.values() for cls in group}
    roots = {VpnsimError, HarnessError, UsageError, Finding, PacketError}
    assert {cls for cls in classes.values() if issubclass(cls, VpnsimError)} == listed | roots
