"""Resumable, verified blob uploads: the partial files behind ``PUT /api/v1/blobs/{digest}``.

An upload is written to one partial file per digest, ``<hex>.part`` in the upload folder:
the blob store's staging folder when it is a local folder (the same filesystem, so the
finished file is renamed into place and its bytes are written once), else
``<temp>/loopml-uploads``. It is hashed as it arrives.

* ``offset=0`` (the default) starts the file afresh; ``offset=N`` continues it at byte N,
  which must be the partial file's current size (``GET .../upload`` tells it): the bytes
  already there are hashed again first, so the digest always covers the whole file. The
  body runs to the blob's last byte.
* A finished upload whose bytes hash to the digest is handed to the blob store; one that
  does not, or that passed the size limit, is deleted. An interrupted one (the client went
  away, the server was killed) keeps its partial file, so the client continues where it
  stopped instead of sending everything again (RELIABILITY L4).
* A lock file per digest (``<hex>.lock``, an OS lock, so it holds across worker processes
  and dies with a killed one) keeps two requests from writing the same partial file. It is
  deleted, while held, with the partial file; a request that took the lock on a file just
  deleted sees that and takes the new one.
* Partial files left alone for ``upload_ttl`` seconds are deleted when the server starts and
  at most every ten minutes afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
import time
from typing import BinaryIO

from loopml.errors import ConflictError
from loopml.storage.blobs import CHUNK_SIZE, DIGEST_PREFIX, BlobStore, new_hasher

__all__ = ["PartialUpload", "UploadFolder"]

logger = logging.getLogger(__name__)

_SWEEP_EVERY = 600.0


class _Lock:
    """An exclusive, non-blocking OS lock on a lock file that may be deleted while held."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if no one holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                self._fd = fd
                return True
            os.close(fd)  # deleted by its holder as we took it: take the new one

    def release(self, *, delete: bool = False) -> None:
        """Let go of the lock, deleting the lock file first if ``delete``."""
        if self._fd is None:
            return
        if delete:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        os.close(self._fd)
        self._fd = None


class PartialUpload:
    """One upload in progress: its partial file, open for appending, and the running hash."""

    def __init__(self, folder: str, digest: str) -> None:
        name = digest[len(DIGEST_PREFIX) :]
        self.digest = digest
        self.path = os.path.join(folder, name + ".part")
        self._lock = _Lock(os.path.join(folder, name + ".lock"))
        self._file: BinaryIO | None = None
        self._hasher = new_hasher()
        self.size = 0

    def try_lock(self) -> bool:
        """Take the digest's lock if no other request holds it."""
        return self._lock.acquire()

    def start(self, offset: int) -> None:
        """Open the partial file at ``offset`` (0: afresh), hashing the bytes before it.

        Raises:
            ConflictError: ``offset`` is not the size of the partial file.
        """
        if offset == 0:
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed by finish/close
            return
        have = self.received()
        if have != offset:
            raise ConflictError(
                f"The upload of {self.digest} cannot continue at byte {offset:,}: the server "
                f"holds {have:,} bytes of it. Continue at offset={have}.",
                field="offset",
                offset=have,
            )
        self._file = open(self.path, "rb+")  # noqa: SIM115 - closed by finish/close
        while chunk := self._file.read(CHUNK_SIZE):
            self._hasher.update(chunk)
        self.size = offset

    def received(self) -> int:
        """How many bytes of the blob the partial file holds (0 when there is none)."""
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def write(self, data: bytes) -> None:
        assert self._file is not None
        self._hasher.update(data)
        self._file.write(data)
        self.size += len(data)

    def finish(self) -> str:
        """Close the file and return the digest of all its bytes."""
        self.close()
        return DIGEST_PREFIX + self._hasher.hexdigest()

    def close(self) -> None:
        """Close the file (kept on disk for a later continuation)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def release(self, *, discard: bool = False) -> None:
        """Close the file and let go of the lock; with ``discard``, delete the partial file
        (and the lock file) first, else keep it for a continuation."""
        self.close()
        if discard:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        self._lock.release(delete=discard)


class UploadFolder:
    """Where a server's partial uploads live, with the sweep of abandoned ones."""

    def __init__(self, blobs: BlobStore, ttl: float) -> None:
        staging = blobs.staging_folder()
        self.path = staging or os.path.join(tempfile.gettempdir(), "loopml-uploads")
        os.makedirs(self.path, exist_ok=True)
        self._ttl = ttl
        self._swept = 0.0
        self._sweeping = threading.Lock()

    def upload(self, digest: str) -> PartialUpload:
        self.sweep()
        return PartialUpload(self.path, digest)

    def sweep(self, *, now: float | None = None) -> int:
        """Delete partial uploads untouched for the time to live (at most every ten minutes
        unless ``now`` is given); returns how many were deleted."""
        current = time.time() if now is None else now
        if now is None and current - self._swept < _SWEEP_EVERY:
            return 0
        if not self._sweeping.acquire(blocking=False):
            return 0
        try:
            self._swept = current
            return self._sweep(current)
        finally:
            self._sweeping.release()

    def _sweep(self, now: float) -> int:
        removed = 0
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return 0
        for entry in entries:
            if not entry.name.endswith(".part"):
                continue
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime < self._ttl:
                    continue
                lock = _Lock(entry.path[: -len(".part")] + ".lock")
                if not lock.acquire():
                    continue  # an upload is writing it right now
                try:
                    os.remove(entry.path)
                    removed += 1
                finally:
                    lock.release(delete=True)
        if removed:
            logger.info("removed %d abandoned partial uploads from %s", removed, self.path)
        return removed
