"""Tests for the logical artifact path checks."""

from __future__ import annotations

import os

import pytest

from loopml.errors import InvalidArgumentError, UnsafePathError
from loopml.storage.paths import (
    MAX_PATH_CHARS,
    MAX_SEGMENT_BYTES,
    join_under,
    validate_artifact_path,
)

REJECTED = [
    pytest.param("", id="empty"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("\\\\server\\share", id="unc"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("/", id="root"),
    pytest.param("//a", id="double-slash-absolute"),
    pytest.param("C:", id="drive"),
    pytest.param("c:/x", id="drive-lower-slash"),
    pytest.param("C:x", id="drive-relative"),
    pytest.param("..", id="dotdot"),
    pytest.param("../x", id="dotdot-first"),
    pytest.param("a/../b", id="dotdot-middle"),
    pytest.param("a/..", id="dotdot-last"),
    pytest.param("a/../", id="dotdot-trailing-slash"),
    pytest.param(".", id="dot"),
    pytest.param("./a", id="dot-first"),
    pytest.param("a/./b", id="dot-middle"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/b//", id="two-trailing-slashes"),
    pytest.param("..%2fetc", id="dotdot-encoded-slash"),
    pytest.param("..%2Fetc", id="dotdot-encoded-slash-upper"),
    pytest.param("%2e%2e", id="encoded-dotdot"),
    pytest.param("%2E%2E/x", id="encoded-dotdot-upper"),
    pytest.param("a/%2e", id="encoded-dot"),
    pytest.param("%2e%2e%2fetc", id="encoded-dotdot-slash"),
    pytest.param("%252e%252e%252f", id="double-encoded"),
    pytest.param("%25252e%25252e", id="triple-encoded"),
    pytest.param("a%5cb", id="encoded-backslash"),
    pytest.param("a%00b", id="encoded-nul"),
    pytest.param("a%2500b", id="double-encoded-nul"),
    pytest.param("x" * (MAX_PATH_CHARS + 1), id="too-long"),
    pytest.param("a" * (MAX_SEGMENT_BYTES + 1), id="segment-too-long"),
    pytest.param("é" * 128, id="segment-too-long-utf8"),
    pytest.param("a\ud800b", id="lone-surrogate"),
]

ACCEPTED = [
    "model.pkl",
    "a/b/c.txt",
    "plots/loss curve (final).png",
    "emoji/🚀🔥.bin",
    "rtl/\u200f\u05e9\u05dc\u05d5\u05dd\u200f.txt",
    "combining/e\u0301te\u0301.txt",
    "chars/100%.txt",
    "chars/%zz%",
    "chars/%2",
    "chars/a%2eb",
    "chars/file#1.txt",
    "chars/what?.txt",
    "chars/a b  c",
    " leading and trailing space ",
    "...",
    "..a",
    "a..",
    ".hidden",
    "ab:c/d:e",
    "日本語/ファイル.csv",
    "x" * MAX_SEGMENT_BYTES,
    "é" * (MAX_SEGMENT_BYTES // 2),
    "/".join(["a"] * (MAX_PATH_CHARS // 2)),
]


@pytest.mark.parametrize("path", REJECTED)
def test_rejected_paths(path: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        validate_artifact_path(path, field="artifact_path")
    message = str(info.value)
    assert "artifact_path" in message
    assert repr(path)[:40] in message
    assert info.value.details["reason"]


@pytest.mark.parametrize("path", ACCEPTED)
def test_odd_but_valid_paths_round_trip_unchanged(path: str) -> None:
    assert validate_artifact_path(path) == path


@pytest.mark.parametrize("value", [None, 1, b"a/b", ["a"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(UnsafePathError, match="must be a string"):
        validate_artifact_path(value)  # type: ignore[arg-type]


def test_unsafe_path_error_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError):
        validate_artifact_path("../x")


def test_empty_allowed_when_asked() -> None:
    assert validate_artifact_path("", allow_empty=True) == ""


def test_one_trailing_slash_is_stripped() -> None:
    assert validate_artifact_path("a/b/") == "a/b"
    assert validate_artifact_path("a/") == "a"


def test_max_length_path_is_accepted() -> None:
    path = "/".join(["x" * 100] * 10)[:MAX_PATH_CHARS]
    assert len(path) == MAX_PATH_CHARS
    assert validate_artifact_path(path) == path


def test_long_value_is_shortened_in_message() -> None:
    with pytest.raises(UnsafePathError) as info:
        validate_artifact_path("y" * 5000)
    assert len(str(info.value)) < 400


def test_default_field_name() -> None:
    with pytest.raises(UnsafePathError, match="artifact path"):
        validate_artifact_path("/abs")


def test_join_under_builds_path_inside_root(tmp_path: os.PathLike[str]) -> None:
    root = os.path.realpath(tmp_path)
    assert join_under(tmp_path, "a/b.txt") == os.path.join(root, "a", "b.txt")
    assert join_under(tmp_path, "") == root
    assert join_under(tmp_path, "a/") == os.path.join(root, "a")


@pytest.mark.parametrize("logical", ["../x", "/etc/passwd", "a/../../b", "%2e%2e/x"])
def test_join_under_refuses_unsafe(tmp_path: os.PathLike[str], logical: str) -> None:
    with pytest.raises(UnsafePathError):
        join_under(tmp_path, logical)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_join_under_refuses_symlink_escape(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(tmp_path, "root")
    outside = os.path.join(tmp_path, "outside")
    os.makedirs(root)
    os.makedirs(outside)
    os.symlink(outside, os.path.join(root, "link"))
    with pytest.raises(UnsafePathError, match="outside"):
        join_under(root, "link/secret.txt")
