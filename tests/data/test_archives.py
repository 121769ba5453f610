"""Archives as dataset sources (RELIABILITY.md S3): members go straight into the blob store,
and anything that could land outside a folder, or a decompression bomb, is refused first."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from loopml import data
from loopml.errors import DatasetNotFoundError, InvalidArgumentError, UnsafePathError
from loopml.testing.store_suite import ODD_NAMES

pytestmark = pytest.mark.usefixtures("data_store")


def _tar(path: Path, members: list[tarfile.TarInfo], payloads: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for info in members:
            body = payloads.get(info.name)
            archive.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def _file(name: str, body: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    return info, body


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _no_blobs(tmp_path: Path) -> bool:
    return not (tmp_path / "blobs" / "blake3").exists()


def test_tar_round_trip_with_odd_names(tmp_path: Path) -> None:
    files = {f"set/{name}": name.encode() for name in ODD_NAMES}
    files["top.txt"] = b"top"
    members, payloads = [], {}
    folder = tarfile.TarInfo("set")
    folder.type = tarfile.DIRTYPE
    members.append(folder)
    for name, body in files.items():
        info, payload = _file(name, body)
        members.append(info)
        payloads[name] = payload
    ds = data.add("arch", _tar(tmp_path / "a.tar.gz", members, payloads), unpack=True)
    assert {e.path for e in ds.files()} == set(files)
    out = ds.materialize(tmp_path / "out")
    for name, body in files.items():
        assert (out / name).read_bytes() == body


def test_zip_round_trip(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.writestr("a/b.txt", "hello")
        archive.writestr("c.bin", bytes(range(256)))
    ds = data.add("z", tmp_path / "a.zip", unpack=True)
    assert sorted(e.path for e in ds.files()) == ["a/b.txt", "c.bin"]
    # the archive itself, without unpack, is one file
    assert [e.path for e in data.add("raw", tmp_path / "a.zip").files()] == ["a.zip"]


@pytest.mark.parametrize(
    "bad",
    [
        _file("../escape.txt", b"x")[0],
        _file("/etc/absolute.txt", b"x")[0],
        _file("ok/../../up.txt", b"x")[0],
        _link("link", "/", tarfile.SYMTYPE),
        _link("hard", "/etc/passwd", tarfile.LNKTYPE),
        _link("dev", "", tarfile.CHRTYPE),
        _link("fifo", "", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "hardlink", "device", "fifo"],
)
def test_unsafe_tar_members_are_refused_before_anything_is_stored(
    tmp_path: Path, bad: tarfile.TarInfo
) -> None:
    good, body = _file("good.txt", b"fine")
    payloads = {"good.txt": body, bad.name: b"x"} if bad.isfile() else {"good.txt": body}
    archive = _tar(tmp_path / "bad.tar.gz", [good, bad], payloads)
    with pytest.raises(UnsafePathError, match=bad.name.split("/")[-1]):
        data.add("bad", archive, unpack=True)
    assert _no_blobs(tmp_path)
    with pytest.raises(DatasetNotFoundError):
        data.get("bad")


def test_zip_symlink_and_traversal_are_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as archive:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        data.add("z", tmp_path / "link.zip", unpack=True)
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as archive:
        archive.writestr("../../slip.txt", "x")
    with pytest.raises(UnsafePathError, match="slip"):
        data.add("z", tmp_path / "slip.zip", unpack=True)
    assert _no_blobs(tmp_path)


def test_decompression_bomb_stops_at_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_MAX_ARCHIVE_BYTES", str(1024 * 1024))
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\0" * (8 * 1024 * 1024))  # 8 MiB of zeros: a few KB zipped
    assert (tmp_path / "bomb.zip").stat().st_size < 64 * 1024
    with pytest.raises(InvalidArgumentError, match="LOOPML_MAX_ARCHIVE_BYTES"):
        data.add("bomb", tmp_path / "bomb.zip", unpack=True)
    with pytest.raises(DatasetNotFoundError):
        data.get("bomb")
    leftovers = list((tmp_path / "blobs").rglob("*.part")) if (tmp_path / "blobs").exists() else []
    assert leftovers == []


def test_a_file_that_is_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(InvalidArgumentError, match="not a readable zip"):
        data.add("f", tmp_path / "fake.zip", unpack=True)
    (tmp_path / "fake.tar.gz").write_text("not a tar")
    with pytest.raises(InvalidArgumentError, match="not a readable tar"):
        data.add("f", tmp_path / "fake.tar.gz", unpack=True)
