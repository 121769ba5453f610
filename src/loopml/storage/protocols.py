"""The store interface, one small protocol per resource.

There are two implementations: the direct one (:mod:`loopml.storage.sql`, SQL plus a blob store
in-process) and, with the tracking server, an HTTP client of the same protocols. Clients only
ever see these protocols, so user code does not change between the two.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from loopml.entities import (
    ArtifactInfo,
    Dataset,
    DatasetInput,
    DatasetKind,
    DatasetVersionInfo,
    Experiment,
    LifecycleStage,
    Metric,
    MetricRow,
    PagedList,
    Run,
    RunInfo,
    RunStatus,
    SourceInfo,
)

__all__ = [
    "ArtifactStore",
    "DatasetStore",
    "ExperimentStore",
    "MetricStore",
    "RunStore",
    "TrackingStore",
]


@runtime_checkable
class ExperimentStore(Protocol):
    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment: ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    def list_experiments(self, *, include_archived: bool = False) -> list[Experiment]: ...

    def update_experiment(
        self,
        experiment_id: str,
        *,
        description: str | None = None,
        lifecycle_stage: LifecycleStage | None = None,
    ) -> Experiment: ...

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...


@runtime_checkable
class RunStore(Protocol):
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        source: SourceInfo | None = None,
        heartbeat: bool = False,
    ) -> RunInfo: ...

    def get_run(self, run_id: str) -> Run: ...

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        error: str | None = None,
        heartbeat: bool = False,
    ) -> RunInfo: ...

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None: ...

    def delete_tag(self, run_id: str, key: str) -> None: ...

    def heartbeat(self, run_ids: Sequence[str]) -> None: ...

    def mark_stale_runs_killed(self, timeout_seconds: float) -> list[str]: ...

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[Run]: ...


@runtime_checkable
class MetricStore(Protocol):
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None: ...

    def append_metric_rows(self, rows: Sequence[MetricRow]) -> None:
        """Write points the caller has already validated (the client's buffer), of one or
        more runs, in one transaction. Raises RunNotFoundError, writing nothing, when a run
        does not exist."""
        ...

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...


@runtime_checkable
class ArtifactStore(Protocol):
    def put_artifact(
        self, run_id: str, path: str, local_file: str | os.PathLike[str]
    ) -> ArtifactInfo: ...

    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]: ...

    def get_artifact(
        self, run_id: str, path: str, dest: str | os.PathLike[str]
    ) -> ArtifactInfo: ...


if TYPE_CHECKING:
    from loopml.storage.blobs import BlobStore


@runtime_checkable
class DatasetStore(Protocol):
    """Datasets, their versions and lineage. The files of a version are blobs; the store
    records the manifest digest the data layer computed."""

    @property
    def blobs(self) -> BlobStore: ...

    def create_dataset(self, name: str, description: str = "") -> Dataset: ...

    def get_dataset(self, name: str) -> Dataset: ...

    def list_datasets(self) -> list[Dataset]: ...

    def set_dataset_rules(self, name: str, rules: Mapping[str, Any] | None) -> Dataset: ...

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
    ) -> tuple[DatasetVersionInfo, bool]: ...

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersionInfo: ...

    def list_dataset_versions(self, name: str) -> list[DatasetVersionInfo]: ...

    def find_dataset_versions(self, digest: str) -> list[DatasetVersionInfo]: ...

    def log_dataset_inputs(
        self, run_id: str, inputs: Sequence[tuple[str, int, str]]
    ) -> list[DatasetInput]: ...

    def list_run_inputs(self, run_id: str) -> list[DatasetInput]: ...

    def list_dataset_usages(self, name: str, version: int | None = None) -> list[DatasetInput]: ...


@runtime_checkable
class TrackingStore(ExperimentStore, RunStore, MetricStore, ArtifactStore, DatasetStore, Protocol):
    """Everything the tracking client needs: the union of the per-resource protocols."""

    @property
    def uri(self) -> str: ...

    def close(self) -> None: ...
