"""The jail's pure parts, without root: its command line, limits, cgroup layout detection and
files (on fake cgroup roots in tmp dirs), mountinfo and /proc/self/cgroup parsing."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnsim.grade.cgroups import (
    CGROUP_ROOT,
    NAME_RE,
    cgroup_hierarchies,
    create_cgroups,
)
from vpnsim.grade.jail import (
    FORWARDED_SIGNALS,
    JailLimits,
    JailRequest,
    JailView,
    capability_mask,
    cgroup_dirs,
    detect_mechanism,
    jailed_argv,
    limits_mechanism,
    main,
    parse_command_line,
    student_environment,
)
from vpnsim.grade.sandbox import parse_mountinfo

WORK = Path("/srv/grading/alice")


def test_jailed_argv_puts_the_jail_in_front_of_the_command() -> None:
    argv = jailed_argv(["python3", "tun_client.py"], WORK, JailLimits(), "lab1-client0")

    assert argv == (
        sys.executable,
        "-m",
        "vpnsim.grade.jail",
        "--name=lab1-client0",
        "--workdir=/srv/grading/alice",
        f"--memory-bytes={512 * 2**20}",
        "--max-processes=64",
        f"--log-bytes={2**20}",
        "--cpu-share=0.5",
        "--",
        "python3",
        "tun_client.py",
    )


def test_optional_limits_and_the_cgroup_root_appear_only_when_set() -> None:
    limits = JailLimits(
        memory_bytes=2**30, max_processes=8, cpu_seconds=3, wall_seconds=2.5, cpu_share=None
    )
    argv = jailed_argv(["./a.out", "--"], WORK, limits, "j", cgroup_root=Path("/tmp/cg"))

    assert argv[3:] == (
        "--name=j", "--workdir=/srv/grading/alice", f"--memory-bytes={2**30}",
        "--max-processes=8", f"--log-bytes={2**20}", "--cpu-seconds=3", "--wall-seconds=2.5",
        "--cgroup-root=/tmp/cg", "--", "./a.out", "--",
    )  # fmt: skip


def test_the_view_of_the_filesystem_round_trips_through_the_command_line() -> None:
    view = JailView(
        bins=(Path("/envs/e1/bin"),),
        read_only=(Path("/envs/e1"), Path("/opt/python3.11")),
        hidden=(Path("/opt/python3.11/lib/python3.11/site-packages"),),
    )
    argv = jailed_argv(["python3", "c.py"], WORK, JailLimits(cpu_share=0.25), "j", view=view)

    assert argv[8:14] == (
        "--cpu-share=0.25", "--bin=/envs/e1/bin", "--ro=/envs/e1", "--ro=/opt/python3.11",
        "--hide=/opt/python3.11/lib/python3.11/site-packages", "--",
    )  # fmt: skip
    request = parse_command_line(argv[3:])
    assert (request.view, request.limits.cpu_share) == (view, 0.25)
    assert student_environment(WORK, view.bins) == {
        "PATH": "/envs/e1/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/srv/grading/alice",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


limits_strategy = st.builds(
    JailLimits,
    memory_bytes=st.integers(16 * 2**20, 2**40),
    max_processes=st.integers(1, 10_000),
    cpu_seconds=st.none() | st.integers(1, 10**6),
    wall_seconds=st.none() | st.floats(1e-3, 1e6),
)
argv_strategy = st.lists(st.text(st.characters(blacklist_characters="\0"), max_size=8), min_size=1)


@given(
    limits=limits_strategy,
    argv=argv_strategy,
    name=st.from_regex(NAME_RE, fullmatch=True),
    workdir=st.sampled_from([WORK, Path("/tmp/pytest-of-root/a b"), Path("/w=x"), Path("/-")]),
)
def test_the_jail_parses_back_exactly_what_jailed_argv_wrote(
    limits: JailLimits, argv: list[str], name: str, workdir: Path
) -> None:
    written = jailed_argv(argv, workdir, limits, name)

    assert written[:3] == (sys.executable, "-m", "vpnsim.grade.jail")
    assert parse_command_line(written[3:]) == JailRequest(
        name, workdir, limits, tuple(argv), CGROUP_ROOT
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_bytes": 2**20}, "memory_bytes=1048576: an integer of at least 16777216"),
        ({"memory_bytes": 2.0**30}, "memory_bytes=1073741824.0: an integer of at least"),
        ({"max_processes": 0}, "max_processes=0: an integer of at least 1"),
        ({"max_processes": True}, "max_processes=True: an integer of at least 1"),
        ({"cpu_seconds": 0}, "cpu_seconds=0: an integer of at least 1"),
        ({"cpu_seconds": 1.5}, "cpu_seconds=1.5: an integer of at least 1"),
        ({"wall_seconds": 0}, "wall_seconds=0: None or a number of seconds above 0"),
        ({"wall_seconds": -1.0}, "wall_seconds=-1.0: None or a number"),
        ({"wall_seconds": float("inf")}, "wall_seconds=inf: None or a number"),
        ({"wall_seconds": float("nan")}, "wall_seconds=nan: None or a number"),
    ],
)
def test_limits_out_of_range_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        JailLimits(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "workdir", "name", "message"),
    [
        ([], WORK, "j", "empty command"),
        (["x"], Path("work"), "j", "jail workdir work: an absolute path other than /"),
        (["x"], Path("/"), "j", "jail workdir /: an absolute path other than /"),
        (["x"], WORK, "", "jail name '': 1-100 letters, digits, - and _, not starting with -"),
        (
            ["x"],
            WORK,
            "--",
            "jail name '--': 1-100 letters, digits, - and _, not starting with -",
        ),
        (["x"], WORK, "../etc", "jail name '../etc': 1-100"),
        (["x"], WORK, "a/b", "jail name 'a/b': 1-100"),
        (["x"], WORK, "memory.max", "jail name 'memory.max': 1-100"),
    ],
)
def test_bad_commands_workdirs_and_names_are_refused(
    argv: list[str], workdir: Path, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        jailed_argv(argv, workdir, JailLimits(), name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "j", "--workdir", "/w"], "usage: python -m vpnsim.grade.jail"),
        (["--name", "j", "--workdir", "/w", "--"], "no command after --"),
        (["--workdir", "/w", "--", "x"], "the following arguments are required: --name"),
        (["--name", "j", "--workdir", "/w", "--max-processes", "lots", "--", "x"], "invalid int"),
        (["--name", "j", "--workdir", "/w", "--bogus", "--", "x"], "unrecognized arguments"),
        (["--name", "j", "--workdir", "/w", "--max-processes", "0", "--", "x"], "at least 1"),
    ],
)
def test_a_bad_jail_command_line_is_a_value_error(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_command_line(args)


def test_main_reports_a_bad_command_line_as_a_jail_failure(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # main() installs the jail's handlers first: pytest's own come back after (Ctrl-C works).
    kept = {sig: signal.getsignal(sig) for sig in FORWARDED_SIGNALS}
    try:
        assert main(["--name", "j", "--", "x"]) == 125
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)
    assert capfd.readouterr().err == (
        "vpnsim-jail: the following arguments are required: --workdir\n"
    )


def test_the_kept_capabilities_are_network_and_file_ownership_ones() -> None:
    # CAP_CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, NET_BIND_SERVICE 10, NET_ADMIN 12, NET_RAW 13.
    assert capability_mask() == 0x340B


# cgroup layouts on fake roots ---------------------------------------------------------------


def _files(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


V2 = {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n"}
V2_NO_PIDS = {"cgroup.controllers": "cpuset cpu io memory\n"}
V1 = {f"{ctl}/cgroup.procs": "1\n" for ctl in ("cpu", "memory", "pids", "systemd")}
V1_NO_PIDS = {f"{ctl}/cgroup.procs": "1\n" for ctl in ("cpu", "memory")}
# This VM's: v1 hierarchies, plus a cgroup2 mount with no controllers at unified/.
HYBRID = {**V1, "unified/cgroup.controllers": ""}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (V2, "cgroup2"),
        (V1, "cgroup1"),
        (HYBRID, "cgroup1"),
        (V2_NO_PIDS, "rlimit"),
        (V1_NO_PIDS, "rlimit"),
        ({}, "rlimit"),
    ],
)
def test_the_cgroup_layout_is_detected_by_its_files(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    assert detect_mechanism(_files(tmp_path, files)) == expected


def test_without_a_cgroup_filesystem_the_fallback_needs_no_probe(tmp_path: Path) -> None:
    assert limits_mechanism(tmp_path / "missing") == "rlimit"
    assert cgroup_dirs("j", tmp_path / "missing") == ()
    assert not (tmp_path / "missing").exists()


def _tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_v2_jail_gets_one_cgroup_with_memory_and_pids_limits(tmp_path: Path) -> None:
    root = _files(tmp_path, {**V2, "cgroup.subtree_control": "cpu\n"})
    limits = JailLimits(memory_bytes=256 * 2**20, max_processes=16)

    assert create_cgroups(root, "cgroup2", "j1", limits) == (root / "vpnsim" / "j1",)
    assert cgroup_dirs("j1", root) == (root / "vpnsim" / "j1",)
    assert _tree(root) == {
        **V2,
        # Controllers enabled for the children of the root and of vpnsim/.
        "cgroup.subtree_control": "+cpu +memory +pids",
        "vpnsim/cgroup.subtree_control": "+memory +pids",
        "vpnsim/j1/memory.max": str(256 * 2**20),
        "vpnsim/j1/pids.max": "17",  # the program and 15 more, and the jail's init
    }


def test_a_v2_jail_leaves_enabled_controllers_alone(tmp_path: Path) -> None:
    enabled = {"cgroup.subtree_control": "cpu memory pids\n"}
    root = _files(tmp_path, {**V2, **enabled, "vpnsim/cgroup.subtree_control": "cpu memory pids\n"})

    create_cgroups(root, "cgroup2", "j2", JailLimits())

    assert (root / "cgroup.subtree_control").read_text() == "cpu memory pids\n"
    assert (root / "vpnsim" / "cgroup.subtree_control").read_text() == "cpu memory pids\n"
    assert (root / "vpnsim" / "j2" / "memory.max").read_text() == str(512 * 2**20)


def test_a_v1_jail_gets_a_cpu_bandwidth_limit_where_the_cpu_hierarchy_is(tmp_path: Path) -> None:
    root = _files(tmp_path, {**V1, "cpu/cpu.cfs_quota_us": "-1\n"})

    dirs = create_cgroups(root, "cgroup1", "j1", JailLimits(cpu_share=0.5))

    assert dirs == (root / "memory/vpnsim/j1", root / "pids/vpnsim/j1", root / "cpu/vpnsim/j1")
    assert (root / "cpu/vpnsim/j1/cpu.cfs_period_us").read_text() == "100000"
    assert (root / "cpu/vpnsim/j1/cpu.cfs_quota_us").read_text() == "50000"


def test_a_v1_jail_gets_a_memory_and_a_pids_cgroup(tmp_path: Path) -> None:
    root = _files(tmp_path, V1)

    dirs = create_cgroups(root, "cgroup1", "j1", JailLimits(max_processes=4))

    assert dirs == (root / "memory/vpnsim/j1", root / "pids/vpnsim/j1")
    assert cgroup_dirs("j1", root) == dirs
    assert _tree(root) == {
        **V1,
        "memory/vpnsim/j1/memory.limit_in_bytes": str(512 * 2**20),
        "pids/vpnsim/j1/pids.max": "5",
    }


def test_a_jail_name_in_use_is_an_error_and_touches_nothing(tmp_path: Path) -> None:
    root = _files(tmp_path, V1)
    (root / "pids" / "vpnsim" / "j1").mkdir(parents=True)

    with pytest.raises(FileExistsError):
        create_cgroups(root, "cgroup1", "j1", JailLimits())

    assert _tree(root) == V1  # the memory cgroup made before the clash is removed again


# what the jail reads from /proc -------------------------------------------------------------


def test_proc_self_cgroup_gives_each_controllers_hierarchy() -> None:
    this_vm = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/87d\n2:cpu,cpuacct:/\n0::/\n"
    assert cgroup_hierarchies(this_vm) == {
        "name=systemd": "name=systemd",
        "pids": "pids",
        "memory": "memory",
        "cpu": "cpu,cpuacct",
        "cpuacct": "cpu,cpuacct",
        "": "",
    }
    assert cgroup_hierarchies("0::/user.slice/session-2.scope\n") == {"": ""}


def test_mountinfo_gives_mount_points_and_the_flags_a_remount_keeps() -> None:
    text = (
        "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "25 22 0:23 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw\n"
        "30 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        r"40 22 0:40 / /mnt/a\040b\134c ro,noatime - tmpfs x rw" "\n"
        "41 22 0:41 / /strict rw,nosuid - tmpfs y rw\n"
    )  # fmt: skip
    mounts = parse_mountinfo(text)

    assert [m.mount_point for m in mounts] == ["/", "/dev/shm", "/proc", "/mnt/a b\\c", "/strict"]
    assert [m.flags for m in mounts] == [
        1 << 21,  # MS_RELATIME
        0x2 | 0x4 | 1 << 24,  # MS_NOSUID | MS_NODEV, MS_STRICTATIME (neither atime shown)
        0x2 | 0x4 | 0x8 | 1 << 21,
        0x400,  # MS_NOATIME (ro is added by the jail itself)
        0x2 | 1 << 24,
    ]


def test_this_machines_mountinfo_parses() -> None:
    with open("/proc/self/mountinfo") as f:
        mounts = parse_mountinfo(f.read())
    assert "/" in [m.mount_point for m in mounts]
    assert all(os.path.isabs(m.mount_point) for m in mounts)


def test_clean_removes_only_the_work_copies_of_graders_that_are_gone(tmp_path: Path) -> None:
    from vpnsim.grade.workcopy import folder_name, remove_stale

    mine = tmp_path / folder_name("alice", "a1b2c3")
    gone = tmp_path / "bob-d4e5f6.999999999"  # no such PID
    other = tmp_path / "notes"
    for folder in (mine, gone, other):
        folder.mkdir()
        (folder / "tun_client.py").write_text("")

    assert mine.name == f"alice-a1b2c3.{os.getpid()}"
    assert remove_stale(tmp_path) == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "notes"])


def test_a_cgroup_loses_its_cpu_limit_before_its_killed_members_must_exit(tmp_path: Path) -> None:
    from vpnsim.grade.cgroups import _unthrottle

    v1, v2, other = tmp_path / "cpu", tmp_path / "v2", tmp_path / "pids"
    for folder, name, value in ((v1, "cpu.cfs_quota_us", "50000"), (v2, "cpu.max", "50000 100000"),
                                (other, "pids.max", "65")):  # fmt: skip
        folder.mkdir()
        (folder / name).write_text(value)
        _unthrottle(folder)

    assert (v1 / "cpu.cfs_quota_us").read_text() == "-1"
    assert (v2 / "cpu.max").read_text() == "max"
    assert sorted(p.name for p in other.iterdir()) == ["pids.max"]
    assert (other / "pids.max").read_text() == "65"
