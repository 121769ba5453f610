"""Live windows: the model server summarises the traffic of each monitored model in memory, as
it serves, with the same mergeable histograms as the data profiles.

For every monitor (:mod:`loopml.monitoring.monitors`) of a model this server serves,
:class:`LiveMonitors` keeps a :class:`~loopml.monitoring.WindowSketch` made on the monitor's
reference profile (the dataset version's stored profile: its fixed buckets and categories)
for the current time window, aligned to multiples of the monitor's window length (a ``"1h"``
window runs from one full hour to the next, in UTC). Each answered request's input columns
(and its predictions, under the monitor's ``target`` column when the reference has it) are
folded into that sketch; when the window ends the sketch is rolled and the finished window is
kept as the *previous* one until the next roll. Drift against the reference
(:func:`loopml.monitoring.compare`) is computed in the background at most every
``refresh_seconds`` per window, and only when rows arrived since: scrapes read cached figures.

The request path only appends a reference to the request's arrays to a bounded queue
(:meth:`LiveMonitors.observe`: a dictionary lookup, a lock, an append); one background thread
drains it every ``interval`` seconds, merges the queued requests of each window into one batch
and folds it with a single :meth:`WindowSketch.update`. Past ``max_pending_rows`` queued rows a
request is not folded and its rows are counted as dropped: folding never blocks or fails a
request. Arrays are kept by reference until folded, so they must not change after
:meth:`~LiveMonitors.observe` (the prediction log has the same rule).

Monitors whose window is not a duration (a count of rows, say), whose reference cannot be read
or is not a table, or whose reference shares no column with the model's inputs are skipped
(logged once each). Requests to a tensor model (no named columns) are not folded.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidArgumentError
from loopml.storage.refs import parse_ref

if TYPE_CHECKING:  # imported where used: a server without monitors never needs them
    from loopml.data.profile import Profile
    from loopml.monitoring import WindowSketch

__all__ = ["LiveMonitors", "input_names"]

logger = logging.getLogger(__name__)

#: (monitors of the model, time in ms, input columns, model output, rows)
_Item = tuple[tuple["_Monitor", ...], int, Mapping[str, Any], Any, int]
#: (input columns, model output, rows) of one request
_Part = tuple[Mapping[str, Any], Any, int]


def input_names(signature: Any) -> list[str] | None:
    """The input column names of a model signature (None without one, or for a tensor)."""
    if signature is None or getattr(signature, "kind", None) != "columns":
        return None
    return [str(spec.name) for spec in signature.inputs]


@dataclass(eq=False)
class _Window:
    """One time window of a monitor: its start (ms), its sketch and its latest evaluation."""

    start: int
    sketch: WindowSketch
    result: dict[str, Any] | None = None
    evaluated_at: float = -math.inf  # monotonic time of the evaluation


@dataclass(eq=False)
class _Monitor:
    """The live state of one monitor: the current and the previous window."""

    name: str
    model: str
    reference: str
    key: tuple[Any, ...]  # what the state was built from; a change rebuilds it
    profile: Profile
    window_ms: int
    columns: tuple[str, ...]
    target: str | None
    min_rows: int
    current: _Window
    previous: _Window | None = None
    dropped_rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def roll(self, now_ms: int) -> None:
        """Start the window that holds ``now_ms`` if the current one has ended (under
        :attr:`lock`): the finished window becomes the previous one (an empty one when no
        request came in the window just before)."""
        start = now_ms - now_ms % self.window_ms
        current = self.current
        if start <= current.start:
            return
        if start == current.start + self.window_ms:
            self.previous = current
        else:
            self.previous = _Window(start - self.window_ms, current.sketch.empty())
        self.current = _Window(start, current.sketch.empty())

    def window_for(self, time_ms: int) -> _Window | None:
        """The window a request made at ``time_ms`` belongs to (rolling to it if it is
        newer), or None when it is older than the previous window."""
        with self.lock:
            self.roll(time_ms)
            start = time_ms - time_ms % self.window_ms
            if start == self.current.start:
                return self.current
            if self.previous is not None and start == self.previous.start:
                return self.previous
            return None


class LiveMonitors:
    """The live windows of a model server's monitors (see the module docstring).

    ``clock`` gives the time in seconds since the epoch (``time.time``); ``interval`` is how
    often the background thread folds what was queued; ``refresh_seconds`` how often at most
    a window that keeps receiving rows is compared with its reference again;
    ``max_pending_rows`` how many rows may wait to be folded before requests are dropped.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 0.2,
        refresh_seconds: float = 5.0,
        max_pending_rows: int = 100_000,
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.refresh_seconds = refresh_seconds
        self.max_pending_rows = max_pending_rows
        self._monitors: dict[str, _Monitor] = {}
        self._by_model: dict[str, tuple[_Monitor, ...]] = {}
        self._queue: list[_Item] = []
        self._pending_rows = 0
        self._queue_lock = threading.Lock()
        self._fold_lock = threading.Lock()  # one fold (thread or flush) at a time
        self._profiles: dict[tuple[str, int], Profile] = {}
        self._warned: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ life

    def start(self) -> None:
        """Start the background thread that folds queued requests (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="loopml-live-monitors", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the background thread, folding what is still queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._work(force=False)
            except Exception:  # the thread must outlive any bad batch
                logger.exception("folding the live monitoring windows failed")

    def flush(self) -> None:
        """Fold everything queued and evaluate every window that changed, now (in the
        calling thread)."""
        self._work(force=True)

    # ------------------------------------------------------------------------------ monitors

    @property
    def monitors(self) -> tuple[str, ...]:
        """The names of the monitors with a live window."""
        return tuple(self._monitors)

    def refresh(self, store: Any, inputs: Mapping[str, Sequence[str] | None]) -> None:
        """Start, keep or drop the live window of each monitor in ``store`` whose model is a
        key of ``inputs`` (the served models and their input column names, None when
        unknown). A monitor whose spec, reference version or columns changed starts afresh."""
        found: dict[str, _Monitor] = {}
        listed: set[str] = set()
        for monitor in store.list_monitors():
            listed.add(monitor.name)
            spec = monitor.spec if isinstance(monitor.spec, Mapping) else {}
            model = spec.get("model")
            if not isinstance(model, str) or model not in inputs:
                continue
            try:
                state = self._state(store, monitor.name, spec, inputs[model])
            except Exception as exc:
                self._warn(monitor.name, "error", "cannot watch it live: %s", exc)
                continue
            if state is not None:
                found[monitor.name] = state
        by_model: dict[str, list[_Monitor]] = {}
        for state in found.values():
            by_model.setdefault(state.model, []).append(state)
        with self._fold_lock:
            self._monitors = found
            self._by_model = {model: tuple(states) for model, states in by_model.items()}
        # a monitor deleted and created again is warned about again
        self._warned = {w for w in self._warned if w[0] in listed}

    def _state(
        self, store: Any, name: str, spec: Mapping[str, Any], names: Sequence[str] | None
    ) -> _Monitor | None:
        from loopml.monitoring import WindowSketch
        from loopml.monitoring.monitors import parse_window

        try:
            window_ms = parse_window(spec.get("window"))
        except InvalidArgumentError:
            self._warn(name, "window", "its window %r is not a duration", spec.get("window"))
            return None
        reference = str(spec.get("reference"))
        parsed = parse_ref(reference, field="reference")
        info = store.get_dataset_version(parsed.name, parsed.version)
        if not info.profile:
            self._warn(name, "profile", "its reference %s has no profile (not a table)", reference)
            return None
        target = spec.get("target") or None
        min_rows = spec.get("min_rows", 100)
        min_rows = min_rows if isinstance(min_rows, int) and min_rows > 0 else 100
        old = self._monitors.get(name)
        key_base = (spec.get("model"), reference, info.name, info.version, window_ms, target)
        if old is not None and old.key[: len(key_base)] == key_base:
            profile = old.profile
        else:
            profile = self._profile(info)
        wanted = set(profile.columns) if names is None else {*names, target}
        columns = tuple(c for c in profile.columns if c in wanted)
        if not [c for c in columns if c != target]:
            self._warn(name, "columns", "its reference %s has none of the inputs", reference)
            return None
        key = (*key_base, columns, min_rows)
        if old is not None and old.key == key:
            return old
        sketch = WindowSketch(profile, columns=columns)
        now = self._now_ms()
        return _Monitor(
            name=name,
            model=str(spec.get("model")),
            reference=reference,
            key=key,
            profile=profile,
            window_ms=window_ms,
            columns=columns,
            target=target if target in columns else None,
            min_rows=min_rows,
            current=_Window(now - now % window_ms, sketch),
        )

    def _profile(self, info: Any) -> Profile:
        key = (str(info.name), int(info.version))
        profile = self._profiles.get(key)
        if profile is None:
            from loopml.data.profile import Profile

            if len(self._profiles) > 100:
                self._profiles.clear()
            profile = self._profiles[key] = Profile.from_dict(info.profile)
        return profile

    def _warn(self, name: str, reason: str, message: str, *args: Any) -> None:
        if (name, reason) not in self._warned:
            self._warned.add((name, reason))
            logger.warning("monitor %s: " + message, name, *args)

    # ------------------------------------------------------------------------------ requests

    def observe(
        self, model: str, columns: Mapping[str, Any] | None, rows: int, output: Any
    ) -> None:
        """Queue an answered request's inputs (and output) for the live windows of
        ``model``; called on the request path, so it never blocks, folds or raises."""
        monitors = self._by_model.get(model)
        if not monitors or columns is None or rows <= 0:
            return
        try:
            with self._queue_lock:
                if self._pending_rows + rows > self.max_pending_rows:
                    for monitor in monitors:
                        monitor.dropped_rows += rows
                    return
                self._pending_rows += rows
                self._queue.append((monitors, int(self.clock() * 1000), columns, output, rows))
        except Exception as exc:  # a broken clock, say: never the request's problem
            self._warn(model, "observe", "a request could not be queued: %s", exc)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _work(self, *, force: bool) -> None:
        with self._fold_lock:
            with self._queue_lock:
                items, self._queue, self._pending_rows = self._queue, [], 0
            if items:
                self._fold(items)
            now = self._now_ms()
            for monitor in list(self._monitors.values()):
                with monitor.lock:
                    monitor.roll(now)
                self._evaluate(monitor, force=force)

    def _fold(self, items: list[_Item]) -> None:
        """Fold queued requests: one update per monitor, window and set of columns."""
        groups: dict[tuple[_Monitor, _Window, tuple[str, ...]], list[_Part]] = {}
        windows: dict[tuple[_Monitor, int], _Window | None] = {}
        for monitors, time_ms, columns, output, rows in items:
            names = tuple(columns)
            for monitor in monitors:
                start = time_ms - time_ms % monitor.window_ms
                if (monitor, start) in windows:
                    window = windows[monitor, start]
                else:
                    window = windows[monitor, start] = monitor.window_for(time_ms)
                if window is None:  # older than the previous window: too late to count
                    with self._queue_lock:
                        monitor.dropped_rows += rows
                    continue
                groups.setdefault((monitor, window, names), []).append((columns, output, rows))
        for (monitor, window, names), parts in groups.items():
            try:
                batch = _merge(monitor, set(names), parts)
                if batch:
                    window.sketch.update(batch)
            except Exception as exc:
                self._warn(monitor.name, "fold", "a batch could not be folded: %s", exc)

    # ------------------------------------------------------------------------------ drift

    def _evaluate(self, monitor: _Monitor, *, force: bool) -> None:
        """Compare the windows that received rows since their last evaluation (at most every
        ``refresh_seconds`` each, unless ``force``) with the reference."""
        for window in (monitor.current, monitor.previous):
            if window is None:
                continue
            result = window.result
            rows = window.sketch.num_rows
            if result is not None:
                if result["rows"] == rows:
                    continue
                if not force and time.monotonic() - window.evaluated_at < self.refresh_seconds:
                    continue
            sketch = window.sketch.copy()
            try:
                window.result = _drift(monitor, sketch)
            except Exception as exc:
                self._warn(monitor.name, "compare", "its live window cannot be compared: %s", exc)
                window.result = {**_empty_result(sketch.num_rows), "status": "error"}
            window.evaluated_at = time.monotonic()

    # ------------------------------------------------------------------------------ export

    def snapshot(self) -> list[dict[str, Any]]:
        """The live state of every monitor, JSON-ready: per monitor its current window (rows
        folded, and the latest evaluation: status, drifted features, PSI per column) and the
        previous one, and the rows dropped."""
        now = self._now_ms()
        out = []
        for monitor in list(self._monitors.values()):
            with monitor.lock:
                monitor.roll(now)
                current, previous = monitor.current, monitor.previous
            out.append(
                {
                    "monitor": monitor.name,
                    "model": monitor.model,
                    "reference": monitor.reference,
                    "window_seconds": monitor.window_ms / 1000,
                    "min_rows": monitor.min_rows,
                    "dropped_rows": monitor.dropped_rows,
                    "current": _window_state(current, monitor.window_ms),
                    "previous": None
                    if previous is None
                    else _window_state(previous, monitor.window_ms),
                }
            )
        return out


def _merge(monitor: _Monitor, names: set[str], parts: list[_Part]) -> dict[str, Any]:
    """The requests' arrays that the monitor's sketch takes, each column concatenated over
    the requests; a column that is not one value per row (2-D, ragged) is left out."""
    rows = sum(part[2] for part in parts)
    batch: dict[str, Any] = {}
    for name in monitor.columns:
        if name == monitor.target:
            arrays = [_prediction(part[1]) for part in parts]
        elif name in names:
            arrays = [part[0][name] for part in parts]
        else:
            continue
        try:
            merged = np.asarray(arrays[0]) if len(arrays) == 1 else np.concatenate(arrays)
        except (ValueError, TypeError):  # arrays of different dimensions, or no arrays
            continue
        if merged.ndim == 1 and len(merged) == rows:
            batch[name] = merged
    return batch


def _prediction(output: Any) -> Any:
    """The model's predictions in an output (an array, or a mapping with ``prediction``)."""
    return output.get("prediction") if isinstance(output, Mapping) else output


