"""A submission's work copy: the folder its programs run in, on a filesystem of its own.

The copy lives on a tmpfs of `disk_bytes`, so a program that fills its folder gets ENOSPC
there and the grader's disk is untouched. It is mounted in the grader's mount namespace
(each jail binds it in) and unmounted and removed afterwards, whatever happened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path

from vpnsim.errors import Finding, HarnessError
from vpnsim.grade.sandbox import MNT_DETACH, MS_NODEV, MS_NOSUID, libc, mount

WORK_ROOT = Path("/var/lib/vpnsim/grade")  # copies of submissions while they run
INODES = 16_384  # files and folders on the copy's filesystem


class SubmissionTooLarge(Finding):
    """The submission's folder does not fit in its work copy's quota (the student's)."""


def folder_name(name: str, token: str) -> str:
    """A work copy's folder name: readable, unique, and naming the grader's PID, so that
    `vpnsim clean` can tell the copies of a killed grader (`remove_stale`)."""
    return f"{name[:40]}-{token}.{os.getpid()}"


def remove_stale(root: Path = WORK_ROOT) -> list[Path]:
    """Unmount and remove the work copies under `root` whose grader no longer runs."""
    removed = []
    for folder in _copies(root):
        pid = _grader_pid(folder)
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        remove_copy(folder)
        removed.append(folder)
    return removed


def copies_of(pids: Collection[int], root: Path = WORK_ROOT) -> list[Path]:
    """The work copies graders `pids` made (see `folder_name`)."""
    wanted = {str(pid) for pid in pids}
    return [folder for folder in _copies(root) if _grader_pid(folder) in wanted]


def remove_copy(folder: Path) -> None:
    """Unmount and remove one work copy whose grader is gone."""
    libc.umount2(bytes(folder), MNT_DETACH)
    shutil.rmtree(folder, ignore_errors=True)


def _copies(root: Path) -> list[Path]:
    return sorted(root.glob("*.*")) if root.is_dir() else []


def _grader_pid(folder: Path) -> str:
    return folder.name.rsplit(".", 1)[1]


@contextlib.contextmanager
def work_copy(source: Path, where: Path, disk_bytes: int) -> Iterator[Path]:
    """`source` copied into `where` (a new folder, on a tmpfs of `disk_bytes`)."""
    where.mkdir(parents=True)
    try:
        options = f"size={disk_bytes},nr_inodes={INODES},mode=755"
        try:
            mount("tmpfs", str(where), "tmpfs", MS_NOSUID | MS_NODEV, options)
        except OSError as exc:
            raise HarnessError(f"cannot make the work copy {where}: {exc.strerror}") from None
        try:
            try:
                shutil.copytree(source, where, symlinks=True, dirs_exist_ok=True)
            except shutil.Error as exc:
                if any(_no_space(detail) for detail in exc.args[0]):
                    raise SubmissionTooLarge(_too_large(source, disk_bytes)) from None
                raise
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise SubmissionTooLarge(_too_large(source, disk_bytes)) from None
                raise
            yield where
        finally:
            libc.umount2(bytes(where), MNT_DETACH)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _no_space(detail: object) -> bool:
    return isinstance(detail, tuple) and len(detail) == 3 and "No space left" in str(detail[2])


def _too_large(source: Path, disk_bytes: int) -> str:
    return f"the folder {source.name}/ holds more than {disk_bytes // 2**20} MiB"
