"""Content-addressed, immutable, deduplicated blob storage over fsspec.

A blob is a run of bytes named by its hash, ``"blake3:" + 64 lowercase hex digits``. The
object for a digest lives at ``<root>/blake3/<first 2 hex>/<full hex>``, so storing the same
bytes twice keeps one object. Objects are never changed once written.

Writes are atomic:

* on a local folder the bytes are copied into ``<root>/tmp/`` while being hashed (one read
  of the source), fsynced, then renamed into place with :func:`os.replace`; a crash never
  leaves a half-written object under its final name, and the temporary file is removed on
  error;
* on an object store (S3 and other fsspec back ends, which cannot rename) the source is
  hashed first and then uploaded straight to its final key; an S3 PUT (or a completed
  multipart upload) is all-or-nothing.

Reads are verified: :meth:`BlobStore.get_file` and :meth:`BlobStore.read_bytes` hash the
bytes while streaming them and refuse (after one retry) bytes that do not match the digest,
so corrupted data never reaches the caller.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import posixpath
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

import blake3
import fsspec
from fsspec.core import split_protocol
from fsspec.implementations.local import LocalFileSystem

from loopml.errors import (
    ArtifactNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    LoopmlError,
    MissingDependencyError,
    StoreUnavailableError,
)

__all__ = [
    "CHUNK_SIZE",
    "DIGEST_PREFIX",
    "SMALL_FILE_SIZE",
    "BlobRef",
    "BlobStore",
    "digest_bytes",
    "hash_file",
    "new_hasher",
    "validate_digest",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 4 * 1024 * 1024
"""How many bytes are read, hashed and written at a time."""

SMALL_FILE_SIZE = 1024 * 1024
"""Files up to this size are read whole and hashed in memory by the batch methods; larger
ones are copied by the kernel and hashed through a memory map of the copy."""

DIGEST_PREFIX = "blake3:"
"""Every digest starts with this; the rest is 64 lowercase hex digits."""

_DIGEST = re.compile(r"blake3:[0-9a-f]{64}")
_FETCH_ATTEMPTS = 2
_S3_PROTOCOLS = frozenset({"s3", "s3a"})
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_TRANSPORT_MODULES = frozenset(
    {"botocore", "aiobotocore", "aiohttp", "urllib3", "requests", "s3fs", "gcsfs", "adlfs"}
)
_SECRET_OPTION = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: its digest and its size in bytes."""

    digest: str
    size: int


def validate_digest(digest: object) -> str:
    """Return ``digest`` if it is a well-formed blob digest.

    Raises:
        InvalidArgumentError: ``digest`` is not ``"blake3:"`` followed by 64 lowercase hex
            digits. Checking this also keeps a digest from ever injecting a path.
    """
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        shown = repr(digest) if len(repr(digest)) <= 100 else repr(digest)[:97] + "..."
        raise InvalidArgumentError(
            f"Invalid digest {shown}: expected 'blake3:' followed by 64 lowercase hex digits",
            field="digest",
        )
    return digest


def new_hasher() -> Any:
    """A fresh BLAKE3 hasher that may use several threads for large chunks."""
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def _pump(read: Callable[[], bytes], write: Callable[[bytes], object] | None) -> tuple[str, int]:
    """Copy chunks from ``read`` to ``write`` (if given) while hashing; return digest and size."""
    hasher = new_hasher()
    size = 0
    while chunk := read():
        hasher.update(chunk)
        size += len(chunk)
        if write is not None:
            write(chunk)
    return DIGEST_PREFIX + hasher.hexdigest(), size


