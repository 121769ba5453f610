"""The fluent API: ``with loopml.start_run(): loopml.log_metric(...)``.

The active run lives in a :class:`~contextvars.ContextVar`, so threads and asyncio tasks that
start their own runs never see each other's. A thread starts with no active run; an asyncio
task starts with its creator's, and a run it starts stays its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
import weakref
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from loopml.entities import ArtifactInfo, DatasetInput, PagedList, Run, RunInfo, RunStatus
from loopml.errors import InvalidArgumentError, InvalidStateError
from loopml.storage.context import active_runs, set_active_runs
from loopml.storage.protocols import TrackingStore
from loopml.tracking.client import Client, set_tracking_uri, shared_for_store
from loopml.tracking.heartbeat import Heartbeat
from loopml.tracking.source import collect_source_info
from loopml.tracking.system_metrics import SystemMetricsSampler

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "flush",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

DEFAULT_EXPERIMENT = "Default"


_heartbeats: weakref.WeakSet[Heartbeat] = weakref.WeakSet()  # for the fork hook
_lock = threading.Lock()


class ActiveRun:
    """A run started by :func:`start_run`; use it as a context manager to end it."""

    def __init__(self, client: Client, info: RunInfo, *, heartbeat: Heartbeat | None) -> None:
        self.client = client
        self.info = info
        self._heartbeat = heartbeat
        self._sampler: SystemMetricsSampler | None = None
        self._ended = False
        self._log_point = client.buffered_logger(info.run_id)

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def store(self) -> TrackingStore:
        """The store this run logs to."""
        return self.client.store

    def flush(self) -> None:
        """Write this run's buffered metric points now."""
        self.client.flush()

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end(RunStatus.FINISHED)
        elif isinstance(exc, KeyboardInterrupt):
            self.end(RunStatus.KILLED, error="KeyboardInterrupt")
        else:
            self.end(RunStatus.FAILED, error=_error_text(exc_type, exc, tb))

    def end(self, status: RunStatus | str = RunStatus.FINISHED, error: str | None = None) -> None:
        """Flush the run's metrics, record its final status and make it inactive."""
        if self._ended:
            return
        self._ended = True
        try:
            if self._sampler is not None:
                self._sampler.stop()
            self.client.set_terminated(self.run_id, status, error=error)
        finally:
            if self._heartbeat is not None:
                self._heartbeat.remove(self.run_id)
            _pop(self)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.run_name} ({self.run_id})>"


def _error_text(exc_type: Any, exc: BaseException, tb: TracebackType | None) -> str:
    lines = traceback.format_exception(exc_type, exc, tb)
    return "".join(lines)[-8000:]


def _pop(run: ActiveRun) -> None:
    stack = active_runs()
    if run in stack:
        set_active_runs(tuple(r for r in stack if r is not run))
    with _lock:
        _open_runs.pop(run.run_id, None)


def _client(tracking_uri: str | None = None) -> Client:
    return Client(tracking_uri)


def _heartbeat_for(client: Client) -> Heartbeat:
    beat = shared_for_store(
        "heartbeat",
        client.store,
        lambda: Heartbeat(client.store, client.settings.heartbeat_interval),
    )
    _heartbeats.add(beat)
    return beat


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    *,
    run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    system_metrics: bool = False,
    tracking_uri: str | None = None,
) -> ActiveRun:
    """Start (or, with ``run_id``, resume) a run and make it the active one.

    ``experiment`` is a name; the experiment is created if it does not exist (default:
    ``"Default"``). With ``nested=True`` the new run's parent is the active run. The run sends
    heartbeats while it is active, so if the process dies it is marked KILLED.
    """
    client = _client(tracking_uri)
    stack = active_runs()
    if stack and not nested and parent_run_id is None:
        raise InvalidStateError(
            f"Run {stack[-1].run_id} is already active. End it first, or pass nested=True "
            "to start a child run.",
            run_id=stack[-1].run_id,
        )
    beat = _heartbeat_for(client)
    if run_id is not None:
        # a resumed run is watched by heartbeats like a new one
        info = client.store.update_run(run_id, status=RunStatus.RUNNING, heartbeat=True)
        if tags:
            client.set_tags(run_id, tags)
    else:
        if experiment is not None and not isinstance(experiment, str):
            raise InvalidArgumentError(
                f"The experiment must be given by name (a str). Got {type(experiment).__name__}.",
                field="experiment",
            )
        parent = parent_run_id or (stack[-1].run_id if nested and stack else None)
        if experiment is None and nested and stack:
            experiment_id = stack[-1].info.experiment_id  # children join the parent's experiment
        else:
            experiment_id = client.get_or_create_experiment(
                experiment or DEFAULT_EXPERIMENT
            ).experiment_id
        info = client.create_run(
            experiment_id,
            run_name,
            tags,
            parent_run_id=parent,
            source=collect_source_info(),
            heartbeat=True,
        ).info
    beat.add(info.run_id)
    run = ActiveRun(client, info, heartbeat=beat)
    if system_metrics:
        run._sampler = SystemMetricsSampler(
            lambda values, step: client.log_metrics(info.run_id, values, step=step),
            client.settings.system_metrics_interval,
        ).start()
    set_active_runs((*stack, run))
    with _lock:
        _open_runs[info.run_id] = run
    _install_exit_hooks()
    return run


