"""What ``data add`` can read: a folder, a single file, a table, or an archive's members.

Folders are walked with :func:`os.scandir` (the ``stat`` comes with the listing), following
symbolic links to files and to folders (a folder reached twice through links is refused, so a
cycle cannot loop). Sockets, pipes and devices are refused. The folders ``.git`` and
``.loopml`` are skipped. File names must be valid UTF-8 and pass
:func:`loopml.storage.paths.validate_artifact_path`, so every name round-trips exactly.

Archives (``unpack=True``) are read member by member straight into the blob store: nothing
is extracted to disk, so no member can land outside a folder. Only regular files and folders
are accepted; a link, a device, an absolute name or a ``..`` segment is refused before any
byte is stored, and the bytes actually decompressed are counted against a cap
(``LOOPML_MAX_ARCHIVE_BYTES``), so a decompression bomb stops at the cap.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from loopml.errors import InvalidArgumentError, UnsafePathError
from loopml.storage.paths import validate_artifact_path

__all__ = ["ARCHIVE_SUFFIXES", "ArchiveMember", "FoundFile", "is_archive", "read_archive", "scan"]

SKIPPED_FOLDERS = frozenset({".git", ".loopml"})
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A file found in a folder: its path in the dataset, where it is, and its stat."""

    path: str
    source: str
    stat: os.stat_result


def _dataset_path(parts: list[str], source: str) -> str:
    relative = "/".join(parts)
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            f"The file {source!r} has a name that is not valid UTF-8; rename it to add it.",
            field="path",
        ) from None
    return validate_artifact_path(relative, field="path")


def scan(root: str) -> list[FoundFile]:
    """Every regular file under the folder ``root`` (or ``root`` itself if it is a file)."""
    root = os.path.abspath(root)
    try:
        top = os.stat(root)
    except FileNotFoundError:
        raise InvalidArgumentError(f"No such file or folder: {root!r}.", field="path") from None
    if stat.S_ISREG(top.st_mode):
        return [FoundFile(_dataset_path([os.path.basename(root)], root), root, top)]
    if not stat.S_ISDIR(top.st_mode):
        raise InvalidArgumentError(
            f"{root!r} is neither a regular file nor a folder.", field="path"
        )
    found: list[FoundFile] = []
    _walk(root, [], found, {(top.st_dev, top.st_ino)})
    return found


def _walk(
    folder: str, parts: list[str], found: list[FoundFile], seen: set[tuple[int, int]]
) -> None:
    with os.scandir(folder) as entries:
        listed = sorted(entries, key=lambda entry: entry.name)
    for entry in listed:
        st = entry.stat(follow_symlinks=True) if entry.is_symlink() else entry.stat()
        here = [*parts, entry.name]
        if stat.S_ISDIR(st.st_mode):
            if entry.name in SKIPPED_FOLDERS:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                raise InvalidArgumentError(
                    f"The folder {entry.path!r} is reached twice (a link cycle?).", field="path"
                )
            _walk(entry.path, here, found, seen | {key})
        elif stat.S_ISREG(st.st_mode):
            found.append(FoundFile(_dataset_path(here, entry.path), entry.path, st))
        else:
            raise InvalidArgumentError(
                f"{entry.path!r} is not a regular file (a socket, pipe or device?).", field="path"
            )


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class ArchiveMember:
    """A regular file inside an archive, and how to open its bytes."""

    path: str
    declared_size: int
    open: Callable[[], IO[bytes]]


class _CappedReader:
    """Counts the bytes read from archive members and stops at the cap."""

    def __init__(self, reader: IO[bytes], budget: list[int], archive: str) -> None:
        self._reader = reader
        self._budget = budget
        self._archive = archive

    def read(self, size: int = -1) -> bytes:
        chunk = self._reader.read(size)
        self._budget[0] -= len(chunk)
        if self._budget[0] < 0:
            raise InvalidArgumentError(
                f"The archive {self._archive!r} unpacks to more bytes than allowed "
                "(LOOPML_MAX_ARCHIVE_BYTES); nothing was added.",
                field="path",
            )
        return chunk

    def __enter__(self) -> _CappedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.close()


def _refuse(archive: str, name: str, why: str) -> UnsafePathError:
    return UnsafePathError(
        f"The archive {archive!r} has a member {name!r} that {why}; nothing was added.",
        field="path",
        reason=why,
    )


def _member_path(archive: str, name: str) -> str:
    try:
        return validate_artifact_path(
            name.rstrip("/") if name.endswith("/") else name, field="path"
        )
    except InvalidArgumentError as exc:
        raise _refuse(archive, name, f"is not a safe relative path ({exc.message})") from None


def read_archive(path: str, max_bytes: int) -> Iterator[ArchiveMember]:
    """The regular files of a tar or zip archive, checked before any is yielded."""
    budget = [max_bytes]
    if path.lower().endswith(".zip"):
        yield from _zip_members(path, budget)
    else:
        yield from _tar_members(path, budget)


def _tar_members(path: str, budget: list[int]) -> Iterator[ArchiveMember]:
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError) as exc:
        raise InvalidArgumentError(
            f"{path!r} is not a readable tar archive: {exc}", field="path"
        ) from None
    with archive:
        members = archive.getmembers()
        checked: list[tuple[str, Any]] = []
        for member in members:
            if member.isdir():
                _member_path(path, member.name)
                continue
            if member.issym() or member.islnk():
                raise _refuse(path, member.name, f"is a link to {member.linkname!r}")
            if not member.isfile():
                raise _refuse(path, member.name, "is not a regular file (a device or pipe?)")
            checked.append((_member_path(path, member.name), member))
        for name, member in checked:
            yield ArchiveMember(name, member.size, _tar_opener(archive, member, budget, path))


def _tar_opener(
    archive: tarfile.TarFile, member: Any, budget: list[int], path: str
) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        reader = archive.extractfile(member)
        if reader is None:  # pragma: no cover - isfile() members always have data
            raise _refuse(path, member.name, "has no data")
        return _CappedReader(reader, budget, path)  # type: ignore[return-value]

    return open_member


def _zip_members(path: str, budget: list[int]) -> Iterator[ArchiveMember]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidArgumentError(
            f"{path!r} is not a readable zip archive: {exc}", field="path"
        ) from None
    with archive:
        checked: list[tuple[str, zipfile.ZipInfo]] = []
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if info.is_dir():
                _member_path(path, info.filename)
                continue
            if stat.S_ISLNK(mode):
                raise _refuse(path, info.filename, "is a symbolic link")
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                raise _refuse(path, info.filename, "is not a regular file")
            checked.append((_member_path(path, info.filename), info))
        for name, info in checked:
            opener = lambda info=info: _CappedReader(archive.open(info), budget, path)  # noqa: E731
            yield ArchiveMember(name, info.file_size, opener)  # type: ignore[arg-type]
