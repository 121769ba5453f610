"""The work behind :func:`loopml.data.add`: turn a source into stored blobs and a manifest.

Nothing here touches the metadata store except to read the previous version; the caller
records the new version only after every blob (and the manifest itself) is stored, so an add
that is killed part way leaves at most unreferenced blobs, never a half version.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopml.data._manifest import FileEntry, Manifest
from loopml.data._sources import FoundFile, read_archive, scan
from loopml.data._statcache import CachedStat, StatCache
from loopml.data._tables import TABLE_MEMBER, is_parquet_file, write_parquet
from loopml.entities import DatasetKind
from loopml.storage.blobs import BlobRef, BlobStore, digest_bytes

__all__ = ["AddStats", "StagedVersion", "stage_archive", "stage_files", "stage_table"]

#: ``progress(bytes_done, bytes_total)`` while files are hashed and stored
Progress = Callable[[int, int], object]


@dataclass
class AddStats:
    """What an add did: how much it had to read, hash and store."""

    files: int = 0
    files_hashed: int = 0
    bytes_hashed: int = 0
    files_stored: int = 0
    bytes_stored: int = 0
    seconds: float = 0.0
    created: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "files_hashed": self.files_hashed,
            "bytes_hashed": self.bytes_hashed,
            "files_stored": self.files_stored,
            "bytes_stored": self.bytes_stored,
            "seconds": round(self.seconds, 6),
            "created": self.created,
        }


@dataclass
class StagedVersion:
    """Everything of a new version except its number: stored and ready to be recorded."""

    manifest: Manifest
    manifest_ref: BlobRef
    stats: AddStats
    num_rows: int | None = None
    table: Any = None
    cache_rows: list[tuple[str, os.stat_result, str, int]] = field(default_factory=list)


class _Counter:
    """Adds up bytes stored and reports progress."""

    def __init__(self, stats: AddStats, total: int, progress: Progress | None) -> None:
        self._stats = stats
        self._total = total
        self._done = 0
        self._progress = progress

    def advance(self, size: int) -> None:
        self._done += size
        if self._progress is not None:
            self._progress(self._done, self._total)

    def stored(self, ref: BlobRef) -> None:
        self._stats.files_stored += 1
        self._stats.bytes_stored += ref.size


def _finish(blobs: BlobStore, manifest: Manifest, stats: AddStats) -> BlobRef:
    counter = _Counter(stats, 0, None)
    data = manifest.to_bytes()
    if not blobs.exists(digest_bytes(data)):
        ref = blobs.put_bytes(data)
        counter.stored(ref)
        return ref
    return BlobRef(digest_bytes(data), len(data))


def stage_files(
    blobs: BlobStore,
    source: str,
    *,
    cache: StatCache,
    progress: Progress | None = None,
) -> StagedVersion:
    """Store a folder (or one file) with the stat cache: unchanged files are not read."""
    started = time.perf_counter()
    checked_ns = StatCache.now_ns()
    found = scan(source)
    stats = AddStats(files=len(found))
    cached = cache.under(os.path.abspath(source))
    entries: list[FileEntry] = []
    to_hash: list[FoundFile] = []
    hits: list[tuple[FoundFile, CachedStat]] = []
    for item in found:
        hit = cached.get(StatCache.lookup_key(item.source))
        if hit is not None and hit.matches(item.stat):
            hits.append((item, hit))
        else:
            to_hash.append(item)
    # a cached digest is usable only if its blob is there: checked on a local store (one
    # listing per blob folder); trusted on an object store (blobs never change once written)
    stored = blobs.which_exist({hit.digest for _, hit in hits}) if blobs.is_local else None
    for item, hit in hits:
        if stored is None or hit.digest in stored:
            entries.append(FileEntry(item.path, hit.digest, hit.size))
        else:
            to_hash.append(item)
    total = sum(item.stat.st_size for item in to_hash)
    counter = _Counter(stats, total, progress)
    counter.advance(0)  # the total is known before the first byte is read
    refs = blobs.put_files(
        [item.source for item in to_hash], progress=counter.advance, on_stored=counter.stored
    )
    cache_rows = []
    for item, ref in zip(to_hash, refs, strict=True):
        entries.append(FileEntry(item.path, ref.digest, ref.size))
        if ref.size == item.stat.st_size:  # a file that grew while read is not cached
            cache_rows.append((item.source, item.stat, ref.digest, checked_ns))
    stats.files_hashed = len(to_hash)
    stats.bytes_hashed = sum(ref.size for ref in refs)
    manifest = Manifest.build(DatasetKind.FILES, entries, checked=True)  # scan checked them
    manifest_ref = _finish(blobs, manifest, stats)
    stats.seconds = time.perf_counter() - started
    return StagedVersion(manifest, manifest_ref, stats, cache_rows=cache_rows)


def stage_archive(
    blobs: BlobStore, source: str, *, max_bytes: int, progress: Progress | None = None
) -> StagedVersion:
    """Store the regular files of a tar or zip archive, member by member (no extraction)."""
    started = time.perf_counter()
    stats = AddStats()
    members = list(read_archive(source, max_bytes))  # every member is checked first
    counter = _Counter(stats, sum(m.declared_size for m in members), progress)
    entries = []
    for member in read_archive(source, max_bytes):
        with member.open() as reader:
            ref = blobs.put_stream(reader)  # type: ignore[arg-type]
        entries.append(FileEntry(member.path, ref.digest, ref.size))
        stats.bytes_hashed += ref.size
        counter.advance(ref.size)
    stats.files = stats.files_hashed = len(entries)
    manifest = Manifest.build(DatasetKind.FILES, entries)
    manifest_ref = _finish(blobs, manifest, stats)
    stats.seconds = time.perf_counter() - started
    return StagedVersion(manifest, manifest_ref, stats)


def stage_table(
    blobs: BlobStore,
    table: Any,
    *,
    parquet_source: str | None,
    scratch: str,
    progress: Progress | None = None,
) -> StagedVersion:
    """Store a table as one Parquet file (a Parquet source is stored byte for byte)."""
    started = time.perf_counter()
    stats = AddStats(files=1, files_hashed=1)
    os.makedirs(scratch, exist_ok=True)
    tmp: str | None = None
    try:
        if parquet_source is not None and is_parquet_file(parquet_source):
            path = parquet_source
        else:
            fd, tmp = tempfile.mkstemp(dir=scratch, prefix="table-", suffix=".parquet")
            os.close(fd)
            write_parquet(table, tmp)
            path = tmp
        counter = _Counter(stats, os.path.getsize(path), progress)
        (ref,) = blobs.put_files([path], progress=counter.advance, on_stored=counter.stored)
    finally:
        if tmp is not None:
            os.remove(tmp)
    stats.bytes_hashed = ref.size
    manifest = Manifest.build(DatasetKind.TABLE, [FileEntry(TABLE_MEMBER, ref.digest, ref.size)])
    manifest_ref = _finish(blobs, manifest, stats)
    stats.seconds = time.perf_counter() - started
    return StagedVersion(manifest, manifest_ref, stats, num_rows=table.num_rows, table=table)
