"""The grader's jail, for real: a student program runs as root in its lab host's namespaces,
with TUN, `ip` and its workdir, and cannot reach anything else or exhaust the machine.

Each test starts jailed `python3 -c` programs on a host of one SEED lab (the module's) and
asserts what they did from both sides; afterwards no process of a jail is left and its
cgroups are gone (the `jails` fixture checks).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim import proc
from vpnsim.grade.environment import ensure_environment
from vpnsim.grade.jail import (
    JailLimits,
    JailView,
    Mechanism,
    capability_mask,
    cgroup_dirs,
    detect_mechanism,
    jail_cleanup,
    jailed_argv,
    limits_mechanism,
)
from vpnsim.grade.sides import jail_view
from vpnsim.net import namespace, sysctl
from vpnsim.net.rtnl import Rtnl
from vpnsim.pytest.fixtures import LabFactory
from vpnsim.topology import Lab

pytestmark = pytest.mark.lab

LIMITS = JailLimits(memory_bytes=256 * 2**20, max_processes=16, wall_seconds=60)


@functools.cache
def _view() -> JailView:
    """`python3` is the course's (the student environment), as the grader runs student
    programs; built on first use, not at collection."""
    return jail_view(ensure_environment())


# A guard against a hang, never a timed assertion: jailed programs have half a core, and a
# busy machine may give them less (importing scapy alone takes ~0.9 s of CPU).
TIMEOUT = 60.0
AT_FDCWD = -100
MAX_HANDLE_SZ = 128


class Jails:
    """Starts jailed programs in one lab; at the end, checks that nothing of them is left."""

    def __init__(self, lab: Lab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        self.names: list[str] = []
        self.programs: list[proc.Program] = []

    def start(
        self,
        code: str,
        *args: str,
        host: str = "U",
        limits: JailLimits = LIMITS,
        cgroup_root: Path | None = None,
    ) -> proc.Program:
        """Start `python3 -c code args...` jailed on `host`."""
        return self.start_argv(["python3", "-c", code, *args], host, limits, cgroup_root)

    def start_argv(
        self,
        argv: list[str],
        host: str,
        limits: JailLimits,
        cgroup_root: Path | None,
        wrapper: tuple[str, ...] = (),
    ) -> proc.Program:
        """`wrapper`: a command that ends by exec'ing its arguments, the jail's command."""
        name = f"{self.lab.name}-{secrets.token_hex(3)}"
        self.names.append(name)
        jailed = jailed_argv(
            argv, self.workdir, limits, name, cgroup_root=cgroup_root, view=_view()
        )
        program = self.lab.start(host, [*wrapper, *jailed], log_name=name, cwd=self.workdir)
        self.programs.append(program)
        return program

    def run(
        self,
        code: str,
        *args: str,
        host: str = "U",
        limits: JailLimits = LIMITS,
        cgroup_root: Path | None = None,
    ) -> tuple[int, str, str]:
        """Run `python3 -c code args...` jailed to its end: exit status, stdout, stderr."""
        program = self.start(code, *args, host=host, limits=limits, cgroup_root=cgroup_root)
        return self.wait(program)

    def wait(self, program: proc.Program) -> tuple[int, str, str]:
        assert program.popen is not None
        status = program.popen.wait(TIMEOUT)
        return status, program.stdout(), program.stderr()

    def close(self) -> None:
        for program in self.programs:
            program.stop()
        for name in self.names:
            jail_cleanup(name)
        assert [p.pid for p in self.programs if proc.is_alive(p.pid)] == []
        assert self.lab.pids() == []
        assert [d for name in self.names for d in cgroup_dirs(name) if d.exists()] == []


@pytest.fixture(scope="module")
def confined_lab(vpnsim_labs: LabFactory) -> Iterator[Lab]:
    """A SEED lab whose U and server are confined, as the grader builds them (and V2, which
    a test lets a program damage)."""
    lab = vpnsim_labs.build(confined=frozenset({"U", "server", "V2"}))
    yield lab
    lab.teardown()


@pytest.fixture
def jails(confined_lab: Lab, tmp_path: Path) -> Iterator[Jails]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    found = Jails(confined_lab, workdir)
    try:
        yield found
    finally:
        found.close()


def _ready(program: proc.Program) -> dict[str, object]:
    """The JSON line a program prints once it has done its part (and then sleeps)."""
    program.wait_ready(lambda: program.stdout().endswith("\n"), TIMEOUT, "its report")
    report: dict[str, object] = json.loads(program.stdout())
    return report


@pytest.fixture(scope="module")
def cgroups() -> Mechanism:
    """This machine's cgroup layout, where jails can have cgroups (here: v1; CI: often v2)."""
    mechanism = limits_mechanism()
    if mechanism == "rlimit":
        pytest.skip("no cgroup can be made here: jails fall back to rlimits (tested below)")
    return mechanism