def _drift(monitor: _Monitor, sketch: WindowSketch) -> dict[str, Any]:
    """The evaluation of one window: ``insufficient_data`` below the monitor's ``min_rows``
    (as a monitor's check says), else the drift of each column against the reference."""
    from loopml.monitoring import DriftRule, compare

    result = _empty_result(sketch.num_rows)
    if sketch.num_rows < monitor.min_rows:
        return result
    drift = compare(
        monitor.profile,
        sketch,
        predictions=[monitor.target] if monitor.target else [],
        rule=DriftRule(min_rows=min(100, monitor.min_rows)),
    )
    psi = {}
    for column in drift.columns:
        value = column.measures.get("psi")
        if isinstance(value, int | float) and math.isfinite(value):
            psi[column.column] = float(value)
    result.update(
        status=drift.status,
        drifted_features=[c.column for c in drift.features if c.drifted],
        prediction_drift=drift.prediction_drift,
        psi=psi,
    )
    return result


def _empty_result(rows: int) -> dict[str, Any]:
    return {
        "rows": rows,
        "status": "insufficient_data",
        "drifted_features": [],
        "prediction_drift": False,
        "psi": {},
    }


def _window_state(window: _Window, length_ms: int) -> dict[str, Any]:
    result = window.result or {}
    return {
        "start": window.start,
        "end": window.start + length_ms,
        "rows": window.sketch.num_rows,
        "evaluated_rows": result.get("rows"),
        "status": result.get("status"),
        "drifted_features": list(result.get("drifted_features", [])),
        "prediction_drift": bool(result.get("prediction_drift", False)),
        "psi": dict(result.get("psi", {})),
    }
