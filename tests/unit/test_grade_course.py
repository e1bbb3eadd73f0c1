"""Grading a course: shard specs, the round-robin slice, finding submissions, unique names."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vpnsim.errors import HarnessError
from vpnsim.grade.course import CourseError, Shard, discover, is_submission, unique_names


@pytest.mark.parametrize(
    ("text", "index", "count"),
    [("1/4", 1, 4), ("4/4", 4, 4), ("1/1", 1, 1), ("12/40", 12, 40)],
)
def test_shard_parse(text: str, index: int, count: int) -> None:
    shard = Shard.parse(text)
    assert shard == Shard(index, count)
    assert str(shard) == f"{index}/{count}"


@pytest.mark.parametrize("text", ["0/4", "5/4", "-1/4", "1/0", "0/0", "2/1"])
def test_shard_parse_out_of_range(text: str) -> None:
    with pytest.raises(CourseError) as info:
        Shard.parse(text)
    assert str(info.value) == f"--shard {text}: expected I/N with 1 <= I <= N"


@pytest.mark.parametrize("text", ["x", "1-4", "", "4", "/4", "1/", "a/b", "1/4/5", "1.0/4"])
def test_shard_parse_not_i_over_n(text: str) -> None:
    with pytest.raises(CourseError) as info:
        Shard.parse(text)
    assert str(info.value) == f"--shard {text}: expected I/N, e.g. 1/4"


def test_course_error_is_a_harness_and_value_error() -> None:
    assert issubclass(CourseError, HarnessError)
    assert issubclass(CourseError, ValueError)


def _paths(n: int) -> list[Path]:
    return [Path(f"/course/student{i:03d}") for i in range(n)]


def test_shard_take_round_robin_exact() -> None:
    paths = [Path(f"/c/{c}") for c in "abcdefg"]
    assert Shard(1, 3).take(paths) == [Path("/c/a"), Path("/c/d"), Path("/c/g")]
    assert Shard(2, 3).take(paths) == [Path("/c/b"), Path("/c/e")]
    assert Shard(3, 3).take(paths) == [Path("/c/c"), Path("/c/f")]
    assert Shard(1, 1).take(paths) == paths


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 10, 33])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8, 50])
def test_shard_take_partitions(n: int, count: int) -> None:
    paths = _paths(n)
    slices = [Shard(i, count).take(paths) for i in range(1, count + 1)]
    union = [p for part in slices for p in part]
    assert sorted(union) == sorted(paths)  # everything, each exactly once
    assert len(union) == len(set(union))
    sizes = [len(part) for part in slices]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    for part in slices:
        assert part == sorted(part)


def test_shard_take_is_independent_of_input_order() -> None:
    paths = _paths(23)
    rng = random.Random(4)
    expected = [Shard(i, 4).take(paths) for i in range(1, 5)]
    for _ in range(20):
        shuffled = paths[:]
        rng.shuffle(shuffled)
        before = shuffled[:]
        assert [Shard(i, 4).take(shuffled) for i in range(1, 5)] == expected
        assert shuffled == before  # not sorted in place
    assert shuffled != paths  # the input really was shuffled


def _student(parent: Path, name: str, *files: str) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    for file in files or ("tun_client.py", "tun_server.py"):
        (folder / file).write_text("")
    return folder


@pytest.mark.parametrize("file", ["tun_client.py", "tun_server.py", "vpnsim.toml"])
def test_is_submission(tmp_path: Path, file: str) -> None:
    assert is_submission(_student(tmp_path, "s", file))
    assert not is_submission(_student(tmp_path, "t", "README.md"))


def test_a_submission_folder_stays_itself(tmp_path: Path) -> None:
    alice = _student(tmp_path, "alice")
    (alice / "helpers").mkdir()  # a subfolder does not make it a class
    assert discover([alice]) == [alice.resolve()]


def test_a_toml_submission_stays_itself(tmp_path: Path) -> None:
    carol = _student(tmp_path, "carol", "vpnsim.toml")
    (carol / "src").mkdir()
    assert discover([carol]) == [carol.resolve()]


def test_a_class_folder_expands_to_its_subfolders(tmp_path: Path) -> None:
    course = tmp_path / "course"
    bob = _student(course, "bob")
    alice = _student(course, "alice")
    empty = course / "dave"  # not a submission, still a student's folder: graded, fails
    empty.mkdir()
    (course / ".git").mkdir()  # hidden folders are not students
    (course / "roster.csv").write_text("alice,bob\n")  # files are not students
    assert discover([course]) == [alice.resolve(), bob.resolve(), empty.resolve()]


def test_an_empty_folder_stays_itself(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert discover([empty]) == [empty.resolve()]


def test_a_file_stays_itself(tmp_path: Path) -> None:
    archive = tmp_path / "alice.zip"
    archive.write_bytes(b"PK")
    assert discover([archive]) == [archive.resolve()]


def test_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nobody"
    _student(tmp_path, "alice")
    with pytest.raises(CourseError) as info:
        discover([tmp_path / "alice", missing])
    assert str(info.value) == f"{missing}: no such file or folder"


def test_duplicates_removed_and_sorted(tmp_path: Path) -> None:
    course = tmp_path / "course"
    alice = _student(course, "alice")
    bob = _student(course, "bob")
    zed = _student(tmp_path, "zed")
    found = discover([zed, course / "bob", course, alice, tmp_path / "course" / ".." / "course"])
    assert found == [alice.resolve(), bob.resolve(), zed.resolve()]
    assert found == sorted(found)


def test_discover_resolves_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = _student(tmp_path, "alice")
    monkeypatch.chdir(tmp_path)
    assert discover([Path("alice")]) == [alice.resolve()]
    assert discover([Path("alice"), Path("./alice/")]) == [alice.resolve()]


def test_discover_nothing() -> None:
    assert discover([]) == []


def test_unique_names_plain() -> None:
    paths = [Path("/c/bob"), Path("/c/alice")]
    names = unique_names(paths)
    assert names == {Path("/c/alice"): "alice", Path("/c/bob"): "bob"}
    assert list(names) == [Path("/c/alice"), Path("/c/bob")]  # in path order


def test_unique_names_clashes_get_suffixes_in_path_order() -> None:
    paths = [Path("/z/alice"), Path("/b/alice"), Path("/m/alice"), Path("/b/bob")]
    assert unique_names(paths) == {
        Path("/b/alice"): "alice",
        Path("/m/alice"): "alice-2",
        Path("/z/alice"): "alice-3",
        Path("/b/bob"): "bob",
    }


def test_unique_names_unsafe_characters_replaced() -> None:
    names = unique_names(
        [
            Path("/c/carol & co #1"),
            Path("/c/dave's vpn"),
            Path("/c/eve.v2_final-3"),
            Path("/c/.hidden."),
            Path("/c/..."),
        ]
    )
    assert names == {
        Path("/c/carol & co #1"): "carol___co__1",
        Path("/c/dave's vpn"): "dave_s_vpn",
        Path("/c/eve.v2_final-3"): "eve.v2_final-3",
        Path("/c/.hidden."): "hidden",
        Path("/c/..."): "submission",
    }


def test_unique_names_clash_after_replacing() -> None:
    names = unique_names([Path("/c/a b"), Path("/c/a_b"), Path("/c/a?b")])
    assert sorted(names.values()) == ["a_b", "a_b-2", "a_b-3"]
    assert names[Path("/c/a b")] == "a_b"  # " " sorts first


def test_unique_names_are_unique_even_with_suffix_lookalikes() -> None:
    paths = [Path("/a/x"), Path("/b/x"), Path("/c/x-2"), Path("/d/x-2"), Path("/e/x")]
    names = unique_names(paths)
    assert len(set(names.values())) == len(paths)
    assert names[Path("/a/x")] == "x"
    assert names[Path("/b/x")] == "x-2"
