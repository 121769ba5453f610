"""Datasets, dataset versions and run inputs (lineage) in the SQL store.

The store records what the data layer (:mod:`loopml.data`) computed: a version's manifest
digest, kind, sizes, schema and profile. Version numbers are assigned here, inside the
transaction that inserts the version, so two concurrent adds never get the same number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.entities import Dataset, DatasetInput, DatasetKind, DatasetVersionInfo
from loopml.errors import AlreadyExistsError, DatasetNotFoundError, InvalidArgumentError
from loopml.storage.blobs import validate_digest
from loopml.storage.sql.base import now_ms
from loopml.storage.sql.runs import RunsMixin
from loopml.storage.sql.schema import dataset_inputs, dataset_versions, datasets
from loopml.storage.validation import (
    validate_dataset_name,
    validate_dataset_version,
    validate_input_context,
    validate_run_id,
    validate_string_value,
)

__all__ = ["DatasetsMixin"]

_MAX_JSON_BYTES = 4 * 1024 * 1024
#: the deepest nesting of lists and mappings kept (real schemas and profiles are a few levels;
#: deeper ones could not be served back: JSON encoders stop at a few hundred levels)
_MAX_JSON_DEPTH = 64


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth > _MAX_JSON_DEPTH:
                return True
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _json_or_none(field: str, value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"The {field} must be a mapping (its JSON form). Got {type(value).__name__}.",
            field=field,
        )
    if _too_deep(value):
        raise InvalidArgumentError(
            f"The {field} is nested more than {_MAX_JSON_DEPTH} levels deep.", field=field
        )
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise InvalidArgumentError(f"The {field} is not valid JSON: {exc}", field=field) from exc
    if len(text) > _MAX_JSON_BYTES:
        raise InvalidArgumentError(
            f"The {field} is {len(text)} bytes of JSON; at most {_MAX_JSON_BYTES} are stored.",
            field=field,
        )
    return text


def _count(field: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidArgumentError(
            f"The {field} must be a non-negative 64-bit integer. Got {value!r} instead.",
            field=field,
        )
    return value


def _to_dataset(row: Row) -> Dataset:
    return Dataset(
        dataset_id=str(row.dataset_id),
        name=row.name,
        description=row.description,
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
        latest_version=row.latest_version,
        rules=json.loads(row.rules) if row.rules else None,
    )


def _to_version(name: str, row: Row) -> DatasetVersionInfo:
    return DatasetVersionInfo(
        name=name,
        version=row.version,
        digest=row.digest,
        kind=DatasetKind(row.kind),
        num_files=row.num_files,
        size=row.size,
        creation_time=row.creation_time,
        num_rows=row.num_rows,
        schema=json.loads(row.schema) if row.schema else None,
        profile=json.loads(row.profile) if row.profile else None,
        source=row.source,
        description=row.description,
    )


def _latest_version_column() -> Any:
    return (
        select(func.max(dataset_versions.c.version))
        .where(dataset_versions.c.dataset_id == datasets.c.dataset_id)
        .scalar_subquery()
        .label("latest_version")
    )


class DatasetsMixin(RunsMixin):
    # ------------------------------------------------------------------------ datasets

    def _dataset_row(self, conn: Connection, name: str, *, lock: bool = False) -> Row:
        query = select(datasets, _latest_version_column()).where(datasets.c.name == name)
        if lock and self._db.dialect != "sqlite":
            query = select(datasets).where(datasets.c.name == name).with_for_update()
            row = conn.execute(query).first()
        else:
            row = conn.execute(query).first()
        if row is None:
            raise DatasetNotFoundError(f"No dataset named {name!r}.", name=name)
        return row

    def create_dataset(self, name: str, description: str = "") -> Dataset:
        name = validate_dataset_name(name)
        description = validate_string_value("dataset", "description", description or "")

        def write(conn: Connection) -> Dataset:
            now = now_ms()
            conn.execute(
                insert(datasets).values(
                    name=name,
                    description=description,
                    rules=None,
                    creation_time=now,
                    last_update_time=now,
                )
            )
            self._event(conn, "dataset.created", "dataset", name)
            return _to_dataset(self._dataset_row(conn, name))

        try:
            return self._db.write(write)
        except SqlIntegrityError:
            raise AlreadyExistsError(
                f"A dataset named {name!r} already exists.", name=name
            ) from None

    def get_dataset(self, name: str) -> Dataset:
        name = validate_dataset_name(name)
        with self._db.read() as conn:
            return _to_dataset(self._dataset_row(conn, name))

    def list_datasets(self) -> list[Dataset]:
        query = select(datasets, _latest_version_column()).order_by(datasets.c.name)
        with self._db.read() as conn:
            return [_to_dataset(row) for row in conn.execute(query)]

    def set_dataset_rules(self, name: str, rules: Mapping[str, Any] | None) -> Dataset:
        """Attach validation rules (their JSON form) to a dataset; ``None`` removes them."""
        name = validate_dataset_name(name)
        text = _json_or_none("rules", rules)

        def write(conn: Connection) -> Dataset:
            self._dataset_row(conn, name)
            conn.execute(
                update(datasets)
                .where(datasets.c.name == name)
                .values(rules=text, last_update_time=now_ms())
            )
            self._event(conn, "dataset.rules_set", "dataset", name, {"removed": text is None})
            return _to_dataset(self._dataset_row(conn, name))

        return self._db.write(write)

    # ------------------------------------------------------------------------ versions

    def create_dataset_version(
        self,
        name: str,
        *,
        digest: str,
        kind: DatasetKind | str,
        num_files: int,
        size: int,
        num_rows: int | None = None,
        schema: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
        source: str = "",
        description: str = "",
    ) -> tuple[DatasetVersionInfo, bool]:
        """Record a new version of ``name`` (created if missing) unless its latest version
        already has this ``digest``. Returns the version and whether it is new."""
        name = validate_dataset_name(name)
        row = {
            "digest": validate_digest(digest),
            "kind": self._kind(kind),
            "num_files": _count("num_files", num_files),
            "size": _count("size", size),
            "num_rows": _count("num_rows", num_rows, allow_none=True),
            "schema": _json_or_none("schema", schema),
            "profile": _json_or_none("profile", profile),
            "source": validate_string_value("dataset", "source", source or ""),
            "description": validate_string_value("dataset", "description", description or ""),
        }

        def write(conn: Connection) -> tuple[DatasetVersionInfo, bool]:
            dataset = self._get_or_create(conn, name)
            latest = self._version_row(conn, dataset.dataset_id, None)
            if latest is not None and latest.digest == row["digest"]:
                return _to_version(name, latest), False
            version = 1 if latest is None else latest.version + 1
            now = now_ms()
            conn.execute(
                insert(dataset_versions).values(
                    dataset_id=dataset.dataset_id, version=version, creation_time=now, **row
                )
            )
            conn.execute(
                update(datasets)
                .where(datasets.c.dataset_id == dataset.dataset_id)
                .values(last_update_time=now)
            )
            self._event(
                conn,
                "dataset.version_created",
                "dataset",
                name,
                {"version": version, "digest": row["digest"]},
            )
            created = self._version_row(conn, dataset.dataset_id, version)
            assert created is not None  # inserted just above, in this transaction
            return _to_version(name, created), True

        return self._db.write(write)

    @staticmethod
    def _kind(kind: DatasetKind | str) -> str:
        try:
            return DatasetKind(kind).value
        except ValueError:
            raise InvalidArgumentError(
                f"The dataset kind must be one of {[k.value for k in DatasetKind]}. "
                f"Got {kind!r} instead.",
                field="kind",
            ) from None

    def _get_or_create(self, conn: Connection, name: str) -> Row:
        """The dataset's row, locked against concurrent version inserts (PostgreSQL)."""
        try:
            return self._dataset_row(conn, name, lock=True)
        except DatasetNotFoundError:
            pass
        now = now_ms()
        stmt = self._insert(datasets).on_conflict_do_nothing(index_elements=["name"])
        conn.execute(
            stmt.values(
                name=name, description="", rules=None, creation_time=now, last_update_time=now
            )
        )
        self._event(conn, "dataset.created", "dataset", name)
        return self._dataset_row(conn, name, lock=True)

    def _version_row(self, conn: Connection, dataset_id: int, version: int | None) -> Row | None:
        query = select(dataset_versions).where(dataset_versions.c.dataset_id == dataset_id)
        if version is None:
            query = query.order_by(dataset_versions.c.version.desc()).limit(1)
        else:
            query = query.where(dataset_versions.c.version == version)
        return conn.execute(query).first()

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersionInfo:
        """One version of ``name``; ``None`` means the latest."""
        name = validate_dataset_name(name)
        if version is not None:
            version = validate_dataset_version(version)
        with self._db.read() as conn:
            dataset = self._dataset_row(conn, name)
            row = self._version_row(conn, dataset.dataset_id, version)
        if row is None:
            if version is None:
                message = f"Dataset {name!r} has no versions yet."
            elif dataset.latest_version is None:
                message = f"Dataset {name!r} has no version {version}: it has no versions yet."
            else:
                message = (
                    f"Dataset {name!r} has no version {version}: "
                    f"its latest is v{dataset.latest_version}."
                )
            raise DatasetNotFoundError(message, name=name, version=version)
        return _to_version(name, row)

    def list_dataset_versions(self, name: str) -> list[DatasetVersionInfo]:
        """Every version of ``name``, newest first."""
        name = validate_dataset_name(name)
        with self._db.read() as conn:
            dataset = self._dataset_row(conn, name)
            rows = conn.execute(
                select(dataset_versions)
                .where(dataset_versions.c.dataset_id == dataset.dataset_id)
                .order_by(dataset_versions.c.version.desc())
            )
            return [_to_version(name, row) for row in rows]

    def find_dataset_versions(self, digest: str) -> list[DatasetVersionInfo]:
        """Every version, of any dataset, whose manifest has this digest."""
        digest = validate_digest(digest)
        query = (
            select(dataset_versions, datasets.c.name)
            .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
            .where(dataset_versions.c.digest == digest)
            .order_by(datasets.c.name, dataset_versions.c.version)
        )
        with self._db.read() as conn:
            return [_to_version(row.name, row) for row in conn.execute(query)]

    # ------------------------------------------------------------------------ lineage

    def log_dataset_inputs(
        self, run_id: str, inputs: Sequence[tuple[str, int, str]]
    ) -> list[DatasetInput]:
        """Record that the run used each ``(name, version, context)``; repeats are ignored."""
        run_id = validate_run_id(run_id)
        clean = [
            (validate_dataset_name(n), validate_dataset_version(v), validate_input_context(c))
            for n, v, c in inputs
        ]

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            rows = []
            now = now_ms()
            for name, version, context in clean:
                dataset = self._dataset_row(conn, name)
                if self._version_row(conn, dataset.dataset_id, version) is None:
                    raise DatasetNotFoundError(
                        f"Dataset {name!r} has no version {version}.", name=name, version=version
                    )
                rows.append(
                    {
                        "run_id": run_id,
                        "dataset_id": dataset.dataset_id,
                        "version": version,
                        "context": context,
                        "time": now,
                    }
                )
            if rows:
                self._insert_ignore(
                    conn, dataset_inputs, rows, ["run_id", "dataset_id", "version", "context"]
                )

        self._db.write(write)
        return self.list_run_inputs(run_id)

    def _inputs_query(self) -> Any:
        return select(
            dataset_inputs.c.run_id,
            datasets.c.name,
            dataset_inputs.c.version,
            dataset_inputs.c.context,
            dataset_inputs.c.time,
        ).join(datasets, datasets.c.dataset_id == dataset_inputs.c.dataset_id)

    def list_run_inputs(self, run_id: str) -> list[DatasetInput]:
        """The dataset versions a run used."""
        run_id = validate_run_id(run_id)
        query = (
            self._inputs_query()
            .where(dataset_inputs.c.run_id == run_id)
            .order_by(datasets.c.name, dataset_inputs.c.version, dataset_inputs.c.context)
        )
        with self._db.read() as conn:
            self._require_run(conn, run_id)
            return [DatasetInput(*row) for row in conn.execute(query)]

    def list_dataset_usages(self, name: str, version: int | None = None) -> list[DatasetInput]:
        """The runs that used ``name`` (one version, or any), oldest first."""
        name = validate_dataset_name(name)
        query = self._inputs_query().where(datasets.c.name == name)
        if version is not None:
            query = query.where(dataset_inputs.c.version == validate_dataset_version(version))
        query = query.order_by(dataset_inputs.c.time, dataset_inputs.c.run_id)
        with self._db.read() as conn:
            self._dataset_row(conn, name)
            return [DatasetInput(*row) for row in conn.execute(query)]
