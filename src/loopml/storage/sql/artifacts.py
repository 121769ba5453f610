"""Run artifacts: logical paths in SQL mapped to content-addressed blobs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from loopml.entities import ArtifactInfo
from loopml.errors import ArtifactNotFoundError, InvalidArgumentError
from loopml.storage.blobs import BlobStore, validate_digest
from loopml.storage.paths import local_path, validate_artifact_path
from loopml.storage.sql.base import now_ms
from loopml.storage.sql.runs import RunsMixin
from loopml.storage.sql.schema import artifacts
from loopml.storage.validation import validate_run_id

__all__ = ["ArtifactsMixin"]


class ArtifactsMixin(RunsMixin):
    _blobs: BlobStore

    def put_artifact(
        self, run_id: str, path: str, local_file: str | os.PathLike[str]
    ) -> ArtifactInfo:
        """Store one local file as the run's artifact at the logical ``path``.

        The bytes go to the blob store first (content-addressed, so identical files are kept
        once); only then is the path recorded, so a crash never leaves a path without bytes.
        Logging the same path again replaces what it points to.
        """
        run_id = validate_run_id(run_id)
        path = validate_artifact_path(path)
        source = local_path(local_file, field="local_file")
        if not source.is_file():
            raise InvalidArgumentError(
                f"The local file to log does not exist or is not a file: {str(source)!r}.",
                field="local_file",
            )
        with self._db.read() as conn:
            self._require_run(conn, run_id)
        ref = self._blobs.put_file(source)
        row = {
            "run_id": run_id,
            "path": path,
            "digest": ref.digest,
            "size": ref.size,
            "created_time": now_ms(),
        }

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            self._upsert(
                conn, artifacts, row, ["run_id", "path"], ["digest", "size", "created_time"]
            )

        self._db.write(write)
        return ArtifactInfo(path=path, is_dir=False, size=ref.size, digest=ref.digest)

    def record_artifacts(self, run_id: str, files: Sequence[tuple[str, str, int]]) -> None:
        """Record ``(path, digest, size)`` artifact entries for blobs already in the blob store
        (a model package, say, stored with :meth:`BlobStore.put_files`), in one transaction.

        Raises:
            ArtifactNotFoundError: a digest is not in the blob store (nothing is recorded).
        """
        run_id = validate_run_id(run_id)
        rows: list[dict[str, Any]] = []
        now = now_ms()
        for path, digest, size in files:
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**63:
                raise InvalidArgumentError(
                    f"The size of artifact {path!r} must be a non-negative 64-bit integer.",
                    field="size",
                )
            rows.append(
                {
                    "run_id": run_id,
                    "path": validate_artifact_path(path),
                    "digest": validate_digest(digest),
                    "size": size,
                    "created_time": now,
                }
            )
        digests: set[str] = {row["digest"] for row in rows}
        missing = sorted(digests - self._blobs.which_exist(digests))
        if missing:
            raise ArtifactNotFoundError(
                f"{len(missing)} artifact blobs are not in the blob store, e.g. {missing[0]}.",
                digest=missing[0],
            )

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            if rows:
                self._upsert(
                    conn, artifacts, rows, ["run_id", "path"], ["digest", "size", "created_time"]
                )

        self._db.write(write)

    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]:
        """The files and folders directly under ``path`` (every file below it if recursive)."""
        run_id = validate_run_id(run_id)
        path = validate_artifact_path(path, field="path", allow_empty=True)
        query = select(artifacts.c.path, artifacts.c.size, artifacts.c.digest).where(
            artifacts.c.run_id == run_id
        )
        if path:
            query = query.where(
                (artifacts.c.path == path)
                | artifacts.c.path.startswith(path + "/", autoescape=True)
            )
        with self._db.read() as conn:
            self._require_run(conn, run_id)
            rows = list(conn.execute(query.order_by(artifacts.c.path)))
        if len(rows) == 1 and rows[0].path == path:
            row = rows[0]
            return [ArtifactInfo(row.path, False, row.size, row.digest)]
        prefix = path + "/" if path else ""
        found: dict[str, ArtifactInfo] = {}
        for row in rows:
            rest = row.path[len(prefix) :]
            if recursive or "/" not in rest:
                found[row.path] = ArtifactInfo(row.path, False, row.size, row.digest)
            else:
                folder = prefix + rest.split("/", 1)[0]
                found.setdefault(folder, ArtifactInfo(folder, True))
        return sorted(found.values(), key=lambda info: info.path)

    def get_artifact(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> ArtifactInfo:
        """Write the artifact file at ``path`` to the local file ``dest``, verified by hash."""
        run_id = validate_run_id(run_id)
        path = validate_artifact_path(path)
        query = select(artifacts.c.digest, artifacts.c.size).where(
            artifacts.c.run_id == run_id, artifacts.c.path == path
        )
        with self._db.read() as conn:
            self._require_run(conn, run_id)
            row = conn.execute(query).first()
        if row is None:
            raise ArtifactNotFoundError(
                f"Run {run_id} has no artifact file at {path!r}.", run_id=run_id, path=path
            )
        self._blobs.get_file(row.digest, dest)
        return ArtifactInfo(path=path, is_dir=False, size=row.size, digest=row.digest)
