"""A per-machine cache of file digests keyed by what ``stat`` says about each file.

Re-adding a folder whose files did not change should not read them again. For every file
hashed, the cache keeps its size, modification and status-change times (nanoseconds), inode
and device, and the time it was read. A later add trusts the cached digest only when all
five still match and the file had last changed clearly before it was read: a write landing
in the same clock tick as the read could otherwise leave every field unchanged (the "racy"
case that Git's index also guards against). The margin is 50 ms, or 2 s where the
filesystem keeps whole-second times. ``ctime`` cannot be set by ``touch -d`` or
``os.utime``, so restoring an old ``mtime`` after an edit does not fool the cache.

Entries are keyed by the blob store's URI as well as the file's absolute path, so a cached
digest also says "these bytes are in that store". The cache is one SQLite file in the
cache folder (``LOOPML_CACHE_DIR``); it is a hint only: if it cannot be opened or written,
files are simply hashed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CachedStat", "StatCache"]

logger = logging.getLogger(__name__)

_FINE_MARGIN_NS = 50_000_000
_COARSE_MARGIN_NS = 2_000_000_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    store TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    digest TEXT NOT NULL,
    checked_ns INTEGER NOT NULL,
    PRIMARY KEY (store, path)
) WITHOUT ROWID
"""


@dataclass(frozen=True, slots=True)
class CachedStat:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int
    digest: str
    checked_ns: int

    def matches(self, st: os.stat_result) -> bool:
        """True if ``st`` describes the same, unchanged file that was hashed."""
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev) != (
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.inode,
            self.device,
        ):
            return False
        coarse = self.mtime_ns % 1_000_000_000 == 0
        margin = _COARSE_MARGIN_NS if coarse else _FINE_MARGIN_NS
        return max(self.mtime_ns, self.ctime_ns) < self.checked_ns - margin


def _encode(path: str) -> str:
    """Paths may hold bytes that are not UTF-8 (surrogate escapes); keep them exact."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class StatCache:
    """The stat cache of one blob store, in ``folder/statcache.db``."""

    def __init__(self, folder: str, store_key: str) -> None:
        self._store = store_key
        self._conn: sqlite3.Connection | None = None
        try:
            os.makedirs(folder, exist_ok=True)
            conn = sqlite3.connect(os.path.join(folder, "statcache.db"), timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:
            logger.warning(
                "The stat cache in %s is unavailable, hashing every file: %s", folder, exc
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def under(self, root: str) -> dict[str, CachedStat]:
        """Every entry for ``root`` itself or a path below it (absolute paths)."""
        if self._conn is None:
            return {}
        root = _encode(root.rstrip(os.sep))
        query = (
            "SELECT path, size, mtime_ns, ctime_ns, inode, device, digest, checked_ns "
            "FROM files WHERE store = ? AND (path = ? OR (path >= ? AND path < ?))"
        )
        low, high = root + os.sep, root + chr(ord(os.sep) + 1)
        try:
            rows = self._conn.execute(query, (self._store, root, low, high)).fetchall()
        except sqlite3.Error as exc:
            logger.warning("Reading the stat cache failed, hashing every file: %s", exc)
            return {}
        return {row[0]: CachedStat(*row[1:]) for row in rows}

    def record(self, entries: Iterable[tuple[str, os.stat_result, str, int]]) -> None:
        """Remember ``(absolute path, stat, digest, time read)`` for each file hashed."""
        if self._conn is None:
            return
        rows = [
            (
                self._store,
                _encode(path),
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
                st.st_dev,
                digest,
                checked_ns,
            )
            for path, st, digest, checked_ns in entries
        ]
        if not rows:
            return
        try:
            with self._conn:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
        except sqlite3.Error as exc:
            logger.warning("Updating the stat cache failed (files will be hashed again): %s", exc)

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()

    lookup_key = staticmethod(_encode)
