"""Moving many files into and out of a local blob folder (``BlobStore.put_files`` and
``get_files`` on a folder): no flush per file, small files read whole, large ones copied by
the kernel and hashed through a memory map of the copy."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from loopml.storage.blobs import (
    _FETCH_ATTEMPTS,
    SMALL_FILE_SIZE,
    BlobRef,
    _kernel_copy,
    _open_source,
    _remove_quietly,
    digest_bytes,
    hash_file,
)

if TYPE_CHECKING:
    from loopml.storage.blobs import BlobStore

__all__ = ["LocalBatch"]


_names = itertools.count()


class LocalBatch:
    """Moves files into and out of a local blob folder without a flush per file."""

    def __init__(
        self, store: BlobStore, on_stored: Callable[[BlobRef], object] | None = None
    ) -> None:
        self._store = store
        self._on_stored = on_stored
        self._tmp_dir = os.path.join(store._root, "tmp")
        self._folders: set[str] = set()
        self.written = 0

    def _temp_path(self, folder: str, prefix: str) -> str:
        return os.path.join(folder, f"{prefix}{os.getpid()}-{next(_names)}.part")

    def _ensure_folder(self, folder: str) -> None:
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)

    def put(self, path: str, progress: Callable[[int], object] | None) -> BlobRef:
        """Store one file; returns its reference."""
        store = self._store
        with store._guard("storing a blob"):
            self._ensure_folder(self._tmp_dir)
            tmp = self._temp_path(self._tmp_dir, "put-")
            try:
                ref = self._stage(path, tmp, progress)
                final = store._object_path(ref.digest)
                if self._stored(final, ref.size):
                    _remove_quietly(tmp)
                else:
                    self._ensure_folder(os.path.dirname(final))
                    os.replace(tmp, final)
                    self.written += 1
                    if self._on_stored is not None:
                        self._on_stored(ref)
            except BaseException:
                _remove_quietly(tmp)
                raise
        return ref

    def _stage(self, path: str, tmp: str, progress: Callable[[int], object] | None) -> BlobRef:
        """Copy ``path`` to ``tmp`` and hash what was copied (small files: in memory).
        ``progress`` gets the bytes copied, in steps for a large file."""
        with _open_source(path) as source:
            size = os.fstat(source.fileno()).st_size
            if size <= SMALL_FILE_SIZE:
                data = source.read()
                with open(tmp, "xb") as out:
                    out.write(data)
                if progress is not None:
                    progress(len(data))
                return BlobRef(digest_bytes(data), len(data))
            with open(tmp, "xb") as out:
                _kernel_copy(source, out, progress)
        digest, size = hash_file(tmp)
        return BlobRef(digest, size)

    @staticmethod
    def _stored(final: str, size: int) -> bool:
        """True if the object is already there with the right size (a short object, left by
        a crash before the data reached the disk, is replaced)."""
        try:
            return os.stat(final).st_size == size
        except FileNotFoundError:
            return False

    def get(self, digest: str, dest: str) -> int:
        """Write one verified blob to ``dest``; returns its size."""
        store = self._store
        source = store._object_path(digest)
        actual = ""
        for attempt in range(1, _FETCH_ATTEMPTS + 1):
            folder = os.path.dirname(dest)
            self._ensure_folder(folder)
            tmp = self._temp_path(folder, ".loopml-get-")
            try:
                with store._guard("reading a blob", digest=digest):
                    actual, size = self._copy_out(source, tmp)
                if actual == digest:
                    os.replace(tmp, dest)
                    return size
            except BaseException:
                _remove_quietly(tmp)
                raise
            _remove_quietly(tmp)
            store._note_mismatch(digest, actual, attempt)
        raise store._corrupted(digest, actual)

    @staticmethod
    def _copy_out(source: str, tmp: str) -> tuple[str, int]:
        with open(source, "rb") as reader:
            if os.fstat(reader.fileno()).st_size <= SMALL_FILE_SIZE:
                data = reader.read()
                with open(tmp, "xb") as out:
                    out.write(data)
                return digest_bytes(data), len(data)
            with open(tmp, "xb") as out:
                _kernel_copy(reader, out)
        return hash_file(tmp)