SLEEPS = "import time; print('ready', flush=True); time.sleep(30)"


def test_a_running_jail_has_a_cgroup_with_its_limits(jails: Jails, cgroups: Mechanism) -> None:
    program = jails.start(SLEEPS)
    program.wait_ready(lambda: program.stdout() == "ready\n", TIMEOUT, "ready")
    dirs = cgroup_dirs(jails.names[0])

    assert cgroups == detect_mechanism()
    limits = {path.name: path.read_text().strip() for path in _limit_files(cgroups, dirs)}
    assert limits == {
        "memory.limit_in_bytes" if cgroups == "cgroup1" else "memory.max": str(256 * 2**20),
        "pids.max": "17",  # the program and 15 more, and the jail's init
    }
    # init and the program are in it; the supervisor, outside the pid namespace, is not.
    jailed = sorted(set(jails.lab.pids()) - {program.pid})
    assert len(jailed) == 2
    for path in dirs:
        assert sorted(int(pid) for pid in (path / "cgroup.procs").read_text().split()) == jailed


def _limit_files(mechanism: Mechanism, dirs: tuple[Path, ...]) -> list[Path]:
    if mechanism == "cgroup1":
        return [dirs[0] / "memory.limit_in_bytes", dirs[1] / "pids.max"]
    return [dirs[0] / "memory.max", dirs[0] / "pids.max"]


TUN = """
import fcntl, json, os, struct, time
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
tun = os.open("/dev/net/tun", os.O_RDWR)
ifr = fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", b"jail%d", IFF_TUN | IFF_NO_PI))
name = ifr[:16].rstrip(b"\\0").decode()
status = os.system(f"ip addr add 192.168.53.99/24 dev {name} && ip link set dev {name} up")
caps = dict(line.split(":\\t") for line in open("/proc/self/status").read().splitlines())
print(json.dumps({"tun": name, "ip": status, "caps": {k: caps[k] for k in
    ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")}}), flush=True)
time.sleep(30)
"""


def test_a_student_program_makes_its_tun_and_addresses_it_with_ip(jails: Jails) -> None:
    program = jails.start(TUN)
    report = _ready(program)

    mask = f"{capability_mask():016x}"
    assert mask == "000000000000340b"  # chown, dac_override, fowner, net_bind/admin/raw
    assert report == {
        "tun": "jail0",
        "ip": 0,
        "caps": {
            "CapInh": "0" * 16,
            "CapPrm": mask,
            "CapEff": mask,
            "CapBnd": mask,
            "CapAmb": "0" * 16,
            "NoNewPrivs": "1",
        },
    }
    tun = jails.lab.rtnl("U").link("jail0")
    assert (tun.kind, tun.up, tun.addresses) == ("tun", True, ("192.168.53.99/24",))
    assert program.stop() == 128 + signal.SIGTERM  # forwarded: the program had no handler
    assert "jail0" not in [link.name for link in jails.lab.rtnl("U").links()]


SCAPY = """
from scapy.all import IP, ICMP
print(len(IP(dst="10.9.0.11") / ICMP()))
"""


def test_a_student_program_imports_scapy(jails: Jails) -> None:
    assert jails.run(SCAPY) == (0, "28\n", "")


