"""Experiments in the SQL store."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.entities import Experiment, LifecycleStage
from loopml.errors import AlreadyExistsError, ExperimentNotFoundError, InvalidArgumentError
from loopml.storage.sql.base import SqlBase, now_ms
from loopml.storage.sql.schema import experiment_tags, experiments
from loopml.storage.validation import (
    validate_experiment_id,
    validate_experiment_name,
    validate_key,
    validate_string_map,
    validate_string_value,
)

__all__ = ["ExperimentsMixin", "parse_experiment_id"]


def parse_experiment_id(experiment_id: object) -> int:
    """Experiment ids are decimal strings (ints are accepted too); the key as an int."""
    return int(validate_experiment_id(experiment_id))


def _to_experiment(row: Row, tags: dict[str, str]) -> Experiment:
    return Experiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        description=row.description,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
        tags=tags,
    )


class ExperimentsMixin(SqlBase):
    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        name = validate_experiment_name(name)
        description = validate_string_value("experiment", "description", description or "")
        clean_tags = validate_string_map("tag", tags)

        def write(conn: Connection) -> int:
            now = now_ms()
            result = conn.execute(
                insert(experiments).values(
                    name=name,
                    description=description,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    creation_time=now,
                    last_update_time=now,
                )
            )
            experiment_id = result.inserted_primary_key[0]  # type: ignore[index]
            if clean_tags:
                conn.execute(
                    insert(experiment_tags),
                    [
                        {"experiment_id": experiment_id, "key": k, "value": v}
                        for k, v in clean_tags.items()
                    ],
                )
            self._event(
                conn, "experiment.created", "experiment", str(experiment_id), {"name": name}
            )
            return int(experiment_id)

        try:
            experiment_id = self._db.write(write)
        except SqlIntegrityError:
            raise AlreadyExistsError(
                f"An experiment named {name!r} already exists (names are unique, archived "
                "experiments included; restore it or pick another name).",
                name=name,
            ) from None
        return self.get_experiment(str(experiment_id))

    def _load_experiments(self, conn: Connection, rows: list[Row]) -> list[Experiment]:
        ids = [row.experiment_id for row in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            query = select(experiment_tags).where(experiment_tags.c.experiment_id.in_(ids))
            for tag in conn.execute(query):
                tags[tag.experiment_id][tag.key] = tag.value
        return [_to_experiment(row, tags[row.experiment_id]) for row in rows]

    def get_experiment(self, experiment_id: str) -> Experiment:
        key = parse_experiment_id(experiment_id)
        with self._db.read() as conn:
            rows = list(conn.execute(select(experiments).where(experiments.c.experiment_id == key)))
            if not rows:
                raise ExperimentNotFoundError(
                    f"No experiment with id {experiment_id!r}.", experiment_id=str(experiment_id)
                )
            return self._load_experiments(conn, rows)[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if not isinstance(name, str):
            raise InvalidArgumentError("The experiment name must be a string.", field="name")
        with self._db.read() as conn:
            rows = list(conn.execute(select(experiments).where(experiments.c.name == name)))
            return self._load_experiments(conn, rows)[0] if rows else None

    def list_experiments(self, *, include_archived: bool = False) -> list[Experiment]:
        query = select(experiments).order_by(experiments.c.experiment_id)
        if not include_archived:
            query = query.where(experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
        with self._db.read() as conn:
            return self._load_experiments(conn, list(conn.execute(query)))

    def update_experiment(
        self,
        experiment_id: str,
        *,
        description: str | None = None,
        lifecycle_stage: LifecycleStage | None = None,
    ) -> Experiment:
        key = parse_experiment_id(experiment_id)
        values: dict[str, object] = {"last_update_time": now_ms()}
        if description is not None:
            values["description"] = validate_string_value("experiment", "description", description)
        if lifecycle_stage is not None:
            try:
                values["lifecycle_stage"] = LifecycleStage(lifecycle_stage).value
            except ValueError:
                raise InvalidArgumentError(
                    f"The lifecycle_stage must be 'active' or 'archived'. Got {lifecycle_stage!r}.",
                    field="lifecycle_stage",
                ) from None

        def write(conn: Connection) -> None:
            result = conn.execute(
                update(experiments).where(experiments.c.experiment_id == key).values(**values)
            )
            if result.rowcount == 0:
                raise ExperimentNotFoundError(
                    f"No experiment with id {experiment_id!r}.", experiment_id=str(experiment_id)
                )
            if "lifecycle_stage" in values:
                archived = values["lifecycle_stage"] == LifecycleStage.ARCHIVED.value
                kind = "experiment.archived" if archived else "experiment.restored"
                self._event(conn, kind, "experiment", str(key))

        self._db.write(write)
        return self.get_experiment(str(key))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        exp_key = parse_experiment_id(experiment_id)
        tag_key = validate_key("tag", key)
        tag_value = validate_string_value("tag", key, value)

        def write(conn: Connection) -> None:
            found = conn.execute(
                select(experiments.c.experiment_id).where(experiments.c.experiment_id == exp_key)
            ).first()
            if found is None:
                raise ExperimentNotFoundError(
                    f"No experiment with id {experiment_id!r}.", experiment_id=str(experiment_id)
                )
            self._upsert(
                conn,
                experiment_tags,
                {"experiment_id": exp_key, "key": tag_key, "value": tag_value},
                ["experiment_id", "key"],
                ["value"],
            )

        self._db.write(write)
