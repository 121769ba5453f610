"""The remote store: datasets, versions and lineage (see :mod:`loopml.server.routes.datasets`).

Names, versions and run ids that go into a URL are checked here first with the store's own
validators, so a bad one raises the same :class:`~loopml.errors.InvalidArgumentError` (same
``field``) as the SQL store instead of reaching a wrong route. So are the JSON documents
(rules, schema, profile), which JSON cannot carry if they hold NaN. Everything else is
validated by the server's store, and its error comes back as the same class.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from loopml.entities import Dataset, DatasetInput, DatasetKind, DatasetVersionInfo
from loopml.errors import InvalidArgumentError
from loopml.storage.blobs import validate_digest
from loopml.storage.rest.base import RestBase
from loopml.storage.rest.wire import from_wire, to_wire
from loopml.storage.validation import (
    validate_dataset_name,
    validate_dataset_version,
    validate_run_id,
)

__all__ = ["RestDatasetsMixin"]


def _dataset(name: str) -> str:
    return "/datasets/" + quote(validate_dataset_name(name), safe="")


def _inputs(run_id: str) -> str:
    return "/runs/" + quote(validate_run_id(run_id), safe="") + "/inputs"


def _document(field: str, value: Mapping[str, Any] | None) -> Any:
    """A rules, schema or profile mapping, refused as the store would if JSON cannot hold it
    (NaN, infinities, objects); anything that is not a mapping is left for the store."""
    if value is None or not isinstance(value, Mapping):
        return value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"The {field} is not valid JSON: {exc}", field=field) from exc
    return value


class RestDatasetsMixin(RestBase):
    """Implements :class:`~loopml.storage.protocols.DatasetStore` over HTTP (its ``blobs``
    come from :class:`~loopml.storage.rest.artifacts.RestArtifactsMixin`)."""

    # ---------------------------------------------------------------- datasets

    def create_dataset(self, name: str, description: str = "") -> Dataset:
        body = {"name": name, "description": description}
        return from_wire(Dataset, self._call("POST", "/datasets", json=body))

    def get_dataset(self, name: str) -> Dataset:
        return from_wire(Dataset, self._call("GET", _dataset(name)))

    def list_datasets(self) -> list[Dataset]:
        return from_wire(list[Dataset], self._call("GET", "/datasets"))

    def set_dataset_rules(self, name: str, rules: Mapping[str, Any] | None) -> Dataset:
        body = {"rules": _document("rules", rules)}
        return from_wire(Dataset, self._call("PUT", f"{_dataset(name)}/rules", json=body))

    # ---------------------------------------------------------------- versions

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
        body = {
            "digest": digest,
            "kind": to_wire(kind),
            "num_files": num_files,
            "size": size,
            "num_rows": num_rows,
            "schema": _document("schema", schema),
            "profile": _document("profile", profile),
            "source": source,
            "description": description,
        }
        answer = self._call("POST", f"{_dataset(name)}/versions", json=body)
        info = from_wire(DatasetVersionInfo, answer["version"], where="version")
        return info, from_wire(bool, answer["created"], where="created")

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersionInfo:
        number = "latest" if version is None else str(validate_dataset_version(version))
        answer = self._call("GET", f"{_dataset(name)}/versions/{number}")
        return from_wire(DatasetVersionInfo, answer)

    def list_dataset_versions(self, name: str) -> list[DatasetVersionInfo]:
        answer = self._call("GET", f"{_dataset(name)}/versions")
        return from_wire(list[DatasetVersionInfo], answer)

    def find_dataset_versions(self, digest: str) -> list[DatasetVersionInfo]:
        params = {"digest": validate_digest(digest)}
        answer = self._call("GET", "/dataset-versions", params=params)
        return from_wire(list[DatasetVersionInfo], answer)

    # ---------------------------------------------------------------- lineage

    def log_dataset_inputs(
        self, run_id: str, inputs: Sequence[tuple[str, int, str]]
    ) -> list[DatasetInput]:
        """Record the versions a run used; repeats are ignored, so a retry is safe."""
        body = {"inputs": [[name, version, context] for name, version, context in inputs]}
        answer = self._call("POST", _inputs(run_id), json=body, idempotent=True)
        return from_wire(list[DatasetInput], answer)

    def list_run_inputs(self, run_id: str) -> list[DatasetInput]:
        return from_wire(list[DatasetInput], self._call("GET", _inputs(run_id)))

    def list_dataset_usages(self, name: str, version: int | None = None) -> list[DatasetInput]:
        params = {} if version is None else {"version": validate_dataset_version(version)}
        answer = self._call("GET", f"{_dataset(name)}/usages", params=params)
        return from_wire(list[DatasetInput], answer)