FILES = """
import errno, json, os, sys
def attempt(path, data="x"):
    try:
        with open(path, "w") as f:
            f.write(data)
        return "written"
    except OSError as exc:
        return errno.errorcode[exc.errno]
def opening(path):  # opened for writing, nothing written
    try:
        open(path, "a").close()
        return "opened"
    except OSError as exc:
        return errno.errorcode[exc.errno]
secret = sys.argv[1]
print(json.dumps({
    "workdir": attempt("out.txt", "from the jail"),
    "/etc": attempt(f"/etc/{secret}"),
    "/": attempt(f"/{secret}"),  # the jail's own root, read-only
    "/usr/bin": attempt(f"/usr/bin/{secret}"),
    "/tmp": attempt(f"/tmp/{secret}"),
    "/var/tmp": attempt(f"/var/tmp/{secret}"),
    "/dev/shm": attempt(f"/dev/shm/{secret}"),
    "/dev": attempt(f"/dev/{secret}"),
    "/sys": opening("/sys/class/net/eth0/mtu"),
    "/sys/fs/cgroup": opening("/sys/fs/cgroup/memory/cgroup.procs"),
    "/proc/sys/kernel": opening("/proc/sys/kernel/hostname"),
    "/proc/sys/vm": opening("/proc/sys/vm/drop_caches"),
    "ip_forward": attempt("/proc/sys/net/ipv4/ip_forward", "1\\n"),
    "host's /tmp file seen": os.path.exists(f"/tmp/{secret}-host"),
    "/run": os.listdir("/run"),
    "/dev entries": sorted(os.listdir("/dev")),
    "/dev/null": attempt("/dev/null"),
}))
"""


DEV_ENTRIES = ["fd", "full", "net", "null", "ptmx", "pts", "random", "shm"]
DEV_ENTRIES += ["stderr", "stdin", "stdout", "tty", "urandom", "zero"]


def test_only_the_workdir_tmpfs_and_net_sysctls_are_writable(jails: Jails) -> None:
    secret = f"vpnsim-jail-{secrets.token_hex(4)}"
    host_tmp = Path("/tmp") / f"{secret}-host"
    host_tmp.write_text("the host's")
    try:
        code, out, err = jails.run(FILES, secret)
        assert (code, err) == (0, "")
        assert json.loads(out) == {
            "workdir": "written",
            "/etc": "EROFS",
            "/": "EROFS",
            "/usr/bin": "EROFS",
            "/tmp": "written",  # a tmpfs of the jail's own...
            "/var/tmp": "written",
            "/dev/shm": "written",
            "/dev": "EROFS",
            "/sys": "EROFS",
            "/sys/fs/cgroup": "EROFS",
            "/proc/sys/kernel": "EROFS",
            "/proc/sys/vm": "EROFS",
            "ip_forward": "written",
            "host's /tmp file seen": False,  # ...without the host's files
            "/run": [],  # no /run/netns, no sockets of the host
            # A /dev of its own, not the host's disks, terminals or kernel log.
            "/dev entries": DEV_ENTRIES,
            "/dev/null": "written",
        }
        assert (jails.workdir / "out.txt").read_text() == "from the jail"
        for where in ("/etc", "/", "/usr/bin", "/tmp", "/var/tmp", "/dev/shm", "/dev"):
            assert not (Path(where) / secret).exists()
        assert sysctl.get_sysctl(jails.lab.ns("U"), "net.ipv4.ip_forward") == "1"
    finally:
        host_tmp.unlink()
        sysctl.set_sysctls(jails.lab.ns("U"), {"net.ipv4.ip_forward": "0"})


PROCESSES = """
import json, os, subprocess
child = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"me": os.getpid(), "proc": sorted(int(p) for p in os.listdir("/proc")
    if p.isdigit()), "child": int(child), "cwd": os.getcwd()}))
"""


def test_proc_shows_only_the_jails_processes(jails: Jails) -> None:
    code, out, err = jails.run(PROCESSES)

    assert (code, err) == (0, "")
    # pid 1 is the jail's init, 2 the program; its child is 3 (the host has hundreds).
    assert json.loads(out) == {"me": 2, "proc": [1, 2], "child": 3, "cwd": str(jails.workdir)}


