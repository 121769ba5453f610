"""The model registry in the SQL store: registered models, versions, tags and aliases.

Every change that moves an alias, creates, archives or deletes a version is written in one
transaction together with its event (who, when, why), and the registered model's row is
locked first on PostgreSQL (SQLite serialises writers already), so concurrent alias moves
from many processes never interleave and the recorded "previous version" is always right.
An alias can only point at a ``READY`` version of its own model: archiving or deleting a
version that holds aliases is refused unless ``force=True``, which removes them (and says so
in the events), so no alias ever dangles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.entities import ModelVersion, ModelVersionStatus, RegisteredModel, RegistryEvent
from loopml.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    ModelNotFoundError,
)
from loopml.storage.blobs import validate_digest
from loopml.storage.sql.base import now_ms
from loopml.storage.sql.runs import RunsMixin
from loopml.storage.sql.schema import (
    dataset_inputs,
    datasets,
    events,
    model_aliases,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from loopml.storage.validation import (
    validate_alias,
    validate_dataset_name,
    validate_dataset_version,
    validate_key,
    validate_model_name,
    validate_model_version,
    validate_run_id,
    validate_string_map,
    validate_string_value,
)

__all__ = ["RegistryMixin"]

_SUBJECT = "registered_model"


def _actor(actor: Any) -> str | None:
    if actor is None:
        return None
    return validate_string_value("event", "actor", actor)[:256]


def _reason(reason: Any) -> str:
    return validate_string_value("event", "reason", reason or "")


class RegistryMixin(RunsMixin):
    # ---------------------------------------------------------------- registered models

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> Row:
        query = select(registered_models).where(registered_models.c.name == name)
        if lock and self._db.dialect != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise ModelNotFoundError(f"No registered model named {name!r}.", name=name)
        return row

    def _load_model(self, conn: Connection, row: Row) -> RegisteredModel:
        tags = dict(
            conn.execute(
                select(registered_model_tags.c.key, registered_model_tags.c.value).where(
                    registered_model_tags.c.model_id == row.model_id
                )
            ).all()
        )
        aliases = dict(
            conn.execute(
                select(model_aliases.c.alias, model_aliases.c.version)
                .where(model_aliases.c.model_id == row.model_id)
                .order_by(model_aliases.c.alias)
            ).all()
        )
        latest = conn.execute(
            select(func.max(model_versions.c.version)).where(
                model_versions.c.model_id == row.model_id
            )
        ).scalar()
        return RegisteredModel(
            name=row.name,
            description=row.description,
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            latest_version=latest,
            tags=tags,
            aliases=aliases,
        )

    def create_registered_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        name = validate_model_name(name)
        description = validate_string_value("model", "description", description or "")
        clean_tags = validate_string_map("tag", tags)

        def write(conn: Connection) -> RegisteredModel:
            row = self._insert_model(conn, name, description, clean_tags)
            return self._load_model(conn, row)

        try:
            return self._db.write(write)
        except SqlIntegrityError:
            raise AlreadyExistsError(
                f"A registered model named {name!r} already exists.", name=name
            ) from None

    def _insert_model(
        self, conn: Connection, name: str, description: str, tags: dict[str, str]
    ) -> Row:
        now = now_ms()
        conn.execute(
            insert(registered_models).values(
                name=name,
                description=description,
                last_version=0,
                creation_time=now,
                last_update_time=now,
            )
        )
        row = self._model_row(conn, name)
        if tags:
            conn.execute(
                insert(registered_model_tags),
                [{"model_id": row.model_id, "key": k, "value": v} for k, v in tags.items()],
            )
        self._event(conn, "model.created", _SUBJECT, name)
        return row

    def get_registered_model(self, name: str) -> RegisteredModel:
        name = validate_model_name(name)
        with self._db.read() as conn:
            return self._load_model(conn, self._model_row(conn, name))

    def list_registered_models(self) -> list[RegisteredModel]:
        with self._db.read() as conn:
            rows = conn.execute(select(registered_models).order_by(registered_models.c.name))
            return [self._load_model(conn, row) for row in rows.all()]

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        name = validate_model_name(name)
        description = validate_string_value("model", "description", description or "")

        def write(conn: Connection) -> RegisteredModel:
            row = self._model_row(conn, name, lock=True)
            conn.execute(
                update(registered_models)
                .where(registered_models.c.model_id == row.model_id)
                .values(description=description, last_update_time=now_ms())
            )
            return self._load_model(conn, self._model_row(conn, name))

        return self._db.write(write)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        name = validate_model_name(name)
        clean = validate_string_map("tag", {key: value})

        def write(conn: Connection) -> None:
            row = self._model_row(conn, name)
            rows = [{"model_id": row.model_id, "key": k, "value": v} for k, v in clean.items()]
            self._upsert(conn, registered_model_tags, rows, ["model_id", "key"], ["value"])

        self._db.write(write)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        name = validate_model_name(name)
        key = validate_key("tag", key)

        def write(conn: Connection) -> None:
            row = self._model_row(conn, name)
            conn.execute(
                delete(registered_model_tags).where(
                    registered_model_tags.c.model_id == row.model_id,
                    registered_model_tags.c.key == key,
                )
            )

        self._db.write(write)

    def delete_registered_model(
        self, name: str, *, actor: str | None = None, reason: str = ""
    ) -> None:
        """Delete the model with its versions, tags and aliases (the events remain)."""
        name = validate_model_name(name)
        clean_actor, clean_reason = _actor(actor), _reason(reason)

        def write(conn: Connection) -> None:
            row = self._model_row(conn, name, lock=True)
            model_id = row.model_id
            conn.execute(delete(model_aliases).where(model_aliases.c.model_id == model_id))
            conn.execute(
                delete(model_version_tags).where(model_version_tags.c.model_id == model_id)
            )
            conn.execute(delete(model_versions).where(model_versions.c.model_id == model_id))
            conn.execute(
                delete(registered_model_tags).where(registered_model_tags.c.model_id == model_id)
            )
            conn.execute(delete(registered_models).where(registered_models.c.model_id == model_id))
            self._event(
                conn, "model.deleted", _SUBJECT, name, {"reason": clean_reason}, clean_actor
            )

        self._db.write(write)

    # ---------------------------------------------------------------- versions

    def _model_version_row(self, conn: Connection, model: Row, version: int) -> Row:
        row = conn.execute(
            select(model_versions).where(
                model_versions.c.model_id == model.model_id, model_versions.c.version == version
            )
        ).first()
        if row is None:
            raise ModelNotFoundError(
                f"Registered model {model.name!r} has no version {version}.",
                name=model.name,
                version=version,
            )
        return row

    def _load_version(self, conn: Connection, name: str, row: Row) -> ModelVersion:
        tags = dict(
            conn.execute(
                select(model_version_tags.c.key, model_version_tags.c.value).where(
                    model_version_tags.c.model_id == row.model_id,
                    model_version_tags.c.version == row.version,
                )
            ).all()
        )
        aliases = tuple(
            conn.execute(
                select(model_aliases.c.alias)
                .where(
                    model_aliases.c.model_id == row.model_id,
                    model_aliases.c.version == row.version,
                )
                .order_by(model_aliases.c.alias)
            ).scalars()
        )
        return ModelVersion(
            name=name,
            version=row.version,
            package_digest=row.package_digest,
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            status=ModelVersionStatus(row.status),
            run_id=row.run_id,
            source=row.source,
            description=row.description,
            flavor=row.flavor,
            tags=tags,
            aliases=aliases,
        )

    def create_model_version(
        self,
        name: str,
        *,
        package_digest: str,
        run_id: str | None = None,
        source: str = "",
        description: str = "",
        flavor: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Register a model package as the next version of ``name`` (created if missing)."""
        name = validate_model_name(name)
        values = {
            "package_digest": validate_digest(package_digest),
            "run_id": validate_run_id(run_id) if run_id is not None else None,
            "source": validate_string_value("model version", "source", source or ""),
            "description": validate_string_value("model version", "description", description or ""),
            "flavor": validate_string_value("model version", "flavor", flavor or "")[:64],
            "status": ModelVersionStatus.READY.value,
        }
        clean_tags = validate_string_map("tag", tags)
        clean_actor = _actor(actor)

        def write(conn: Connection) -> ModelVersion:
            if values["run_id"] is not None:
                self._require_run(conn, values["run_id"])
            model = self._model_or_new(conn, name, clean_actor)
            version = model.last_version + 1
            now = now_ms()
            conn.execute(
                insert(model_versions).values(
                    model_id=model.model_id,
                    version=version,
                    creation_time=now,
                    last_update_time=now,
                    **values,
                )
            )
            if clean_tags:
                conn.execute(
                    insert(model_version_tags),
                    [
                        {"model_id": model.model_id, "version": version, "key": k, "value": v}
                        for k, v in clean_tags.items()
                    ],
                )
            conn.execute(
                update(registered_models)
                .where(registered_models.c.model_id == model.model_id)
                .values(last_version=version, last_update_time=now)
            )
            payload = {"version": version, "run_id": values["run_id"], "source": values["source"]}
            self._event(conn, "model.version_created", _SUBJECT, name, payload, clean_actor)
            return self._load_version(conn, name, self._model_version_row(conn, model, version))

        return self._db.write(write)

    def _model_or_new(self, conn: Connection, name: str, actor: str | None) -> Row:
        """The model's row, locked (PostgreSQL); created first if it does not exist."""
        try:
            return self._model_row(conn, name, lock=True)
        except ModelNotFoundError:
            pass
        now = now_ms()
        stmt = self._insert(registered_models).on_conflict_do_nothing(index_elements=["name"])
        result = conn.execute(
            stmt.values(
                name=name, description="", last_version=0, creation_time=now, last_update_time=now
            )
        )
        if result.rowcount:
            self._event(conn, "model.created", _SUBJECT, name, actor=actor)
        return self._model_row(conn, name, lock=True)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        name = validate_model_name(name)
        version = validate_model_version(version)
        with self._db.read() as conn:
            model = self._model_row(conn, name)
            return self._load_version(conn, name, self._model_version_row(conn, model, version))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, newest first."""
        name = validate_model_name(name)
        with self._db.read() as conn:
            model = self._model_row(conn, name)
            rows = conn.execute(
                select(model_versions)
                .where(model_versions.c.model_id == model.model_id)
                .order_by(model_versions.c.version.desc())
            ).all()
            return [self._load_version(conn, name, row) for row in rows]

    def update_model_version(self, name: str, version: int, *, description: str) -> ModelVersion:
        name = validate_model_name(name)
        version = validate_model_version(version)
        description = validate_string_value("model version", "description", description or "")

        def write(conn: Connection) -> ModelVersion:
            model = self._model_row(conn, name, lock=True)
            self._model_version_row(conn, model, version)
            self._set_version(conn, model, version, description=description)
            return self._load_version(conn, name, self._model_version_row(conn, model, version))

        return self._db.write(write)

    def _set_version(self, conn: Connection, model: Row, version: int, **values: Any) -> None:
        conn.execute(
            update(model_versions)
            .where(model_versions.c.model_id == model.model_id, model_versions.c.version == version)
            .values(last_update_time=now_ms(), **values)
        )

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None:
        name = validate_model_name(name)
        version = validate_model_version(version)
        clean = validate_string_map("tag", {key: value})

        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            self._model_version_row(conn, model, version)
            rows = [
                {"model_id": model.model_id, "version": version, "key": k, "value": v}
                for k, v in clean.items()
            ]
            self._upsert(conn, model_version_tags, rows, ["model_id", "version", "key"], ["value"])

        self._db.write(write)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        name = validate_model_name(name)
        version = validate_model_version(version)
        key = validate_key("tag", key)

        def write(conn: Connection) -> None:
            model = self._model_row(conn, name)
            self._model_version_row(conn, model, version)
            conn.execute(
                delete(model_version_tags).where(
                    model_version_tags.c.model_id == model.model_id,
                    model_version_tags.c.version == version,
                    model_version_tags.c.key == key,
                )
            )

        self._db.write(write)

    def _release_aliases(
        self,
        conn: Connection,
        model: Row,
        version: int,
        *,
        force: bool,
        doing: str,
        actor: str | None,
        reason: str,
    ) -> None:
        held = list(
            conn.execute(
                select(model_aliases.c.alias).where(
                    model_aliases.c.model_id == model.model_id,
                    model_aliases.c.version == version,
                )
            ).scalars()
        )
        if not held:
            return
        if not force:
            raise ConflictError(
                f"Version {version} of {model.name!r} holds the aliases {sorted(held)}: move "
                f"them first, or force it to remove them while {doing} it.",
                name=model.name,
                version=version,
                aliases=sorted(held),
            )
        for alias in sorted(held):
            conn.execute(
                delete(model_aliases).where(
                    model_aliases.c.model_id == model.model_id, model_aliases.c.alias == alias
                )
            )
            payload = {"alias": alias, "previous": version, "reason": reason, "why": doing}
            self._event(conn, "model.alias_deleted", _SUBJECT, model.name, payload, actor)

    def set_model_version_status(
        self,
        name: str,
        version: int,
        status: ModelVersionStatus | str,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str = "",
    ) -> ModelVersion:
        """Archive (``ARCHIVED``) or restore (``READY``) a version; see the module docs."""
        name = validate_model_name(name)
        version = validate_model_version(version)
        try:
            new_status = ModelVersionStatus(status)
        except ValueError:
            raise InvalidArgumentError(
                f"The status must be one of {[s.value for s in ModelVersionStatus]}. "
                f"Got {status!r} instead.",
                field="status",
            ) from None
        clean_actor, clean_reason = _actor(actor), _reason(reason)

        def write(conn: Connection) -> ModelVersion:
            model = self._model_row(conn, name, lock=True)
            row = self._model_version_row(conn, model, version)
            if new_status is ModelVersionStatus.ARCHIVED:
                self._release_aliases(
                    conn,
                    model,
                    version,
                    force=force,
                    doing="archiving",
                    actor=clean_actor,
                    reason=clean_reason,
                )
            if row.status != new_status.value:
                self._set_version(conn, model, version, status=new_status.value)
                kind = "archived" if new_status is ModelVersionStatus.ARCHIVED else "restored"
                payload = {"version": version, "reason": clean_reason}
                self._event(conn, f"model.version_{kind}", _SUBJECT, name, payload, clean_actor)
            return self._load_version(conn, name, self._model_version_row(conn, model, version))

        return self._db.write(write)

    def delete_model_version(
        self,
        name: str,
        version: int,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str = "",
    ) -> None:
        """Delete a version (its number is never reused); refused while it holds aliases
        unless ``force``."""
        name = validate_model_name(name)
        version = validate_model_version(version)
        clean_actor, clean_reason = _actor(actor), _reason(reason)

        def write(conn: Connection) -> None:
            model = self._model_row(conn, name, lock=True)
            self._model_version_row(conn, model, version)
            self._release_aliases(
                conn,
                model,
                version,
                force=force,
                doing="deleting",
                actor=clean_actor,
                reason=clean_reason,
            )
            conn.execute(
                delete(model_version_tags).where(
                    model_version_tags.c.model_id == model.model_id,
                    model_version_tags.c.version == version,
                )
            )
            conn.execute(
                delete(model_versions).where(
                    model_versions.c.model_id == model.model_id,
                    model_versions.c.version == version,
                )
            )
            payload = {"version": version, "reason": clean_reason}
            self._event(conn, "model.version_deleted", _SUBJECT, name, payload, clean_actor)

        self._db.write(write)

    # ---------------------------------------------------------------- aliases

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str = "",
    ) -> int | None:
        """Point ``alias`` at ``version`` (atomically) and return the version it pointed at
        before (``None`` if it is new). The move is recorded as an event."""
        name = validate_model_name(name)
        alias = validate_alias(alias)
        version = validate_model_version(version)
        clean_actor, clean_reason = _actor(actor), _reason(reason)

        def write(conn: Connection) -> int | None:
            model = self._model_row(conn, name, lock=True)
            row = self._model_version_row(conn, model, version)
            if row.status != ModelVersionStatus.READY.value:
                raise ConflictError(
                    f"Version {version} of {name!r} is {row.status.lower()}: an alias can only "
                    "point at a READY version (restore it first).",
                    name=name,
                    version=version,
                )
            previous = conn.execute(
                select(model_aliases.c.version).where(
                    model_aliases.c.model_id == model.model_id, model_aliases.c.alias == alias
                )
            ).scalar()
            self._upsert(
                conn,
                model_aliases,
                {
                    "model_id": model.model_id,
                    "alias": alias,
                    "version": version,
                    "update_time": now_ms(),
                },
                ["model_id", "alias"],
                ["version", "update_time"],
            )
            payload = {
                "alias": alias,
                "version": version,
                "previous": previous,
                "reason": clean_reason,
            }
            self._event(conn, "model.alias_set", _SUBJECT, name, payload, clean_actor)
            return previous

        return self._db.write(write)

    def delete_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str = ""
    ) -> int:
        """Remove ``alias``; returns the version it pointed at."""
        name = validate_model_name(name)
        alias = validate_alias(alias)
        clean_actor, clean_reason = _actor(actor), _reason(reason)

        def write(conn: Connection) -> int:
            model = self._model_row(conn, name, lock=True)
            previous = self._alias_version(conn, model, alias)
            conn.execute(
                delete(model_aliases).where(
                    model_aliases.c.model_id == model.model_id, model_aliases.c.alias == alias
                )
            )
            payload = {"alias": alias, "previous": previous, "reason": clean_reason}
            self._event(conn, "model.alias_deleted", _SUBJECT, name, payload, clean_actor)
            return previous

        return self._db.write(write)

    def _alias_version(self, conn: Connection, model: Row, alias: str) -> int:
        version = conn.execute(
            select(model_aliases.c.version).where(
                model_aliases.c.model_id == model.model_id, model_aliases.c.alias == alias
            )
        ).scalar()
        if version is None:
            raise ModelNotFoundError(
                f"Registered model {model.name!r} has no alias {alias!r}.",
                name=model.name,
                alias=alias,
            )
        return int(version)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        name = validate_model_name(name)
        alias = validate_alias(alias)
        with self._db.read() as conn:
            model = self._model_row(conn, name)
            version = self._alias_version(conn, model, alias)
            return self._load_version(conn, name, self._model_version_row(conn, model, version))

    # ---------------------------------------------------------------- history and lineage

    def list_registry_events(self, name: str) -> list[RegistryEvent]:
        """Everything that happened to the model ``name``, oldest first (kept after a
        delete, so a re-created name shows its whole history)."""
        name = validate_model_name(name)
        query = (
            select(events.c.time, events.c.kind, events.c.actor, events.c.payload)
            .where(events.c.subject_type == _SUBJECT, events.c.subject_id == name)
            .order_by(events.c.event_id)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return [
            RegistryEvent(row.time, row.kind, name, row.actor, json.loads(row.payload))
            for row in rows
        ]

    def list_dataset_models(self, name: str, version: int | None = None) -> list[ModelVersion]:
        """The model versions whose run used dataset ``name`` (one version, or any)."""
        name = validate_dataset_name(name)
        runs_used = (
            select(dataset_inputs.c.run_id)
            .join(datasets, datasets.c.dataset_id == dataset_inputs.c.dataset_id)
            .where(datasets.c.name == name)
        )
        if version is not None:
            runs_used = runs_used.where(
                dataset_inputs.c.version == validate_dataset_version(version)
            )
        query = (
            select(model_versions, registered_models.c.name)
            .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
            .where(model_versions.c.run_id.in_(runs_used))
            .order_by(registered_models.c.name, model_versions.c.version)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
            return [self._load_version(conn, row.name, row) for row in rows]