def active_run() -> ActiveRun | None:
    """The run started last in this thread or task and not yet ended."""
    stack = active_runs()
    return stack[-1] if stack else None


def _require() -> ActiveRun:
    stack = active_runs()
    if not stack:
        raise InvalidStateError(
            "No active run. Start one with loopml.start_run() (ideally in a with block)."
        )
    return stack[-1]


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (no-op without one)."""
    run = active_run()
    if run is not None:
        run.end(status)


def log_param(key: str, value: Any) -> None:
    run = _require()
    run.client.log_param(run.run_id, key, value)


def log_params(params: Mapping[str, Any]) -> None:
    run = _require()
    run.client.log_params(run.run_id, params)


def log_input(dataset: Any, context: str = "training") -> DatasetInput:
    """Record that the active run used a dataset version (``DatasetVersion`` or a reference
    such as ``"customers@v3"``); see :meth:`Client.log_input`."""
    run = _require()
    return run.client.log_input(run.run_id, dataset, context)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one metric point to the active run (buffered; see :func:`flush`)."""
    stack = active_runs()
    run = stack[-1] if stack else _require()
    run._log_point(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    run = _require()
    run.client.log_metrics(run.run_id, metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    run = _require()
    run.client.set_tag(run.run_id, key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    run = _require()
    run.client.set_tags(run.run_id, tags)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> ArtifactInfo:
    run = _require()
    return run.client.log_artifact(run.run_id, local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[ArtifactInfo]:
    run = _require()
    return run.client.log_artifacts(run.run_id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactInfo:
    run = _require()
    return run.client.log_text(run.run_id, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> ArtifactInfo:
    run = _require()
    return run.client.log_dict(run.run_id, dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> ArtifactInfo:
    run = _require()
    return run.client.log_figure(run.run_id, figure, artifact_file)


def flush() -> None:
    """Write every buffered metric point of every open store now."""
    from loopml.tracking.buffer import flush_all

    flush_all(raise_errors=True)


def search_runs(
    experiments: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: str | Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    *,
    tracking_uri: str | None = None,
) -> PagedList[Run]:
    """Search runs of experiments given by name (or id); the active run's experiment by default."""
    client = _client(tracking_uri)
    names: Iterable[str]
    if experiments is None:
        run = active_run()
        names = [run.info.experiment_id] if run else [DEFAULT_EXPERIMENT]
    else:
        names = [experiments] if isinstance(experiments, str | int) else experiments
        if not isinstance(names, Iterable):
            raise InvalidArgumentError(
                "experiments must be an experiment name or a list of names. "
                f"Got {type(experiments).__name__} instead.",
                field="experiments",
            )
    ids = [client.resolve_experiment(name).experiment_id for name in names]
    return client.search_runs(ids, filter, order_by, max_results, page_token)


# -- the end of the process ------------------------------------------------------------------

_open_runs: dict[str, ActiveRun] = {}
_hooks_installed = False


def _install_exit_hooks() -> None:
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    import atexit

    previous = sys.excepthook

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        for run in list(_open_runs.values()):
            with contextlib.suppress(Exception):  # the process is dying; report the original
                run.end(RunStatus.FAILED, error=_error_text(exc_type, exc, tb))
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_open_runs)
    os.register_at_fork(after_in_child=_forget_after_fork)


def _forget_after_fork() -> None:
    """A forked child (a data-loader worker, say) may log to the parent's active run, but it
    neither ends that run at its exit nor sends its heartbeats."""
    global _lock
    _lock = threading.Lock()
    _open_runs.clear()
    for beat in list(_heartbeats):
        beat.forget_after_fork()


def _end_open_runs() -> None:
    for run in list(_open_runs.values()):
        with contextlib.suppress(Exception):  # best effort at exit
            run.end(RunStatus.FINISHED)