ESCAPE = """
import ctypes, errno, json, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET, CLONE_NEWNS, MS_REMOUNT, MS_BIND = 0x40000000, 0x20000, 0x20, 0x1000
def call(result):
    return "ok" if result == 0 else errno.errorcode[ctypes.get_errno()]
def opening(path):
    try:
        os.close(os.open(path, os.O_RDONLY))
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
# The test hands us a descriptor of the host's network namespace over a Unix socket.
# ...and a handle of a file in the host's /tmp, hidden here by the jail's tmpfs.
handle = ctypes.create_string_buffer(bytes.fromhex(sys.argv[2]))
by_handle = libc.open_by_handle_at(os.open("/", os.O_RDONLY), handle, os.O_RDONLY)
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect("\\0" + sys.argv[1])  # an abstract address
_, fds, _, _ = socket.recv_fds(conn, 16, 1)
print(json.dumps({
    "/run/netns": opening("/run/netns"),
    "host file by handle": os.read(by_handle, 64).decode() if by_handle >= 0
        else errno.errorcode[ctypes.get_errno()],
    "setns to the host": call(libc.setns(fds[0], CLONE_NEWNET)),
    "setns to itself": call(libc.setns(os.open("/proc/self/ns/net", os.O_RDONLY), 0)),
    "unshare net": call(libc.unshare(CLONE_NEWNET)),
    "unshare mount": call(libc.unshare(CLONE_NEWNS)),
    "mount tmpfs": call(libc.mount(b"tmpfs", b"/mnt", b"tmpfs", 0, None)),
    "remount / rw": call(libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND, None)),
    "umount /tmp": call(libc.umount2(b"/tmp", 2)),
    "still in U": os.system("ip -o addr show dev eth0 | grep -q 10.9.0.5/24"),
}))
"""


def _file_handle(path: Path) -> bytes:
    """name_to_handle_at(2): a handle that opens `path` wherever its filesystem is mounted."""
    libc = ctypes.CDLL(None, use_errno=True)
    handle = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)
    struct.pack_into("I", handle, 0, MAX_HANDLE_SZ)
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(AT_FDCWD, bytes(path), handle, ctypes.byref(mount_id), 0) != 0:
        raise OSError(ctypes.get_errno(), f"name_to_handle_at {path}")
    return handle.raw[: 8 + struct.unpack_from("I", handle, 0)[0]]


def test_root_in_the_jail_cannot_leave_its_namespaces_or_mount(jails: Jails) -> None:
    hidden = Path("/tmp") / f"vpnsim-jail-{secrets.token_hex(4)}"
    hidden.write_text("the host's")
    # An abstract Unix socket lives in one network namespace: U's, the program's.
    address = f"vpnsim-jail-test-{secrets.token_hex(4)}"
    server = namespace.socket_in(jails.lab.ns("U"), socket.AF_UNIX, socket.SOCK_STREAM)
    host_netns = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        server.bind(f"\0{address}")
        server.listen(1)
        server.settimeout(TIMEOUT)
        program = jails.start(ESCAPE, address, _file_handle(hidden).hex())
        conn, _ = server.accept()
        with conn:
            socket.send_fds(conn, [b"x"], [host_netns])
        assert program.popen is not None and program.popen.wait(TIMEOUT) == 0
    finally:
        os.close(host_netns)
        server.close()
        hidden.unlink()

    assert program.stderr() == ""
    assert json.loads(program.stdout()) == {
        "/run/netns": "ENOENT",
        "host file by handle": "EPERM",  # open_by_handle_at needs CAP_DAC_READ_SEARCH
        "setns to the host": "EPERM",  # no CAP_SYS_ADMIN, even holding the namespace
        "setns to itself": "EPERM",
        "unshare net": "EPERM",
        "unshare mount": "EPERM",
        "mount tmpfs": "EPERM",
        "remount / rw": "EPERM",
        "umount /tmp": "EPERM",
        "still in U": 0,
    }


def test_ip_link_del_eth0_removes_only_the_lab_hosts_eth0(jails: Jails) -> None:
    # V2 is no other test's host: its eth0 is gone for the rest of this module's lab.
    with Rtnl.open(None) as root:
        root_before = sorted((link.index, link.name) for link in root.links())

        assert jails.run("import os; print(os.system('ip link del eth0'))", host="V2") == (
            0,
            "0\n",
            "",
        )
        assert [link.name for link in jails.lab.rtnl("V2").links()] == ["lo"]
        assert "eth0" in [link.name for link in jails.lab.rtnl("V").links()]
        assert sorted((link.index, link.name) for link in root.links()) == root_before