def _open_source(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a local source file for reading (a seam the tests replace)."""
    return open(path, "rb")


def _remove_quietly(path: str) -> None:
    """Delete ``path`` if it exists, ignoring errors (used while cleaning up)."""
    with contextlib.suppress(OSError):
        os.remove(path)


def _fsync_dir(path: str) -> None:
    """Flush a folder's entries to disk so a rename inside it survives a crash (POSIX only)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _flush_filesystem(path: str) -> None:
    """Flush every written file on the filesystem holding ``path`` to disk, in one call.

    One ``syncfs`` after a batch costs far less than one ``fsync`` per file (measured here:
    10,000 files of 10 KB took 3.7 s with an fsync each and 1.2 s with one flush at the end).
    Falls back to ``os.sync`` where ``syncfs`` is not available.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            fd = os.open(path, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
    if hasattr(os, "sync"):
        os.sync()


_COPY_STEP = 64 * 1024 * 1024


def _kernel_copy(
    source: BinaryIO, target: BinaryIO, progress: Callable[[int], object] | None = None
) -> None:
    """Copy an open file into another, inside the kernel where it can (``copy_file_range``),
    calling ``progress`` with each step's size (64 MiB at a time)."""
    src, dst = source.fileno(), target.fileno()
    report = progress or (lambda _size: None)
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        copied = 0
        try:
            while step := copy_range(src, dst, _COPY_STEP):
                copied += step
                report(step)
            return
        except OSError:
            report(-copied)  # start again with plain reads and writes
            os.lseek(src, 0, os.SEEK_SET)
            os.lseek(dst, 0, os.SEEK_SET)
            os.ftruncate(dst, 0)
    while chunk := source.read(CHUNK_SIZE):
        target.write(chunk)
        report(len(chunk))


def digest_bytes(data: bytes) -> str:
    """The blob digest of ``data`` (what :meth:`BlobStore.put_bytes` would store it under)."""
    return DIGEST_PREFIX + blake3.blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Digest and size of a local file, hashed through a memory map on all cores."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    hasher = new_hasher()
    if size:
        hasher.update_mmap(path)
    return DIGEST_PREFIX + hasher.hexdigest(), size


def _redact_uri(uri: str) -> str:
    """The URI with any ``user:password@`` part replaced, for messages and logs."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _secret_values(options: Mapping[str, Any]) -> list[str]:
    """String values of credential-like options (looked up recursively), to scrub from text."""
    found: list[str] = []
    for name, value in options.items():
        if isinstance(value, Mapping):
            found.extend(_secret_values(value))
        elif isinstance(value, str) and len(value) >= 4 and _SECRET_OPTION.search(str(name)):
            found.append(value)
    return found


def _is_transport_error(exc: BaseException) -> bool:
    """True if ``exc`` means the store could not be reached or read (not a loopml bug)."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    return any(cls.__module__.split(".")[0] in _TRANSPORT_MODULES for cls in type(exc).__mro__)


def _open_filesystem(uri: str, options: dict[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and root path for ``uri``."""
    protocol = split_protocol(uri)[0] or "file"
    if protocol not in _LOCAL_PROTOCOLS:
        # Every store gets its own instance and no listings cache, so a check such as
        # ``exists`` always asks the server (an object deleted elsewhere is noticed).
        options.setdefault("skip_instance_cache", True)
        options.setdefault("use_listings_cache", False)
    else:
        uri = os.path.expanduser(uri) if protocol == "file" and "://" not in uri else uri
    try:
        return fsspec.core.url_to_fs(uri, **options)
    except ImportError as exc:
        if protocol in _S3_PROTOCOLS:
            raise MissingDependencyError.for_extra("s3fs", "s3", "Storing blobs on S3") from exc
        raise MissingDependencyError(
            f"Storing blobs at {protocol}:// needs a package that is not installed: {exc}",
            protocol=protocol,
        ) from exc
    except ValueError as exc:
        raise InvalidArgumentError(
            f"Unsupported blob store URI {_redact_uri(uri)!r}: {exc}", field="uri"
        ) from exc


class BlobStore:
    """Content-addressed, immutable, deduplicated bytes in a folder or an object store.

    Args:
        uri: Where the blobs live: a local folder path, a ``file://`` URI, ``s3://bucket/prefix``
            or any other fsspec URL. A local folder is created on the first write.
        storage_options: Options for the fsspec filesystem (for S3: ``key``, ``secret``,
            ``client_kwargs={"endpoint_url": ...}`` and so on).

    Raises:
        MissingDependencyError: The filesystem's package (e.g. ``s3fs``) is not installed.
        InvalidArgumentError: ``uri`` is empty or its protocol is unknown.
    """

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidArgumentError(
                f"Blob store URI must be a non-empty string, got {uri!r}", field="uri"
            )
        options = dict(storage_options or {})
        self._uri = uri
        self._shown_uri = _redact_uri(uri)
        self._secrets = _secret_values(options)
        self._fs, root = _open_filesystem(uri, options)
        self._local = isinstance(self._fs, LocalFileSystem)
        self._root = os.path.abspath(root) if self._local else root.rstrip("/")
        logger.debug("Opened blob store %s (local=%s)", self._shown_uri, self._local)

    def __repr__(self) -> str:
        return f"BlobStore({self._shown_uri!r})"

    @property
    def uri(self) -> str:
        """The URI this store was opened with."""
        return self._uri

    @property
    def is_local(self) -> bool:
        """True for a folder on this machine (cheap to ask), False for an object store."""
        return self._local

    validate_digest = staticmethod(validate_digest)

    # ----------------------------------------------------------------------------- writing

    def put_file(self, path: str | os.PathLike[str]) -> BlobRef:
        """Store the bytes of the local file ``path`` (streamed) and return their reference.

        If a blob with the same digest is already stored, nothing is written.
        """
        if self._local:
            with _open_source(path) as reader:
                return self._put_local(reader)
        return self._put_file_remote(path, None)

    def _put_file_remote(
        self, path: str | os.PathLike[str], on_stored: Callable[[BlobRef], object] | None
    ) -> BlobRef:
        with _open_source(path) as reader:
            digest, size = _pump(lambda: reader.read(CHUNK_SIZE), None)
        upload = lambda key: self._fs.put_file(os.fspath(path), key)  # noqa: E731
        return self._put_remote(digest, size, upload, on_stored)

    def put_stream(self, reader: BinaryIO) -> BlobRef:
        """Store the bytes read from ``reader`` (until it returns ``b""``) and return their
        reference. On an object store the stream is spooled to a temporary file first, since
        the digest (the object's key) must be known before the upload starts."""
        if self._local:
            return self._put_local(reader)
        with tempfile.TemporaryFile() as spool:
            digest, size = _pump(lambda: reader.read(CHUNK_SIZE), spool.write)
            spool.seek(0)
            upload = lambda key: self._fs.pipe_file(key, spool.read())  # noqa: E731
            return self._put_remote(digest, size, upload)

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store ``data`` and return its reference; nothing is written if already stored."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgumentError(
                f"Blob data must be bytes, not {type(data).__name__}", field="data"
            )
        data = bytes(data)
        if self._local:
            return self._put_local(io.BytesIO(data))
        digest, size = _pump(io.BytesIO(data).read, None)
        return self._put_remote(digest, size, lambda key: self._fs.pipe_file(key, data))

    def staging_folder(self) -> str | None:
        """A folder for files that :meth:`put_verified_file` will take over: inside a local
        store (the same filesystem, so taking a file over is a rename and its bytes are
        written once), or ``None`` for an object store (any local folder will do)."""
        if not self._local:
            return None
        folder = os.path.join(self._root, "tmp", "uploads")
        with self._guard("creating the staging folder"):
            os.makedirs(folder, exist_ok=True)
        return folder

    def put_verified_file(self, path: str | os.PathLike[str], ref: BlobRef) -> BlobRef:
        """Store the local file ``path``, whose digest and size the caller computed while
        writing it (the tracking server hashes an upload as it arrives), without hashing it
        again. On a local store the file is flushed and renamed into place, so it must be in
        :meth:`staging_folder`; on an object store it is uploaded. Either way ``path`` is gone
        afterwards. Returns ``ref``.
        """
        path = os.fspath(path)
        try:
            if not self._local:
                return self._put_remote(
                    ref.digest, ref.size, lambda key: self._fs.put_file(path, key)
                )
            with self._guard("writing a blob"), open(path, "rb+") as out:
                os.fsync(out.fileno())
            self._commit_local(path, ref.digest)
            return ref
        finally:
            _remove_quietly(path)

    def _put_local(self, reader: BinaryIO) -> BlobRef:
        """Copy ``reader`` into a temporary file while hashing it, then rename it into place."""
        tmp_dir = os.path.join(self._root, "tmp")
        with self._guard("creating a temporary file"):
            os.makedirs(tmp_dir, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(dir=tmp_dir, prefix="put-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                write = self._guarded(out.write, "writing a blob")
                digest, size = _pump(lambda: reader.read(CHUNK_SIZE), write)
                with self._guard("writing a blob"):
                    out.flush()
                    os.fsync(out.fileno())
            self._commit_local(tmp_path, digest)
        except BaseException:
            _remove_quietly(tmp_path)
            raise
        logger.debug("Stored blob %s (%d bytes) in %s", digest, size, self._shown_uri)
        return BlobRef(digest, size)

    def _commit_local(self, tmp_path: str, digest: str) -> None:
        """Move a finished temporary file to its final name, or drop it if already stored."""
        final = self._object_path(digest)
        with self._guard("storing a blob"):
            if os.path.isfile(final):
                os.remove(tmp_path)
                return
            folder = os.path.dirname(final)
            os.makedirs(folder, exist_ok=True)
            os.replace(tmp_path, final)
            _fsync_dir(folder)

    def _put_remote(
        self,
        digest: str,
        size: int,
        upload: Callable[[str], object],
        on_stored: Callable[[BlobRef], object] | None = None,
    ) -> BlobRef:
        """Upload straight to the final key (already hashed) unless the blob is stored."""
        ref = BlobRef(digest, size)
        if self.exists(digest):
            logger.debug("Blob %s is already stored in %s", digest, self._shown_uri)
            return ref
        key = self._object_path(digest)
        with self._guard("uploading a blob"):
            upload(key)
            self._fs.invalidate_cache(key)
            stored = self._fs.size(key)
        if stored != size:
            with self._guard("removing a bad upload"):
                self._fs.rm_file(key)
            raise IntegrityError(
                f"Blob {digest} was uploaded with {stored} bytes instead of {size}: "
                "the source changed while it was being stored",
                digest=digest,
            )
        logger.debug("Uploaded blob %s (%d bytes) to %s", digest, size, self._shown_uri)
        if on_stored is not None:
            on_stored(ref)
        return ref

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        progress: Callable[[int], object] | None = None,
        on_stored: Callable[[BlobRef], object] | None = None,
    ) -> list[BlobRef]:
        """Store many local files and return their references, in order.

        The same guarantees as :meth:`put_file` (atomic, deduplicated), built for thousands
        of files: a small file is read and hashed in memory with no per-file temporary
        folder work, a large one is copied by the kernel and hashed through a memory map of
        the copy (so the digest is always that of the bytes stored), and the folder is
        flushed to disk once at the end instead of once per file. ``progress`` is called
        with the bytes read as they are read (large files in steps; the calls add up to the
        total size); ``on_stored`` with the reference of each blob that was not stored
        before.
        """
        if not self._local:
            refs = []
            for path in paths:
                refs.append(self._put_file_remote(path, on_stored))
                if progress is not None:
                    progress(refs[-1].size)
            return refs
        from loopml.storage._local_batch import LocalBatch

        batch = LocalBatch(self, on_stored)
        refs = [batch.put(os.fspath(path), progress) for path in paths]
        if batch.written:
            with self._guard("flushing blobs to disk"):
                _flush_filesystem(self._root)
        return refs

    # ----------------------------------------------------------------------------- reading

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> int:
        """Write the blob ``digest`` to the local file ``dest`` and return its size.

        The bytes go to a temporary file beside ``dest`` and are hashed on the way; only
        verified bytes are renamed to ``dest`` (its folder is created if needed). A mismatch
        is retried once.

        Raises:
            ArtifactNotFoundError: No blob with this digest is stored.
            IntegrityError: The stored bytes do not match the digest (twice).
        """
        key = self._object_path(digest)
        dest_path = os.path.abspath(os.fspath(dest))
        actual = ""
        for attempt in range(1, _FETCH_ATTEMPTS + 1):
            with self._open_object(key, digest) as source:
                actual, size = self._download(source, dest_path, digest)
            if actual == digest:
                return size
            self._note_mismatch(digest, actual, attempt)
        raise self._corrupted(digest, actual)

    def _download(self, source: BinaryIO, dest_path: str, digest: str) -> tuple[str, int]:
        """Copy ``source`` to a temporary file beside ``dest_path`` while hashing it.

        The temporary file becomes ``dest_path`` only if its hash is ``digest``; otherwise
        (or on any error) it is removed. Returns the actual digest and the size.
        """
        folder = os.path.dirname(dest_path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".loopml-get-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                actual, size = self._pump_object(source, out.write)
                out.flush()
                os.fsync(out.fileno())
            if actual == digest:
                os.replace(tmp_path, dest_path)
                return actual, size
        except BaseException:
            _remove_quietly(tmp_path)
            raise
        _remove_quietly(tmp_path)
        return actual, size

    def read_bytes(self, digest: str) -> bytes:
        """The bytes of the blob ``digest``, verified like :meth:`get_file` (held in memory).

        Raises:
            ArtifactNotFoundError: No blob with this digest is stored.
            IntegrityError: The stored bytes do not match the digest (twice).
        """
        key = self._object_path(digest)
        actual = ""
        for attempt in range(1, _FETCH_ATTEMPTS + 1):
            buffer = io.BytesIO()
            with self._open_object(key, digest) as source:
                actual, _ = self._pump_object(source, buffer.write)
            if actual == digest:
                return buffer.getvalue()
            self._note_mismatch(digest, actual, attempt)
        raise self._corrupted(digest, actual)

    def open_verified(self, digest: str) -> BinaryIO:
        """The blob ``digest`` as an open binary file at offset 0, verified before it is
        returned, so a caller can stream it knowing every byte is right.

        On a local store it is the stored object itself, hashed first with plain reads (no
        memory map, so the pages read are not charged to the process); on an object store it
        is an anonymous temporary file filled while hashing. A mismatch is retried once.

        Raises:
            ArtifactNotFoundError: No blob with this digest is stored.
            IntegrityError: The stored bytes do not match the digest (twice).
        """
        key = self._object_path(digest)
        actual = ""
        for attempt in range(1, _FETCH_ATTEMPTS + 1):
            file, actual = self._hashed_copy(key, digest)
            if actual == digest:
                file.seek(0)
                return file
            file.close()
            self._note_mismatch(digest, actual, attempt)
        raise self._corrupted(digest, actual)

    def _hashed_copy(self, key: str, digest: str) -> tuple[BinaryIO, str]:
        """An open file with the object's bytes (the object itself on a local store) and
        the digest they hash to."""
        if self._local:
            file = self._open_object(key, digest)
            try:
                return file, self._pump_object(file, None)[0]
            except BaseException:
                file.close()
                raise
        spool = tempfile.TemporaryFile(prefix="loopml-get-")  # noqa: SIM115 - returned open
        try:
            with self._open_object(key, digest) as source:
                return spool, self._pump_object(source, spool.write)[0]
        except BaseException:
            spool.close()
            raise

    def get_files(
        self,
        items: Sequence[tuple[str, str | os.PathLike[str]]],
        *,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        """Write each blob ``digest`` to its local file ``dest``, verified like :meth:`get_file`.

        Built for many files: no per-file flush to disk (the copies are the caller's working
        files, not the store), small blobs read whole, large ones copied by the kernel and
        hashed through a memory map. Each file still appears only once verified.
        """
        from loopml.storage._local_batch import LocalBatch

        for digest, dest in items:
            if self._local:
                size = LocalBatch(self).get(digest, os.path.abspath(os.fspath(dest)))
            else:
                size = self.get_file(digest, dest)
            if progress is not None:
                progress(size)

    def exists(self, digest: str) -> bool:
        """True if the blob ``digest`` is stored (always asks the store, never a cache)."""
        key = self._object_path(digest)
        with self._guard("checking a blob"):
            if self._local:
                return os.path.isfile(key)
            self._fs.invalidate_cache(key)
            return bool(self._fs.exists(key))

    def which_exist(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` that are stored. On a local folder this lists each
        ``blake3/<xx>/`` folder once instead of asking per blob (10,000 digests: one
        ``listdir`` per prefix in use, at most 256)."""
        wanted = {validate_digest(d) for d in digests}
        if not self._local:
            return {d for d in wanted if self.exists(d)}
        by_prefix: dict[str, set[str]] = {}
        for digest in wanted:
            hex_digest = digest[len(DIGEST_PREFIX) :]
            by_prefix.setdefault(hex_digest[:2], set()).add(hex_digest)
        found: set[str] = set()
        with self._guard("listing blobs"):
            for prefix, names in by_prefix.items():
                try:
                    present = set(os.listdir(os.path.join(self._root, "blake3", prefix)))
                except FileNotFoundError:
                    continue
                found.update(DIGEST_PREFIX + name for name in names & present)
        return found

    def size(self, digest: str) -> int:
        """The size in bytes of the blob ``digest``.

        Raises:
            ArtifactNotFoundError: No blob with this digest is stored.
        """
        key = self._object_path(digest)
        with self._guard("checking a blob", digest=digest):
            if self._local:
                return os.path.getsize(key)
            self._fs.invalidate_cache(key)
            return int(self._fs.size(key))

    def _open_object(self, key: str, digest: str) -> BinaryIO:
        """Open the stored object at ``key`` for streaming reads.

        Raises:
            ArtifactNotFoundError: The object does not exist.
        """
        with self._guard("reading a blob", digest=digest):
            if self._local:
                return open(key, "rb")
            self._fs.invalidate_cache(key)
            return self._fs.open(key, "rb", block_size=CHUNK_SIZE, cache_type="none")

    def _pump_object(
        self, source: BinaryIO, write: Callable[[bytes], object] | None
    ) -> tuple[str, int]:
        """Stream an open object into ``write``; return the actual digest and size."""
        read = self._guarded(lambda: source.read(CHUNK_SIZE), "reading a blob")
        return _pump(read, write)

    # ----------------------------------------------------------------------------- helpers

    def _object_path(self, digest: str) -> str:
        """Where the object for ``digest`` lives (the digest is validated first)."""
        hex_digest = validate_digest(digest)[len(DIGEST_PREFIX) :]
        return posixpath.join(self._root, "blake3", hex_digest[:2], hex_digest)

    def _note_mismatch(self, digest: str, actual: str, attempt: int) -> None:
        """Log a failed verification (the caller retries or gives up)."""
        logger.warning(
            "Blob %s in %s hashed to %s (attempt %d of %d)",
            digest,
            self._shown_uri,
            actual,
            attempt,
            _FETCH_ATTEMPTS,
        )

    def _corrupted(self, digest: str, actual: str) -> IntegrityError:
        """The error for a blob whose stored bytes do not match its digest."""
        return IntegrityError(
            f"Blob {digest} in {self._shown_uri} is corrupted: its stored bytes hash to {actual}",
            digest=digest,
            actual=actual,
        )

    def _scrub(self, text: str) -> str:
        """``text`` with any credential from the storage options blanked out."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextlib.contextmanager
    def _guard(self, action: str, *, digest: str | None = None) -> Iterator[None]:
        """Turn store failures into loopml errors.

        A missing object becomes :class:`ArtifactNotFoundError` when ``digest`` is given; a
        connection, timeout or I/O failure becomes :class:`StoreUnavailableError`.
        """
        try:
            yield
        except LoopmlError:
            raise
        except FileNotFoundError as exc:
            if digest is None:
                raise self._unavailable(action, exc) from exc
            raise ArtifactNotFoundError(
                f"Blob {digest} not found in blob store {self._shown_uri}", digest=digest
            ) from None
        except Exception as exc:
            if not _is_transport_error(exc):
                raise
            raise self._unavailable(action, exc) from exc

    def _guarded(self, func: Callable[..., Any], action: str) -> Callable[..., Any]:
        """``func`` wrapped in :meth:`_guard`."""

        def call(*args: Any) -> Any:
            with self._guard(action):
                return func(*args)

        return call

    def _unavailable(self, action: str, exc: BaseException) -> StoreUnavailableError:
        """The error for a store that failed while doing ``action``."""
        detail = self._scrub(f"{type(exc).__name__}: {exc}")
        return StoreUnavailableError(
            f"Blob store {self._shown_uri} is unavailable ({action}): {detail}",
            uri=self._shown_uri,
        )
