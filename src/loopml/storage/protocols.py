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
    ModelVersion,
    ModelVersionStatus,
    Monitor,
    MonitorEvent,
    MonitorResult,
    PagedList,
    PredictionLogKind,
    PredictionSegment,
    RegisteredModel,
    RegistryEvent,
    Run,
    RunInfo,
    RunStatus,
    SourceInfo,
    Token,
    TokenRole,
    TokenScopes,
)

__all__ = [
    "ArtifactStore",
    "DatasetStore",
    "ExperimentStore",
    "MetricStore",
    "MonitorStore",
    "PredictionLogStore",
    "RegistryStore",
    "RunStore",
    "TokenStore",
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

    def record_artifacts(self, run_id: str, files: Sequence[tuple[str, str, int]]) -> None:
        """Record ``(path, digest, size)`` entries for blobs already stored."""
        ...

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
class RegistryStore(Protocol):
    """Registered models, versions, tags, aliases and their event history."""

    def create_registered_model(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel: ...

    def get_registered_model(self, name: str) -> RegisteredModel: ...

    def list_registered_models(self) -> list[RegisteredModel]: ...

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel: ...

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None: ...

    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    def delete_registered_model(
        self, name: str, *, actor: str | None = None, reason: str = ""
    ) -> None: ...

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
    ) -> ModelVersion: ...

    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    def list_model_versions(self, name: str) -> list[ModelVersion]: ...

    def update_model_version(
        self, name: str, version: int, *, description: str
    ) -> ModelVersion: ...

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None: ...

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None: ...

    def set_model_version_status(
        self,
        name: str,
        version: int,
        status: ModelVersionStatus | str,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str = "",
    ) -> ModelVersion: ...

    def delete_model_version(
        self,
        name: str,
        version: int,
        *,
        force: bool = False,
        actor: str | None = None,
        reason: str = "",
    ) -> None: ...

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None = None, reason: str = ""
    ) -> int | None: ...

    def delete_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str = ""
    ) -> int: ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    def list_registry_events(self, name: str) -> list[RegistryEvent]: ...

    def list_dataset_models(self, name: str, version: int | None = None) -> list[ModelVersion]: ...


@runtime_checkable
class PredictionLogStore(Protocol):
    """The segments of the serving layer's prediction log (see :mod:`loopml.serving.predlog`):
    Parquet blobs of logged predictions or feedback, recorded per model by time range so that
    monitoring reads a model's window without scanning the rest."""

    @property
    def blobs(self) -> BlobStore: ...

    def record_prediction_segment(
        self,
        model_name: str,
        *,
        kind: PredictionLogKind | str,
        start_time: int,
        end_time: int,
        row_count: int,
        digest: str,
        size: int,
        model_version: int | None = None,
    ) -> PredictionSegment:
        """Record a segment whose Parquet blob ``digest`` (``size`` bytes) is in the blob
        store already, holding ``row_count`` rows timestamped ``start_time`` to ``end_time``
        (ms, inclusive). Recording the same blob again for the same model and kind returns
        the segment already recorded (so a retried call is safe).

        Raises:
            InvalidArgumentError: an argument is not acceptable (``field`` names it).
            ArtifactNotFoundError: the blob is not in the blob store (nothing is recorded).
        """
        ...

    def list_prediction_segments(
        self,
        model_name: str,
        *,
        kind: PredictionLogKind | str = PredictionLogKind.PREDICTIONS,
        start: int | None = None,
        end: int | None = None,
        version: int | None = None,
    ) -> list[PredictionSegment]:
        """The model's segments of this kind with rows in ``[start, end)`` (ms; ``None``:
        unbounded), of one model version or (``None``) any, ordered by start time. A model
        with no segments (registered or not) has an empty list."""
        ...