FORK_BOMB = """
import json, os, time
forked = failed = 0
for _ in range(200):  # bounded, in case the jail failed to bound it
    try:
        pid = os.fork()
    except BlockingIOError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    forked += 1
print(json.dumps({"forked": forked, "failed": failed}), flush=True)
time.sleep(60)
"""


def test_a_fork_bomb_stops_at_max_processes(jails: Jails, cgroups: Mechanism) -> None:
    limits = JailLimits(memory_bytes=256 * 2**20, max_processes=16, wall_seconds=60)
    program = jails.start(FORK_BOMB, limits=limits)

    # The program counts as one of the 16: it can fork 15.
    assert _ready(program) == {"forked": 15, "failed": 185}
    assert len(jails.lab.pids()) == 1 + 1 + 16  # supervisor, init, program and children
    assert subprocess.run(["true"]).returncode == 0  # the grader's machine carries on
    program.stop()
    assert jails.lab.pids() == []


def test_a_jail_dies_at_its_wall_time(jails: Jails, cgroups: Mechanism) -> None:
    limits = JailLimits(memory_bytes=256 * 2**20, max_processes=16, wall_seconds=1.5)
    start = time.monotonic()
    program = jails.start(FORK_BOMB, limits=limits)

    assert program.popen is not None and program.popen.wait(TIMEOUT) == 128 + signal.SIGKILL
    assert time.monotonic() - start >= 1.5  # never before; how much later is the load's
    assert program.stderr() == "vpnsim-jail: wall time limit of 1.5 s reached: killed the jail\n"
    assert jails.lab.pids() == []
    assert [d for d in cgroup_dirs(jails.names[0]) if d.exists()] == []  # removed on its own


def test_without_cgroups_the_watchdog_kills_a_fork_bomb(jails: Jails, tmp_path: Path) -> None:
    # Without a pids cgroup nothing stops a fork: the watchdog counts the jail's processes
    # and kills it once there are more than 16. The program says so just before it forks
    # the child that makes 17 (and prints nothing after), so what it printed does not
    # depend on how soon the watchdog runs: only the count decides, however busy the
    # machine. No wall time: only the watchdog may end this jail.
    bomb = """
import os, time
for child in range(1, 17):
    if child == 16:
        print("16 processes: forking a 17th", flush=True)
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
time.sleep(60)
"""
    limits = JailLimits(memory_bytes=256 * 2**20, max_processes=16, wall_seconds=None)
    code, out, err = jails.run(bomb, limits=limits, cgroup_root=tmp_path / "no-cgroups")

    assert (code, out) == (128 + signal.SIGKILL, "16 processes: forking a 17th\n")
    assert err == "vpnsim-jail: more than 16 processes: killed the jail\n"


MEMORY_HOG = """
try:
    hog = b"x" * (2 * 2**30)
    print("allocated 2 GiB")
except MemoryError:
    print("MemoryError")
    raise SystemExit(3)
"""


def test_a_memory_hog_is_killed_by_the_cgroups_oom_killer(jails: Jails, cgroups: Mechanism) -> None:
    assert jails.run(MEMORY_HOG) == (128 + signal.SIGKILL, "", "")


def test_without_cgroups_a_memory_hog_gets_memory_error(jails: Jails, tmp_path: Path) -> None:
    assert jails.run(MEMORY_HOG, cgroup_root=tmp_path / "no-cgroups") == (3, "MemoryError\n", "")


def test_cpu_seconds_limit_each_process(jails: Jails) -> None:
    limits = JailLimits(memory_bytes=256 * 2**20, max_processes=16, cpu_seconds=1)
    assert jails.run("while True: pass", limits=limits) == (128 + signal.SIGXCPU, "", "")


HANDLES_SIGTERM = """
import signal, sys, time
def stop(sig, frame):
    print("stopping on", signal.Signals(sig).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(30)
"""


def test_stop_forwards_sigterm_to_the_program(jails: Jails) -> None:
    program = jails.start(HANDLES_SIGTERM)
    program.wait_ready(lambda: program.stdout() == "ready\n", TIMEOUT, "ready")

    assert program.stop() == 0
    assert program.stdout() == "ready\nstopping on SIGTERM\n"


