"""The explicit tracking client: every operation takes the run or experiment it acts on.

Method names follow MLflow's ``MlflowClient`` where the concept is the same, so MLflow users
can switch by changing the import.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from loopml.config import Settings
from loopml.entities import (
    ArtifactInfo,
    DatasetInput,
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
from loopml.errors import AlreadyExistsError, ExperimentNotFoundError, InvalidArgumentError
from loopml.storage import paths
from loopml.storage.paths import join_under, validate_artifact_path
from loopml.storage.protocols import TrackingStore
from loopml.storage.refs import parse_ref
from loopml.storage.uris import get_tracking_uri, open_store, set_tracking_uri
from loopml.storage.validation import metric_row, validate_run_id, validate_status
from loopml.tracking import artifacts as _artifacts
from loopml.tracking.buffer import MetricBuffer

__all__ = ["Client", "get_tracking_uri", "set_tracking_uri"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Client:
    """A handle on one tracking store.

    ``tracking_uri`` picks the store (see :func:`loopml.storage.uris.resolve_location`); it
    defaults to the URI given to :func:`set_tracking_uri`, then ``LOOPML_TRACKING_URI``, then
    the embedded store in ``./.loopml``. Clients
    with the same URIs share one open store and one metric buffer per process.
    """

    def __init__(
        self,
        tracking_uri: str | os.PathLike[str] | None = None,
        artifacts_uri: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self._settings = settings or Settings.from_env()
        uri = tracking_uri if tracking_uri is not None else get_tracking_uri()
        self._store = open_store(uri, artifacts_uri, self._settings)
        self._buffer = _shared_buffer(self._store, self._settings)
        self._valid_keys: set[str] = set()
        self._valid_runs: set[str] = set()
        self._steps: dict[tuple[str, str], int] = {}
        self._last_reap = 0.0

    @property
    def store(self) -> TrackingStore:
        return self._store

    @property
    def settings(self) -> Settings:
        return self._settings

    # -- experiments -------------------------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        return self._store.create_experiment(name, description, tags).experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._store.get_experiment_by_name(name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        found = self._store.get_experiment_by_name(name)
        if found is not None:
            return found
        try:
            return self._store.create_experiment(name)
        except AlreadyExistsError:
            found = self._store.get_experiment_by_name(name)  # created concurrently
            if found is None:
                raise
            return found

    def search_experiments(self, *, include_archived: bool = False) -> list[Experiment]:
        return self._store.list_experiments(include_archived=include_archived)

    list_experiments = search_experiments

    def archive_experiment(self, experiment_id: str) -> Experiment:
        return self._store.update_experiment(experiment_id, lifecycle_stage=LifecycleStage.ARCHIVED)

    def restore_experiment(self, experiment_id: str) -> Experiment:
        return self._store.update_experiment(experiment_id, lifecycle_stage=LifecycleStage.ACTIVE)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._store.set_experiment_tag(experiment_id, key, value)

    def resolve_experiment(self, name_or_id: str) -> Experiment:
        """An experiment by name, or by id when no experiment has that name."""
        if not isinstance(name_or_id, str | int) or isinstance(name_or_id, bool):
            raise InvalidArgumentError(
                f"An experiment is named by a string. Got {type(name_or_id).__name__}.",
                field="experiment",
            )
        found = self._store.get_experiment_by_name(str(name_or_id))
        if found is not None:
            return found
        if str(name_or_id).isdigit():
            return self._store.get_experiment(str(name_or_id))
        raise ExperimentNotFoundError(
            f"No experiment named {name_or_id!r}.", experiment=str(name_or_id)
        )

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        parent_run_id: str | None = None,
        start_time: int | None = None,
        source: SourceInfo | None = None,
        heartbeat: bool = False,
    ) -> Run:
        info = self._store.create_run(
            experiment_id,
            run_name=run_name,
            start_time=start_time,
            parent_run_id=parent_run_id,
            tags=tags,
            source=source,
            heartbeat=heartbeat,
        )
        return Run(info=info)

    def get_run(self, run_id: str) -> Run:
        """The run with its params, tags and latest metrics (buffered points included)."""
        self._reap_stale_runs()
        self._flush_pending()
        return self._store.get_run(run_id)

    def set_terminated(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        end_time: int | None = None,
        error: str | None = None,
    ) -> RunInfo:
        """End a run: flush its buffered metrics, then record the final status."""
        status = validate_status(status, terminal=True)
        self._flush_pending()
        return self._store.update_run(run_id, status=status, end_time=end_time, error=error)

    def update_run(
        self, run_id: str, status: RunStatus | str | None = None, name: str | None = None
    ) -> RunInfo:
        return self._store.update_run(run_id, status=status, run_name=name)

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self._store.log_params(run_id, {key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._store.log_params(run_id, params)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self._store.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self._store.set_tags(run_id, tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._store.delete_tag(run_id, key)

    # -- dataset inputs (lineage) --------------------------------------------------------------

    def log_input(self, run_id: str, dataset: Any, context: str = "training") -> DatasetInput:
        """Record that the run used a dataset version.

        ``dataset`` is a :class:`loopml.data.DatasetVersion` or a reference such as
        ``"customers@v3"`` (``"customers"`` means its latest version, resolved now).
        ``context`` says how it was used: ``"training"``, ``"evaluation"``, ...
        """
        name, version = self._dataset_ref(dataset)
        if version is None:
            version = self._store.get_dataset_version(name).version
        inputs = self._store.log_dataset_inputs(run_id, [(name, version, context)])
        return next(i for i in inputs if (i.name, i.version, i.context) == (name, version, context))

    def list_inputs(self, run_id: str) -> list[DatasetInput]:
        """The dataset versions the run used."""
        return self._store.list_run_inputs(run_id)

    @staticmethod
    def _dataset_ref(dataset: Any) -> tuple[str, int | None]:
        if isinstance(dataset, str):
            ref = parse_ref(dataset, field="dataset")
            return ref.name, ref.version
        name, version = getattr(dataset, "name", None), getattr(dataset, "version", None)
        if isinstance(name, str) and isinstance(version, int):
            return name, version
        raise InvalidArgumentError(
            "dataset must be a DatasetVersion or a reference such as 'customers@v3'. "
            f"Got {type(dataset).__name__}.",
            field="dataset",
        )

    # -- metrics -----------------------------------------------------------------------------

    def _row(
        self, run_id: str, key: str, value: Any, step: int | None, timestamp: int | None
    ) -> MetricRow:
        """Validate one point and turn it into a stored row (the hot path of log_metric)."""
        if run_id not in self._valid_runs:
            self._valid_runs.add(validate_run_id(run_id))
        counter = (run_id, key)
        if step is None:
            step = self._steps.get(counter, 0)
        if timestamp is None:
            timestamp = time.time_ns() // 1_000_000
        row = metric_row(run_id, key, value, step, timestamp, self._valid_keys)
        self._steps[counter] = row[2] + 1
        return row

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        """Log one point. It is buffered and written in a batch unless ``synchronous``.

        Without ``step``, the step is one more than the last step this client logged for the
        key in this run (0 for the first point). The point is validated now, so a bad value
        raises here, not at the flush.
        """
        row = self._row(run_id, key, value, step, timestamp)
        if synchronous:
            self._store.append_metric_rows([row])
        else:
            self._buffer.add(row)

    def buffered_logger(self, run_id: str) -> Callable[[str, Any, int | None, int | None], None]:
        """``log(key, value, step, timestamp)`` for one run: the fluent API's hot path, the
        same validation and buffering as :meth:`log_metric` with less per-call work."""
        validate_run_id(run_id)
        self._valid_runs.add(run_id)
        row, add = self._row, self._buffer.add

        def log(key: str, value: Any, step: int | None, timestamp: int | None) -> None:
            add(row(run_id, key, value, step, timestamp))

        return log

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        """Log several metrics at the same step and timestamp."""
        if not isinstance(metrics, Mapping):
            raise InvalidArgumentError(
                f"The metrics must be a mapping of key to value. Got {type(metrics).__name__}.",
                field="metrics",
            )
        stamp = _now_ms() if timestamp is None else timestamp
        rows = [self._row(run_id, k, v, step, stamp) for k, v in metrics.items()]
        if synchronous:
            self._store.append_metric_rows(rows)
            return
        for row in rows:
            self._buffer.add(row)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metrics, params and tags at once, synchronously and atomically."""
        self._store.log_batch(run_id, metrics, params, tags)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._flush_pending()
        return self._store.get_metric_history(run_id, key)

    def flush(self) -> None:
        """Write every buffered metric point now."""
        self._buffer.flush()

    def _flush_pending(self) -> None:
        """Read-your-writes: buffered points are written before anything is read."""
        if self._buffer.pending():
            self._buffer.flush()

    # -- artifacts ---------------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Log a local file under the folder ``artifact_path`` (the run's root by default)."""
        path = paths.local_path(local_path, field="local_path")
        if path.is_dir():
            raise InvalidArgumentError(
                f"{str(path)!r} is a folder; use log_artifacts to log a folder.", field="local_path"
            )
        return self._store.put_artifact(
            run_id, _artifacts.artifact_file_path(path.name, artifact_path), path
        )

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Log every file below ``local_dir``, keeping its layout, under ``artifact_path``."""
        folder = validate_artifact_path(
            artifact_path or "", field="artifact_path", allow_empty=True
        )
        logged = []
        for file, relative in _artifacts.iter_folder(local_dir):
            logical = f"{folder}/{relative}" if folder else relative
            logged.append(self._store.put_artifact(run_id, validate_artifact_path(logical), file))
        return logged

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactInfo:
        if not isinstance(text, str):
            raise InvalidArgumentError(
                f"text must be a str. Got {type(text).__name__}.", field="text"
            )
        with _artifacts.temp_file_for(artifact_file) as tmp:
            tmp.write_text(text, "utf-8")
            return self._store.put_artifact(run_id, artifact_file, tmp)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> ArtifactInfo:
        """Log a JSON-serialisable object as JSON (or YAML for a .yaml/.yml file name)."""
        with _artifacts.temp_file_for(artifact_file) as tmp:
            _artifacts.write_dict(dictionary, tmp)
            return self._store.put_artifact(run_id, artifact_file, tmp)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> ArtifactInfo:
        """Log a matplotlib figure as an image (format from the file name, e.g. .png, .svg)."""
        with _artifacts.temp_file_for(artifact_file) as tmp:
            _artifacts.write_figure(figure, tmp)
            return self._store.put_artifact(run_id, artifact_file, tmp)

    def list_artifacts(
        self, run_id: str, path: str | None = None, *, recursive: bool = False
    ) -> list[ArtifactInfo]:
        return self._store.list_artifacts(run_id, path or "", recursive=recursive)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Download a file or a whole folder of artifacts; return the local path.

        Every file is verified against its hash before it appears at its destination.
        """
        import tempfile

        path = validate_artifact_path(path or "", field="path", allow_empty=True)
        if dst_path is None:
            root = Path(tempfile.mkdtemp(prefix="loopml-"))
        else:
            root = paths.local_path(dst_path, field="dst_path")
        root.mkdir(parents=True, exist_ok=True)
        files = self._store.list_artifacts(run_id, path, recursive=True)
        if len(files) == 1 and files[0].path == path:
            dest = Path(join_under(str(root), path.rsplit("/", 1)[-1]))
            self._store.get_artifact(run_id, path, dest)
            return str(dest)
        if not files:
            self._store.get_artifact(run_id, path, root / "missing")  # raises ArtifactNotFoundError
        base = path.rsplit("/", 1)[-1] if path else ""
        prefix = path + "/" if path else ""
        for info in files:
            relative = (base + "/" if base else "") + info.path[len(prefix) :]
            dest = Path(join_under(str(root), relative))
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._store.get_artifact(run_id, info.path, dest)
        return str(root / base) if base else str(root)

    # -- search ------------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs of the experiments that match the filter; see :mod:`loopml.storage.search`."""
        self._reap_stale_runs()
        self._flush_pending()
        return self._store.search_runs(
            experiment_ids, filter_string, order_by, max_results, page_token
        )

    def _reap_stale_runs(self) -> None:
        now = time.monotonic()
        if now - self._last_reap >= self._settings.heartbeat_interval:
            self._last_reap = now
            self._store.mark_stale_runs_killed(self._settings.heartbeat_timeout)


_T = TypeVar("_T")
_per_store: dict[tuple[str, int], tuple[TrackingStore, Any]] = {}
_per_store_lock = threading.Lock()


def shared_for_store(kind: str, store: TrackingStore, make: Callable[[], _T]) -> _T:
    """The one ``kind`` of helper object (metric buffer, heartbeat) of an open store, made
    on first use, so every client of the store shares it. Keyed by identity: a new store
    that happens to get a dead one's ``id`` gets its own."""
    key = (kind, id(store))
    with _per_store_lock:
        entry = _per_store.get(key)
        if entry is None or entry[0] is not store:
            entry = _per_store[key] = (store, make())
        return entry[1]  # type: ignore[no-any-return]


def _shared_buffer(store: TrackingStore, settings: Settings) -> MetricBuffer:
    """One buffer per open store, so every client of the store flushes the same points."""
    return shared_for_store(
        "buffer",
        store,
        lambda: MetricBuffer(
            store, interval=settings.flush_interval, max_points=settings.flush_max_points
        ),
    )