@runtime_checkable
class MonitorStore(Protocol):
    """Monitors (a name and a JSON spec the monitoring layer defines), the result of each
    window they checked, and their events (see :mod:`loopml.storage.monitors` for the rules
    every argument follows; a bad one raises :class:`~loopml.errors.InvalidArgumentError`
    naming its ``field``). Times are milliseconds since the epoch."""

    def create_monitor(
        self, name: str, spec: Mapping[str, Any], *, actor: str | None = None
    ) -> Monitor:
        """A new monitor (and its ``monitor.created`` event, by ``actor``). ``name``: 1 to
        128 letters, digits, '_', '.' and '-', starting with a letter or digit; ``spec``: a
        JSON object under 256 KiB, nested at most 32 levels.

        Raises:
            AlreadyExistsError: a monitor of that name exists.
        """
        ...

    def get_monitor(self, name: str) -> Monitor:
        """Raises MonitorNotFoundError when there is none of that name."""
        ...

    def list_monitors(self) -> list[Monitor]:
        """Every monitor, by name."""
        ...

    def update_monitor(
        self, name: str, spec: Mapping[str, Any], *, actor: str | None = None
    ) -> Monitor:
        """Replace the monitor's spec (a ``monitor.updated`` event). Raises
        MonitorNotFoundError."""
        ...

    def delete_monitor(self, name: str, *, actor: str | None = None) -> None:
        """Delete the monitor with its results (a ``monitor.deleted`` event); its events
        remain. Raises MonitorNotFoundError."""
        ...

    def record_monitor_result(
        self,
        name: str,
        *,
        window_start: int,
        window_end: int,
        status: str,
        summary: Mapping[str, Any],
        late: bool = False,
    ) -> MonitorResult:
        """The outcome of checking ``[window_start, window_end)`` (``window_start <
        window_end``): ``status`` one of ``ok``, ``drift``, ``alert``,
        ``insufficient_data``, ``error`` (see :class:`~loopml.entities.MonitorStatus`),
        ``summary`` a JSON object under 1 MiB; ``late`` for the window of late rows of that
        span (kept apart from the on-time result). Recording the same window (and
        ``late``) again replaces its result atomically (a re-check). Raises
        MonitorNotFoundError."""
        ...

    def list_monitor_results(
        self,
        name: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        late: bool | None = None,
        newest: bool = False,
    ) -> list[MonitorResult]:
        """The first ``limit`` (1 to 10,000) results whose window overlaps ``[start, end)``
        (``None``: unbounded), on time (``late=False``), late (``True``) or both (``None``),
        by window start, end, then on-time before late; with ``newest`` the last ``limit``
        of them (still in that order). Raises MonitorNotFoundError."""
        ...

    def record_monitor_event(
        self,
        name: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> MonitorEvent:
        """Append an event (``kind``: 1 to 64 of ``a-z``, ``0-9``, '_', '.', '-', such as
        ``alert.opened``; ``payload``: a JSON object under 256 KiB). Raises
        MonitorNotFoundError."""
        ...

    def list_monitor_events(
        self,
        name: str | None = None,
        *,
        kinds: Sequence[str] | None = None,
        since: int | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[MonitorEvent]:
        """The first ``limit`` (1 to 10,000) events of the monitor ``name`` (``None``: of
        every monitor) at or after ``since``, of one of ``kinds`` (``None``: any; empty:
        none), by time then event id; with ``newest`` the last ``limit`` of them (still in
        that order). A deleted monitor's events are still listed, and a name never used has
        none."""
        ...


@runtime_checkable
class TrackingStore(
    ExperimentStore,
    RunStore,
    MetricStore,
    ArtifactStore,
    DatasetStore,
    RegistryStore,
    PredictionLogStore,
    MonitorStore,
    Protocol,
):
    """Everything the tracking client needs: the union of the per-resource protocols."""

    @property
    def uri(self) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class TokenStore(Protocol):
    """The tracking server's bearer tokens. Only the direct (SQL) store has them: the server
    checks tokens against its own database, and a remote client manages them through the
    server's ``/api/v1/tokens`` routes, never as part of :class:`TrackingStore`."""

    def create_token(
        self,
        name: str,
        role: TokenRole | str,
        *,
        scopes: TokenScopes | Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> tuple[Token, str]:
        """The new token and its secret, which is returned only here (the store keeps a
        hash of it)."""
        ...

    def list_tokens(self, *, include_revoked: bool = False) -> list[Token]: ...

    def revoke_token(self, name: str, *, actor: str | None = None) -> Token: ...

    def verify_token(self, secret: str) -> Token | None:
        """The active token with this secret, else ``None`` (unknown or revoked)."""
        ...