def test_a_sigterm_at_any_moment_of_the_start_stops_the_jail(jails: Jails) -> None:
    # Before the supervisor has its handlers it dies of the signal (-15), with nothing
    # started; after, the signal reaches the program, whatever the jail is doing (143).
    seen = []
    for step in range(20):
        program = jails.start(SLEEPS)
        time.sleep(step * 0.01)
        program.signal(signal.SIGTERM)
        assert program.popen is not None
        seen.append(program.popen.wait(TIMEOUT))
    assert set(seen) <= {-signal.SIGTERM, 128 + signal.SIGTERM}, seen
    assert seen[-1] == 128 + signal.SIGTERM


FORKS_AND_SLEEPS = """
import os, time
if os.fork() == 0:
    time.sleep(60)
else:
    print("ready", flush=True)
    time.sleep(60)
"""


def test_killing_the_supervisor_kills_the_whole_jail(jails: Jails, cgroups: Mechanism) -> None:
    program = jails.start(FORKS_AND_SLEEPS)
    program.wait_ready(lambda: program.stdout() == "ready\n", TIMEOUT, "ready")
    running = jails.lab.pids()
    assert len(running) == 4  # supervisor, init, program, its child
    dirs = cgroup_dirs(jails.names[0])

    program.signal(signal.SIGKILL)  # the supervisor: no chance to clean up
    assert program.popen is not None and program.popen.wait(TIMEOUT) == -signal.SIGKILL
    deadline = time.monotonic() + TIMEOUT
    while any(proc.is_alive(pid) for pid in running):
        assert time.monotonic() < deadline, "jail processes outlived their supervisor"
        time.sleep(0.01)

    assert dirs and all(d.is_dir() for d in dirs)  # left for jail_cleanup, empty
    jail_cleanup(jails.names[0])
    assert not any(d.exists() for d in dirs)
    jail_cleanup(jails.names[0])  # idempotent


def test_killing_init_ends_the_jail_and_its_supervisor(jails: Jails, cgroups: Mechanism) -> None:
    program = jails.start(FORKS_AND_SLEEPS)
    program.wait_ready(lambda: program.stdout() == "ready\n", TIMEOUT, "ready")
    running = jails.lab.pids()
    init = [pid for pid in running if _parent_of(pid) == program.pid]
    assert len(init) == 1

    os.kill(init[0], signal.SIGKILL)

    assert program.popen is not None and program.popen.wait(TIMEOUT) == 128 + signal.SIGKILL
    assert not any(proc.is_alive(pid) for pid in running)  # the kernel killed them all
    assert not any(d.exists() for d in cgroup_dirs(jails.names[0]))  # the supervisor's work


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_exit_statuses_are_the_programs(jails: Jails) -> None:
    assert jails.run("raise SystemExit(3)") == (3, "", "")
    assert jails.wait(jails.start_argv(["no-such-program"], "U", LIMITS, None)) == (
        127,
        "",
        "vpnsim-jail: cannot run no-such-program: No such file or directory\n",
    )


def test_the_jail_refuses_to_run_outside_a_lab_host(tmp_path: Path) -> None:
    # Started directly by the test, in the machine's own network namespace.
    argv = jailed_argv(["true"], tmp_path, LIMITS, "outside")
    run = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)

    assert (run.returncode, run.stdout) == (125, "")
    assert run.stderr == (
        "vpnsim-jail: refusing to run outside a lab host's network namespace "
        "(one under /run/netns)\n"
    )


ESCAPES = Path(__file__).parents[1] / "data" / "submissions" / "hostile_reaches_out"


def _attempts(program: proc.Program) -> dict[str, object]:
    assert program.popen is not None
    assert program.popen.wait(TIMEOUT) == 0, program.stderr()
    found: dict[str, object] = json.loads(program.stdout())
    return found


