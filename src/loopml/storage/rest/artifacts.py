"""The remote store: blobs and run artifacts (see :mod:`loopml.server.routes.artifacts`).

:class:`RemoteBlobStore` gives the data and models layers the :class:`~loopml.storage.blobs.
BlobStore` methods they use, over the server's ``/api/v1/blobs`` routes:

* **Uploads** hash each file locally first (BLAKE3, memory-mapped, the same digests as the
  local store), ask the server once which digests it already holds, and upload only the
  missing ones, each streamed from its file a megabyte at a time (an iterable body, so a
  retried upload reads the file again) with its Content-Length. The server verifies the
  bytes against the digest, so a file that changed after it was hashed is refused
  (:class:`~loopml.errors.IntegrityError`) instead of being stored under a wrong name.
* **Downloads** stream into a temporary file beside the destination while hashing; only
  bytes that match the digest are renamed into place. A mismatch or an interrupted download
  is fetched once more, then :class:`~loopml.errors.IntegrityError` (or
  :class:`~loopml.errors.StoreUnavailableError` when it keeps being cut off).

:class:`RestArtifactsMixin` implements :class:`~loopml.storage.protocols.ArtifactStore`:
``put_artifact`` uploads the blob, then records ``{path, digest, size}``; ``get_artifact``
looks the file up, then downloads its blob. Run ids and paths are checked here with the
store's own validators first, so the errors are those of the SQL store.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import quote

import httpx

from loopml.entities import ArtifactInfo
from loopml.errors import (
    IntegrityError,
    InvalidArgumentError,
    LoopmlError,
    StoreUnavailableError,
)
from loopml.storage.blobs import (
    DIGEST_PREFIX,
    BlobRef,
    digest_bytes,
    hash_file,
    new_hasher,
    validate_digest,
)
from loopml.storage.paths import local_path, validate_artifact_path
from loopml.storage.rest.base import API_PREFIX, RestBase, is_transient
from loopml.storage.rest.wire import from_wire
from loopml.storage.validation import validate_run_id

if TYPE_CHECKING:
    from loopml.storage.blobs import BlobStore

__all__ = ["RemoteBlobStore", "RestArtifactsMixin"]

logger = logging.getLogger(__name__)

_STEP = 1024 * 1024
_FETCH_ATTEMPTS = 2
#: digests asked about per which-exist request (each ~80 bytes of JSON)
_QUERY_BATCH = 50_000
_OCTETS = {"Content-Type": "application/octet-stream"}


def _hash_file(path: str) -> BlobRef:
    return BlobRef(*hash_file(path))


def _blob_path(digest: str) -> str:
    return "/blobs/" + quote(validate_digest(digest), safe=":")


class _FileBody:
    """An upload body read from ``source`` a megabyte at a time from byte ``offset``;
    iterating again (a retry) starts again from there, taking back the progress reported."""

    def __init__(
        self, source: BinaryIO, progress: Callable[[int], object] | None, offset: int = 0
    ) -> None:
        self._source = source
        self._progress = progress
        self._offset = offset
        self._sent = 0

    def take_back(self) -> None:
        """Report the bytes sent so far as not sent (before a retry)."""
        if self._sent and self._progress is not None:
            self._progress(-self._sent)
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        self.take_back()
        self._source.seek(self._offset)
        while chunk := self._source.read(_STEP):
            self._sent += len(chunk)
            if self._progress is not None:
                self._progress(len(chunk))
            yield chunk


class _Interrupted(Exception):
    """A download ended before all its bytes arrived."""


class RemoteBlobStore:
    """The blob store of a loopml server, seen from a client.

    It has the methods of :class:`~loopml.storage.blobs.BlobStore` that the data and models
    layers use, with the same guarantees: content addressing (uploads of bytes the server
    holds are skipped), verified reads, and atomic writes of downloaded files.
    """

    validate_digest = staticmethod(validate_digest)

    def __init__(self, rest: RestBase) -> None:
        self._rest = rest

    def __repr__(self) -> str:
        return f"RemoteBlobStore({self.uri!r})"

    @property
    def uri(self) -> str:
        """Where the blobs are: the server's blob routes."""
        return self._rest.uri + API_PREFIX + "/blobs"

    @property
    def is_local(self) -> bool:
        """Always False: asking the server costs a round trip."""
        return False

    # ----------------------------------------------------------------------------- writing

    def put_file(self, path: str | os.PathLike[str]) -> BlobRef:
        """Upload the local file ``path`` unless the server holds its bytes already."""
        (ref,) = self.put_files([path])
        return ref

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        progress: Callable[[int], object] | None = None,
        on_stored: Callable[[BlobRef], object] | None = None,
    ) -> list[BlobRef]:
        """Hash every file, ask once which the server lacks, and upload only those.

        ``progress`` gets the bytes sent as they are sent (and the size of each file the
        server already had); the calls add up to the total size. ``on_stored`` gets the
        reference of each blob that was uploaded.
        """
        hashed = [(os.fspath(path), _hash_file(os.fspath(path))) for path in paths]
        present = self.which_exist({ref.digest for _, ref in hashed})
        for path, ref in hashed:
            if ref.digest in present:
                if progress is not None:
                    progress(ref.size)
                continue
            with open(path, "rb") as source:
                self._upload_file(ref, source, progress)
            present.add(ref.digest)
            if on_stored is not None:
                on_stored(ref)
        return [ref for _, ref in hashed]

    def put_bytes(self, data: bytes) -> BlobRef:
        """Upload ``data`` unless the server holds it already."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgumentError(
                f"Blob data must be bytes, not {type(data).__name__}", field="data"
            )
        data = bytes(data)
        ref = BlobRef(digest_bytes(data), len(data))
        if not self.exists(ref.digest):
            self._upload(ref, data)
        return ref

    def put_stream(self, reader: BinaryIO) -> BlobRef:
        """Upload what ``reader`` yields. It is spooled to a temporary file first, since the
        digest (the blob's name in the URL) must be known before the upload starts."""
        with tempfile.TemporaryFile(prefix="loopml-spool-") as spool:
            hasher = new_hasher()
            size = 0
            while chunk := reader.read(_STEP):
                hasher.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            ref = BlobRef(DIGEST_PREFIX + hasher.hexdigest(), size)
            if not self.exists(ref.digest):
                self._upload_file(ref, cast("BinaryIO", spool), None)
        return ref

    def _upload_file(
        self, ref: BlobRef, source: BinaryIO, progress: Callable[[int], object] | None
    ) -> None:
        """Upload a file, continuing where the server stopped when the connection breaks.

        After a transient failure (server unreachable, 502-504), the server is asked how many
        bytes of the blob it holds and the upload continues from there (with backoff, for up
        to ``LOOPML_HTTP_RETRY_SECONDS``); if the server already stored the blob (the reply
        was lost), nothing more is sent.
        """
        path = _blob_path(ref.digest)
        deadline = time.monotonic() + self._rest.retry_seconds
        offset, attempt = 0, 0
        while True:
            if progress is not None and offset:
                progress(offset)
            body = _FileBody(source, progress, offset)
            try:
                self._rest._call(
                    "PUT",
                    path,
                    params={"offset": offset} if offset else None,
                    content=cast("Iterator[bytes]", body),
                    headers={**_OCTETS, "Content-Length": str(ref.size - offset)},
                    idempotent=False,
                )
                break
            except LoopmlError as exc:
                body.take_back()
                if progress is not None and offset:
                    progress(-offset)
                if not is_transient(exc) or time.monotonic() >= deadline:
                    raise
                logger.info("Upload of blob %s interrupted (%s); continuing", ref.digest, exc)
            attempt += 1
            self._rest.sleep(attempt, deadline)
            state = self._rest._call("GET", path + "/upload")
            if state.get("stored"):
                if progress is not None:
                    progress(ref.size)
                break
            held = state.get("offset")
            offset = held if isinstance(held, int) and 0 <= held <= ref.size else 0
            logger.info(
                "Continuing the upload of blob %s at byte %d of %d", ref.digest, offset, ref.size
            )
        logger.debug("Uploaded blob %s (%d bytes) to %s", ref.digest, ref.size, self.uri)

    def _upload(self, ref: BlobRef, body: bytes | Iterable[bytes]) -> None:
        headers = {**_OCTETS, "Content-Length": str(ref.size)}
        # an iterable (not an iterator) body is read again from the start on a retry
        content = cast("Iterator[bytes]", body) if not isinstance(body, bytes) else body
        self._rest._call("PUT", _blob_path(ref.digest), content=content, headers=headers)
        logger.debug("Uploaded blob %s (%d bytes) to %s", ref.digest, ref.size, self.uri)

    # ----------------------------------------------------------------------------- reading

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> int:
        """Download the blob ``digest`` to the local file ``dest``; return its size.

        The bytes go to a temporary file beside ``dest`` and are hashed on the way; only
        verified bytes are renamed to ``dest`` (its folder is created if needed).

        Raises:
            ArtifactNotFoundError: The server holds no blob with this digest.
            IntegrityError: The bytes received do not match the digest (twice).
        """
        validate_digest(digest)
        dest_path = os.path.abspath(os.fspath(dest))
        folder = os.path.dirname(dest_path)
        os.makedirs(folder, exist_ok=True)

        def attempt() -> tuple[str, int]:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".loopml-get-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    actual, size = self._fetch(digest, out.write)
                if actual == digest:
                    os.replace(tmp, dest_path)
                    return actual, size
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
            os.remove(tmp)
            return actual, size

        return self._verified(digest, attempt)

    def get_files(
        self,
        items: Sequence[tuple[str, str | os.PathLike[str]]],
        *,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        """Download each blob ``digest`` to its local file ``dest``, verified like
        :meth:`get_file`; ``progress`` gets each file's size once it is in place."""
        for digest, dest in items:
            size = self.get_file(digest, dest)
            if progress is not None:
                progress(size)

    def read_bytes(self, digest: str) -> bytes:
        """The bytes of the blob ``digest``, verified like :meth:`get_file` (held in memory)."""
        validate_digest(digest)
        buffers: list[io.BytesIO] = []

        def attempt() -> tuple[str, int]:
            buffers[:] = [io.BytesIO()]
            return self._fetch(digest, buffers[0].write)

        self._verified(digest, attempt)
        return buffers[0].getvalue()

    def _verified(self, digest: str, attempt: Callable[[], tuple[str, int]]) -> int:
        """Run a download until its bytes hash to ``digest`` (two tries)."""
        actual = ""
        for number in range(1, _FETCH_ATTEMPTS + 1):
            try:
                actual, size = attempt()
            except _Interrupted as exc:
                logger.warning(
                    "Download of blob %s interrupted (attempt %d): %s", digest, number, exc
                )
                if number == _FETCH_ATTEMPTS:
                    raise StoreUnavailableError(
                        f"The download of blob {digest} from {self._rest.uri} was cut off "
                        f"twice: {exc}",
                        uri=self._rest.uri,
                        digest=digest,
                    ) from exc
                continue
            if actual == digest:
                return size
            logger.warning(
                "Blob %s from %s hashed to %s (attempt %d of %d)",
                digest,
                self._rest.uri,
                actual,
                number,
                _FETCH_ATTEMPTS,
            )
        raise IntegrityError(
            f"Blob {digest} downloaded from {self._rest.uri} is corrupted: the bytes received "
            f"hash to {actual}",
            digest=digest,
            actual=actual,
        )

    def _fetch(self, digest: str, write: Callable[[bytes], object]) -> tuple[str, int]:
        """Stream the blob into ``write`` while hashing it; return the digest and size."""
        hasher = new_hasher()
        size = 0
        with self._rest._stream(_blob_path(digest)) as response:
            try:
                for chunk in response.iter_bytes(_STEP):
                    hasher.update(chunk)
                    write(chunk)
                    size += len(chunk)
            except httpx.TransportError as exc:
                raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
        return DIGEST_PREFIX + hasher.hexdigest(), size

    # ----------------------------------------------------------------------------- asking

    def exists(self, digest: str) -> bool:
        """True if the server holds the blob ``digest`` (always asks)."""
        answer = self._rest._call("GET", _blob_path(digest) + "/exists")
        return bool(answer["exists"])

    def which_exist(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` the server holds (one request per 50,000 digests)."""
        wanted = sorted({validate_digest(d) for d in digests})
        found: set[str] = set()
        for start in range(0, len(wanted), _QUERY_BATCH):
            body = {"digests": wanted[start : start + _QUERY_BATCH]}
            answer = self._rest._call("POST", "/blobs/which-exist", json=body, idempotent=True)
            found.update(validate_digest(d) for d in answer["present"])
        return found

    def size(self, digest: str) -> int:
        """The size in bytes of the blob ``digest``.

        Raises:
            ArtifactNotFoundError: The server holds no blob with this digest.
        """
        answer = self._rest._call("GET", _blob_path(digest) + "/size")
        return int(answer["size"])


def _run_path(run_id: str) -> str:
    return "/runs/" + quote(validate_run_id(run_id), safe="") + "/artifacts"


class RestArtifactsMixin(RestBase):
    """Implements :class:`~loopml.storage.protocols.ArtifactStore` over HTTP, and gives the
    server's blobs as :attr:`blobs`."""

    _remote_blobs: RemoteBlobStore | None = None

    @property
    def blobs(self) -> BlobStore:
        """The server's blobs (a :class:`RemoteBlobStore`, used like a BlobStore)."""
        if self._remote_blobs is None:
            self._remote_blobs = RemoteBlobStore(self)
        return cast("BlobStore", self._remote_blobs)

    def put_artifact(
        self, run_id: str, path: str, local_file: str | os.PathLike[str]
    ) -> ArtifactInfo:
        """Upload one local file (unless the server has its bytes) and record it as the run's
        artifact at the logical ``path``."""
        run_path = _run_path(run_id)
        path = validate_artifact_path(path)
        source = local_path(local_file, field="local_file")
        if not Path(source).is_file():
            raise InvalidArgumentError(
                f"The local file to log does not exist or is not a file: {str(source)!r}.",
                field="local_file",
            )
        ref = self.blobs.put_file(source)
        body = {"path": path, "digest": ref.digest, "size": ref.size}
        return from_wire(ArtifactInfo, self._call("POST", run_path, json=body))

    def record_artifacts(self, run_id: str, files: Sequence[tuple[str, str, int]]) -> None:
        """Record ``(path, digest, size)`` entries for blobs the server already holds."""
        entries = [{"path": p, "digest": d, "size": s} for p, d, s in files]
        self._call("POST", _run_path(run_id) + "/batch", json={"files": entries})

    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]:
        params = {"path": path, "recursive": "true" if recursive else "false"}
        return from_wire(list[ArtifactInfo], self._call("GET", _run_path(run_id), params=params))

    def get_artifact(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> ArtifactInfo:
        """Download the artifact file at ``path`` to ``dest``, verified by hash."""
        run_path = _run_path(run_id)
        path = validate_artifact_path(path)
        answer = self._call("GET", run_path + "/file", params={"path": path})
        info = from_wire(ArtifactInfo, answer)
        self.blobs.get_file(validate_digest(info.digest), dest)
        return info