def test_root_in_the_jail_reaches_nothing_past_its_host(jails: Jails) -> None:
    shutil.copy(ESCAPES / "escape_attempts.py", jails.workdir)
    program = jails.start_argv(["python3", "escape_attempts.py"], "U", LIMITS, None)
    attempts = _attempts(program)

    # One source with the graded corpus: EXPECTED.toml, beside the attack.
    expected = tomllib.loads((ESCAPES.parent / "EXPECTED.toml").read_text())[ESCAPES.name]
    assert {k: v for k, v in attempts.items() if k != "root"} == expected["attempts"]
    root = attempts["root"]
    assert isinstance(root, list)
    assert set(expected["root"]["shows"]) <= set(root)
    assert not set(expected["root"]["hides"]) & set(root)
    fabric = jails.lab.rtnl("_fabric")
    assert "sneak0" not in {link.name for link in fabric.links()}


def test_the_same_attempts_reach_the_fabric_for_root_outside_a_jail(
    confined_lab: Lab, tmp_path: Path
) -> None:
    # The attack works where it is not stopped (V is an ordinary host, root unjailed): the
    # refusals above are the jail's doing, not a broken attack.
    shutil.copy(ESCAPES / "escape_attempts.py", tmp_path)
    program = confined_lab.start(
        "V", [sys.executable, "escape_attempts.py"], log_name="unjailed-attempts", cwd=tmp_path
    )
    attempts = _attempts(program)
    try:
        assert str(attempts["list_fabric_links"]).endswith(" links")
        assert attempts["macvlan_on_fabric"] == "ok"
        assert attempts["new_user_namespace"] == "ok"
    finally:
        confined_lab.rtnl("V").delete_link("sneak0")


def test_the_jail_refuses_a_host_that_is_not_confined(jails: Jails) -> None:
    status, out, err = jails.run("print('ran')", host="V")

    assert (status, out) == (125, "")
    assert err == (
        "vpnsim-jail: the lab host's network namespace is not confined (owned by the grader's "
        "user namespace): root in the jail would reach every namespace by its id; build the "
        "lab with confined hosts\n"
    )


def test_a_jail_gets_its_cpu_share_as_a_cfs_bandwidth_limit(
    jails: Jails, cgroups: Mechanism
) -> None:
    program = jails.start(SLEEPS, limits=JailLimits(wall_seconds=10, cpu_share=0.25))
    program.wait_ready(lambda: program.stdout() == "ready\n", TIMEOUT, "ready")
    name = jails.names[-1]
    if cgroups == "cgroup1":
        cpu = [d for d in cgroup_dirs(name) if d.parts[-3] == "cpu"]
        assert [(d / "cpu.cfs_quota_us").read_text().strip() for d in cpu] == ["25000"]
        assert (cpu[0] / "cpu.cfs_period_us").read_text().strip() == "100000"
    else:
        assert (cgroup_dirs(name)[0] / "cpu.max").read_text().strip() == "25000 100000"


def test_output_past_log_bytes_is_cut_with_a_marker(jails: Jails) -> None:
    limits = JailLimits(wall_seconds=10, log_bytes=4096)
    code = "import sys; sys.stdout.write('x' * 100000); sys.stderr.write('e' * 10)"
    status, out, err = jails.run(code, limits=limits)

    assert (status, err) == (0, "eeeeeeeeee")
    assert out == "x" * 4096 + "\n[vpnsim: output cut here, after 4096 bytes]\n"


def test_a_work_copy_is_a_tmpfs_of_its_quota_and_goes_away(tmp_path: Path) -> None:
    from vpnsim.grade.workcopy import SubmissionTooLarge, work_copy

    source = tmp_path / "alice"
    source.mkdir()
    (source / "tun_client.py").write_text("print('hi')\n")
    where = tmp_path / "copy"
    with work_copy(source, where, 2 * 2**20) as copy:
        assert (copy / "tun_client.py").read_text() == "print('hi')\n"
        assert os.statvfs(copy).f_blocks * os.statvfs(copy).f_frsize == 2 * 2**20
        with pytest.raises(OSError, match="No space left on device"):
            (copy / "ballast").write_bytes(b"\0" * 3 * 2**20)
    assert not where.exists()

    (source / "big.bin").write_bytes(b"\0" * 3 * 2**20)
    too_large = pytest.raises(SubmissionTooLarge, match=r"the folder alice/ holds more than 2 MiB")
    with too_large, work_copy(source, where, 2 * 2**20):
        pass
    assert not where.exists()
