"""Evaluating a model on labelled data, and comparing two models on one metric.

::

    result = loopml.models.evaluate("models:/churn@champion", (X_test, y_test))
    result.metrics["roc_auc"]            # also logged to the active run as eval_roc_auc
    verdict = loopml.models.compare("models:/churn@champion", "runs:/<id>/model", (X, y))
    verdict.better                        # "a", "b" or "tie"

:func:`evaluate` computes scikit-learn's metrics for a classifier (accuracy, precision, recall,
F1, ROC AUC and log loss where the model has ``predict_proba``, the confusion matrix) or a
regressor (MAE, RMSE, R2, MAPE) and, inside a run, logs them in one batch at step 0 with the
artifacts under ``evaluation/`` (``metrics.json``, ``confusion_matrix.json`` and, with
matplotlib, PNG plots drawn on a :class:`matplotlib.figure.Figure`, never through pyplot).

:func:`compare` evaluates two models on the same rows and picks the better one on one metric,
knowing which direction is better: it is the promotion gate of the automated loop, so it is
deterministic (the same models and data always give the same verdict).

scikit-learn (``loopml[sklearn]``) and matplotlib (``loopml[plots]``) are imported only when
this module is used.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loopml.entities import Metric
from loopml.errors import InvalidArgumentError
from loopml.models._evaluation_data import (
    ARTIFACT_FOLDER,
    TASKS,
    _artifact_folder,
    _bad,
    _check_prefix,
    _check_task,
    _check_threshold,
    _Data,
    _is_numeric,
    _one_column,
    _parse_data,
    _sklearn_metrics,
)
from loopml.models._evaluation_plots import _figures
from loopml.models._loading import load
from loopml.models.loaded import LoadedModel
from loopml.storage.context import RunContext, active_runs, current_run
from loopml.storage.protocols import TrackingStore
from loopml.storage.uris import open_store
from loopml.storage.validation import validate_run_id

__all__ = [
    "ARTIFACT_FOLDER",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "MAX_CLASSES",
    "MODEL_TAG",
    "TASKS",
    "TASK_TAG",
    "TIE_TOLERANCE",
    "Comparison",
    "EvaluationResult",
    "compare",
    "evaluate",
]

MAX_CLASSES = 20
"""Integer, boolean or string targets with at most this many distinct values (and a model
with ``predict_proba``) are inferred to be a classification task."""
TIE_TOLERANCE = 1e-12
MODEL_TAG = "loopml.evaluation.model"
TASK_TAG = "loopml.evaluation.task"
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "log_loss"})
HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "roc_auc_ovr",
        "r2",
    }
)
_DEFAULT_METRICS = {
    "classification": ("roc_auc", "roc_auc_ovr", "f1", "f1_macro", "accuracy"),
    "regression": ("rmse",),
}
_NOT_ASKED: Any = object()
Uri = str | os.PathLike[str]


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` found.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        metrics: Metric name (without the logging prefix) to value.
        confusion_matrix: Rows are true labels, columns predicted labels, in the order of
            ``labels`` (classification only).
        labels: Every class seen in the targets, the predictions or the model, sorted.
        artifacts: The run's artifact paths written (empty when nothing was logged).
        run_id: The run logged into, or ``None``.
        model_uri: The URI the model was given as (or loaded from).
        rows: How many rows were evaluated.
        notes: What was inferred, skipped or changed, in words.
        task_inferred: True when ``task`` was inferred rather than given.
        package_digest: The digest of the exact model package evaluated.
    """

    task: str
    metrics: dict[str, float]
    confusion_matrix: list[list[int]] | None
    labels: list[Any] | None
    artifacts: list[str]
    run_id: str | None
    model_uri: str
    rows: int
    notes: tuple[str, ...]
    task_inferred: bool = False
    package_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_inferred": self.task_inferred,
            "model_uri": self.model_uri,
            "package_digest": self.package_digest,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "confusion_matrix": _copy_matrix(self.confusion_matrix),
            "labels": None if self.labels is None else list(self.labels),
            "artifacts": list(self.artifacts),
            "run_id": self.run_id,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Comparison:
    """Two models compared on one metric by :func:`compare`.

    ``difference`` is ``b_value - a_value``; ``better`` is ``"tie"`` when its magnitude is at
    most :data:`TIE_TOLERANCE`. A NaN value never wins (two NaNs tie).
    """

    metric: str
    a_value: float
    b_value: float
    difference: float
    better: Literal["a", "b", "tie"]
    higher_is_better: bool
    a: EvaluationResult
    b: EvaluationResult

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "a_value": self.a_value,
            "b_value": self.b_value,
            "difference": self.difference,
            "better": self.better,
            "higher_is_better": self.higher_is_better,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
        }


def _copy_matrix(matrix: list[list[int]] | None) -> list[list[int]] | None:
    return None if matrix is None else [list(row) for row in matrix]


# -- models and their outputs -----------------------------------------------------------------


class _Outputs:
    """One model's predictions on the data; probabilities asked for on first use."""

    def __init__(self, model: Any, data: _Data, trusted: bool, tracking_uri: Any, name: str):
        self.model, self.uri = _resolve_model(model, trusted, tracking_uri, name)
        self.field = name
        self._data = data
        self.predictions = _one_column(
            self.model.predict(data.features), "predictions", data.rows, name
        )
        self._probabilities: Any = _NOT_ASKED

    @property
    def classes(self) -> list[Any] | None:
        import numpy as np

        classes = getattr(self.model.raw, "classes_", None)
        return None if classes is None else np.asarray(classes).tolist()

    def probabilities(self) -> Any:
        """``predict_proba``'s array, or ``None`` when the model has none."""
        if self._probabilities is _NOT_ASKED:
            try:
                self._probabilities = self.model.predict_proba(self._data.features)
            except InvalidArgumentError as exc:
                if exc.details.get("field") != "predict_proba":
                    raise
                self._probabilities = None
        return self._probabilities


def _resolve_model(model: Any, trusted: bool, tracking_uri: Any, name: str) -> tuple[Any, str]:
    if isinstance(model, LoadedModel):
        return model, model.uri
    if isinstance(model, str | os.PathLike):
        return load(model, trusted=trusted, tracking_uri=tracking_uri), os.fspath(model)
    raise _bad(
        name,
        f"{name} must be a model URI (runs:/..., models:/..., a saved folder) or a model "
        f"from loopml.models.load(). Got {type(model).__name__}.",
    )


def _describe_targets(y: Any) -> tuple[str, bool]:
    """A few words about the targets and whether they look like class labels."""
    kind = y.dtype.kind
    if kind in "fc" or kind not in "biuUSO":
        return f"{y.dtype} targets", False
    distinct = len(set(y.tolist()))
    word = {"b": "boolean", "i": "integer", "u": "integer"}.get(kind, "string")
    values = "value" if distinct == 1 else "values"
    return f"{word} targets with {distinct} distinct {values}", distinct <= MAX_CLASSES


def _infer_task(y: Any, outputs: list[_Outputs]) -> tuple[str, str]:
    """The task and a note saying why (see :data:`MAX_CLASSES`)."""
    described, looks_discrete = _describe_targets(y)
    if not _is_numeric(y):
        return "classification", f"task inferred as classification: {described}"
    if not looks_discrete:
        return "regression", f"task inferred as regression: {described}"
    if any(o.probabilities() is not None for o in outputs):
        return "classification", (
            f"task inferred as classification: {described} and a model with predict_proba"
        )
    return "regression", (
        f"task inferred as regression: {described}, but no model has predict_proba"
    )


def _check_fits_task(task: str, y: Any, field_name: str) -> None:
    import numpy as np

    if task == "regression" and not _is_numeric(y):
        raise _bad(field_name, f"Regression needs numeric targets. Got {y.dtype} targets.")
    if task == "classification" and y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise _bad(
            field_name,
            "Classification needs class labels; the targets are continuous numbers. "
            "Use task='regression'.",
        )


# -- metrics ----------------------------------------------------------------------------------


@dataclass
class _Scores:
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    matrix: list[list[int]] | None = None
    labels: list[Any] | None = None
    predictions: Any = None
    positive: Any = None  # the binary positive class and its probabilities
    positive_scores: Any = None
    inferred: bool = False  # the task was inferred (the first note says why)


def _labels(y: Any, outputs: _Outputs) -> list[Any]:
    import numpy as np

    predictions = outputs.predictions
    if predictions.dtype.kind == "f" and not np.all(np.mod(predictions, 1) == 0):
        raise _bad(
            outputs.field,
            "The model predicts continuous values, not class labels. Use task='regression'.",
        )
    if _is_numeric(y) != _is_numeric(predictions):
        raise _bad(
            outputs.field,
            f"The model predicts {predictions.dtype} labels but the targets are {y.dtype}; "
            "they cannot be compared.",
        )
    values = set(y.tolist()) | set(predictions.tolist()) | set(outputs.classes or ())
    try:
        return sorted(values)
    except TypeError:
        raise _bad(
            "data", "The class labels mix types (strings and numbers) and cannot be ordered."
        ) from None


def _classification(
    sk: Any, data: _Data, outputs: _Outputs, threshold: float, scores: _Scores
) -> None:
    import numpy as np

    y = data.targets
    labels = _labels(y, outputs)
    scores.labels = labels
    proba, classes = _usable_probabilities(outputs, data.rows, labels, scores.notes)
    predictions = outputs.predictions
    binary = len(labels) <= 2
    if binary and proba is not None and labels[-1] in classes:
        scores.positive = labels[-1]
        scores.positive_scores = proba[:, classes.index(labels[-1])]
        if threshold != 0.5 and len(labels) == 2:
            predictions = np.where(scores.positive_scores >= threshold, labels[-1], labels[0])
            scores.notes.append(
                f"predictions: {labels[-1]!r} where its probability >= {threshold:g}"
            )
    elif threshold != 0.5:
        scores.notes.append("threshold ignored: it applies to binary models with predict_proba")
    scores.predictions = predictions
    m = scores.metrics
    m["accuracy"] = float(sk.accuracy_score(y, predictions))
    if binary:
        options: dict[str, Any] = {"pos_label": labels[-1], "zero_division": 0}
        suffix = ""
    else:
        options, suffix = {"average": "macro", "zero_division": 0}, "_macro"
    m[f"precision{suffix}"] = float(sk.precision_score(y, predictions, **options))
    m[f"recall{suffix}"] = float(sk.recall_score(y, predictions, **options))
    m[f"f1{suffix}"] = float(sk.f1_score(y, predictions, **options))
    if proba is not None:
        _probability_metrics(sk, y, proba, classes, scores, binary)
    scores.matrix = sk.confusion_matrix(y, predictions, labels=labels).tolist()


def _usable_probabilities(
    outputs: _Outputs, rows: int, labels: list[Any], notes: list[str]
) -> tuple[Any, list[Any]]:
    """``predict_proba``'s array and the class of each column, or ``(None, [])``."""
    import numpy as np

    raw = outputs.probabilities()
    if raw is None:
        notes.append("probability metrics skipped: the model has no predict_proba")
        return None, []
    proba = np.asarray(raw, dtype=float)
    classes = outputs.classes or labels
    if proba.ndim != 2 or proba.shape != (rows, len(classes)):
        notes.append(
            f"probability metrics skipped: predict_proba returned shape {proba.shape}, "
            f"expected ({rows}, {len(classes)})"
        )
        return None, []
    if not np.all(np.isfinite(proba)):
        notes.append("probability metrics skipped: predict_proba returned non-finite values")
        return None, []
    return proba, classes


def _probability_metrics(
    sk: Any, y: Any, proba: Any, classes: list[Any], scores: _Scores, binary: bool
) -> None:
    present = set(y.tolist())
    name = "roc_auc" if binary else "roc_auc_ovr"
    if binary and scores.positive is not None and len(present) == 2:
        scores.metrics[name] = float(sk.roc_auc_score(y == scores.positive, scores.positive_scores))
    elif not binary and present == set(classes):
        _guarded(
            scores,
            name,
            lambda: sk.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes),
        )
    else:
        scores.notes.append(f"{name} skipped: it needs every class of the model among the targets")
    if present <= set(classes):
        _guarded(scores, "log_loss", lambda: sk.log_loss(y, proba, labels=classes))
    else:
        scores.notes.append("log_loss skipped: some targets are not classes of the model")


def _guarded(scores: _Scores, name: str, compute: Any) -> None:
    try:
        scores.metrics[name] = float(compute())
    except ValueError as exc:
        scores.notes.append(f"{name} skipped: {exc}")


def _regression(sk: Any, data: _Data, outputs: _Outputs, scores: _Scores) -> None:
    import numpy as np

    y = data.targets.astype(float)
    predictions = outputs.predictions
    if not _is_numeric(predictions):
        raise _bad(outputs.field, f"Regression needs numeric predictions. Got {predictions.dtype}.")
    predictions = predictions.astype(float)
    if not np.all(np.isfinite(predictions)):
        bad = int(np.sum(~np.isfinite(predictions)))
        raise _bad(outputs.field, f"The model predicted {bad} non-finite values (NaN or inf).")
    scores.predictions = predictions
    m = scores.metrics
    m["mae"] = float(sk.mean_absolute_error(y, predictions))
    m["rmse"] = float(math.sqrt(sk.mean_squared_error(y, predictions)))
    if data.rows >= 2:
        m["r2"] = float(sk.r2_score(y, predictions))
    else:
        scores.notes.append("r2 skipped: it needs at least 2 rows")
    zeros = int(np.sum(y == 0))
    if zeros:
        scores.notes.append(f"mape skipped: {zeros} of {data.rows} targets are 0")
    else:
        m["mape"] = float(sk.mean_absolute_percentage_error(y, predictions))


def _score(
    task: str, data: _Data, outputs: _Outputs, threshold: float, inferred: str | None
) -> _Scores:
    sk = _sklearn_metrics()
    scores = _Scores(inferred=inferred is not None)
    if inferred is not None:
        scores.notes.append(inferred)
    if task == "classification":
        _classification(sk, data, outputs, threshold, scores)
    else:
        _regression(sk, data, outputs, scores)
    return scores


# -- logging ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    store: TrackingStore
    run_id: str
    active: tuple[RunContext, ...]  # the active runs with this run id (their buffers flushed)


def _log_target(run_id: Any, tracking_uri: Any) -> _Target | None:
    """Where to log: ``run_id``, else the active run, else nowhere."""
    if run_id is None:
        run = current_run()
        return None if run is None else _Target(run.store, run.run_id, (run,))
    run_id = validate_run_id(run_id)
    matching = tuple(run for run in active_runs() if run.run_id == run_id)
    reuse = tracking_uri is None and matching
    store = matching[-1].store if reuse else open_store(tracking_uri)
    store.get_run(run_id)  # RunNotFoundError before any work
    return _Target(store, run_id, matching)


def _write_files(
    folder: Path, task: str, data: _Data, outputs: _Outputs, scores: _Scores, plots: bool
) -> list[str]:
    """Write the artifacts into ``folder``; return their file names."""
    names = []
    if plots:
        try:
            figures = _figures(task, data, scores)
        except ImportError:
            scores.notes.append("plots skipped: matplotlib is not installed (loopml[plots])")
            figures = []
        for name, figure in figures:
            figure.savefig(folder / name, format="png")
            names.append(name)
    if scores.matrix is not None:
        matrix = {
            "labels": scores.labels,
            "rows": "true label",
            "columns": "predicted label",
            "matrix": scores.matrix,
        }
        _write_json(folder / "confusion_matrix.json", matrix)
        names.append("confusion_matrix.json")
    _write_json(folder / "metrics.json", _summary(task, data, outputs, scores))
    names.append("metrics.json")
    return sorted(names)


def _write_json(path: Path, body: Any) -> None:
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False, allow_nan=True), "utf-8")


def _log(
    target: _Target,
    task: str,
    data: _Data,
    outputs: _Outputs,
    scores: _Scores,
    prefix: str,
    plots: bool,
) -> list[str]:
    """Artifacts first, then metrics and tags in one batch, so metrics never appear
    without their artifacts."""
    for run in target.active:
        run.flush()
    paths = []
    with tempfile.TemporaryDirectory(prefix="loopml-evaluate-") as tmp:
        for name in _write_files(Path(tmp), task, data, outputs, scores, plots):
            path = f"{_artifact_folder(prefix)}/{name}"
            target.store.put_artifact(target.run_id, path, Path(tmp, name))
            paths.append(path)
    now = int(time.time() * 1000)
    points = [Metric(f"{prefix}{key}", value, now, 0) for key, value in scores.metrics.items()]
    tags = {MODEL_TAG: outputs.uri, TASK_TAG: task}
    target.store.log_batch(target.run_id, metrics=points, tags=tags)
    return paths


# -- the API ----------------------------------------------------------------------------------


def evaluate(
    model: Uri | LoadedModel,
    data: Any,
    *,
    task: str | None = None,
    targets: Any = None,
    run_id: str | None = None,
    tracking_uri: Uri | None = None,
    prefix: str = "eval_",
    trusted: bool = False,
    log: bool = True,
    plots: bool = True,
    threshold: float = 0.5,
) -> EvaluationResult:
    """Evaluate ``model`` on labelled ``data``; log the results into a run.

    Args:
        model: A model URI (``runs:/<run id>/<path>``, ``models:/<name>/<version>``,
            ``models:/<name>@<alias>``, a saved folder) or a model from
            :func:`loopml.models.load`.
        data: A tuple ``(X, y)``, or a pandas DataFrame with ``targets`` naming the target
            column (the other columns are the features).
        task: ``"classification"`` or ``"regression"``; ``None`` infers it: integer, boolean
            or string targets with at most :data:`MAX_CLASSES` distinct values and a model
            with ``predict_proba`` are a classification (any non-numeric targets too), the rest
            a regression. The result's notes say what was inferred and why.
        targets: The target column of a DataFrame ``data``.
        run_id: The run to log into; ``None`` logs into the active run, or nowhere without one.
        tracking_uri: The store holding ``run_id`` and a ``runs:/``/``models:/`` model.
        prefix: Prepended to each metric name when logged (``eval_accuracy``...).
        trusted: Passed to :func:`loopml.models.load` (allow pickled models).
        log: False computes everything and logs nothing.
        plots: Draw PNG plots among the artifacts (needs matplotlib; skipped without it).
        threshold: For a binary classifier with ``predict_proba``: predict the positive
            (larger) class where its probability is at least this. At 0.5 (the default) the
            model's own ``predict`` is used.

    Metrics: classification: ``accuracy``, ``precision``, ``recall``, ``f1`` (binary, the
    positive class is the larger label) or ``precision_macro``, ``recall_macro``,
    ``f1_macro`` (multiclass); with probabilities ``roc_auc`` (binary) or ``roc_auc_ovr``
    (one-vs-rest, macro) and ``log_loss``. Regression: ``mae``, ``rmse``, ``r2``, ``mape``
    (skipped when a target is 0).

    Logged (into a run): the metrics, ``prefix``-ed, in one batch at step 0; the tags
    :data:`MODEL_TAG` and :data:`TASK_TAG`; the artifacts ``evaluation/metrics.json``,
    ``evaluation/confusion_matrix.json`` and the plots ``confusion_matrix.png`` and
    ``calibration.png`` (binary, with probabilities) or ``residuals.png`` and
    ``predicted_vs_actual.png``. With another ``prefix`` the files go under
    ``evaluation/<prefix>/`` instead (``evaluation/val/`` for ``"val_"``), so that several
    evaluations logged into one run keep theirs; evaluating again with the same prefix
    replaces the files of the same name.

    Raises:
        InvalidArgumentError: bad input; ``field`` names it (``data``, ``targets``, ``task``,
            ``model``, ``threshold``, ``prefix``, ``run_id``).
        MissingDependencyError: scikit-learn is not installed.
        RunNotFoundError: ``run_id`` names no run.
    """
    chosen = _check_task(task)
    threshold = _check_threshold(threshold)
    prefix = _check_prefix(prefix)
    _sklearn_metrics()
    parsed = _parse_data(data, targets)
    target = _log_target(run_id, tracking_uri) if log else None
    outputs = _Outputs(model, parsed, trusted, tracking_uri, "model")
    chosen, inferred = _decide_task(chosen, parsed.targets, [outputs])
    scores = _score(chosen, parsed, outputs, threshold, inferred)
    if target is None:
        if log:
            scores.notes.append("not logged: no run_id was given and no run is active")
        return _result(chosen, parsed, outputs, scores, [], None)
    paths = _log(target, chosen, parsed, outputs, scores, prefix, plots)
    return _result(chosen, parsed, outputs, scores, paths, target.run_id)


def _decide_task(
    task: str | None, y: Any, outputs: list[_Outputs], field_name: str = "task"
) -> tuple[str, str | None]:
    """The task and, when it was inferred, a note saying why."""
    if task is not None:
        _check_fits_task(task, y, field_name)
        return task, None
    return _infer_task(y, outputs)


def _result(
    task: str,
    data: _Data,
    outputs: _Outputs,
    scores: _Scores,
    artifacts: list[str],
    run_id: str | None,
) -> EvaluationResult:
    return EvaluationResult(
        task=task,
        metrics=dict(scores.metrics),
        confusion_matrix=scores.matrix,
        labels=scores.labels,
        artifacts=list(artifacts),
        run_id=run_id,
        model_uri=outputs.uri,
        rows=data.rows,
        notes=tuple(scores.notes),
        task_inferred=scores.inferred,
        package_digest=outputs.model.package_digest,
    )


def _summary(task: str, data: _Data, outputs: _Outputs, scores: _Scores) -> dict[str, Any]:
    """The body of ``evaluation/metrics.json``."""
    return {
        "task": task,
        "task_inferred": scores.inferred,
        "model_uri": outputs.uri,
        "package_digest": outputs.model.package_digest,
        "rows": data.rows,
        "metrics": dict(scores.metrics),
        "notes": list(scores.notes),
    }


def compare(
    model_a: Uri | LoadedModel,
    model_b: Uri | LoadedModel,
    data: Any,
    *,
    task: str | None = None,
    metric: str | None = None,
    targets: Any = None,
    trusted: bool = False,
    tracking_uri: Uri | None = None,
    higher_is_better: bool | None = None,
) -> Comparison:
    """Evaluate two models on the same ``data`` (nothing is logged) and say which is better.

    Args:
        model_a, model_b: Model URIs or loaded models, as for :func:`evaluate`.
        data, targets, trusted, tracking_uri: As for :func:`evaluate`.
        task: As for :func:`evaluate`; when inferred, both models get the same task (a
            classification if the targets look like labels and either model has
            ``predict_proba``).
        metric: The metric to decide on (a name from :func:`evaluate`, without prefix).
            Default: ``roc_auc`` (``roc_auc_ovr`` for multiclass) where both models have
            probabilities, else ``f1`` (``f1_macro``); ``rmse`` for a regression.
        higher_is_better: The direction for a metric loopml does not know. Known metrics
            have a fixed direction (lower is better for :data:`LOWER_IS_BETTER`, higher for
            :data:`HIGHER_IS_BETTER`); contradicting it is an error.

    Returns:
        A :class:`Comparison`: ``better`` is ``"a"``, ``"b"`` or ``"tie"`` (the values differ
        by at most :data:`TIE_TOLERANCE`).

    Raises:
        InvalidArgumentError: bad input (``field`` names it: ``data``, ``targets``, ``task``,
            ``model_a``, ``model_b``, ``metric``, ``higher_is_better``); a ``metric`` that is
            not available for both models (the message lists those that are).
    """
    chosen = _check_task(task)
    if metric is not None and not isinstance(metric, str):
        raise _bad("metric", f"metric must be a metric name. Got {type(metric).__name__}.")
    if higher_is_better is not None and not isinstance(higher_is_better, bool):
        raise _bad("higher_is_better", "higher_is_better must be True, False or None.")
    _sklearn_metrics()
    parsed = _parse_data(data, targets)
    outputs = [
        _Outputs(model, parsed, trusted, tracking_uri, name)
        for model, name in ((model_a, "model_a"), (model_b, "model_b"))
    ]
    chosen, inferred = _decide_task(chosen, parsed.targets, outputs)
    a, b = (
        _result(chosen, parsed, o, _score(chosen, parsed, o, 0.5, inferred), [], None)
        for o in outputs
    )
    name = _pick_metric(chosen, metric, a, b)
    higher = _direction(name, higher_is_better)
    a_value, b_value = a.metrics[name], b.metrics[name]
    return Comparison(
        metric=name,
        a_value=a_value,
        b_value=b_value,
        difference=b_value - a_value,
        better=_verdict(a_value, b_value, higher),
        higher_is_better=higher,
        a=a,
        b=b,
    )


def _pick_metric(task: str, metric: str | None, a: EvaluationResult, b: EvaluationResult) -> str:
    available = [name for name in a.metrics if name in b.metrics]
    if metric is None:
        for name in _DEFAULT_METRICS[task]:
            if name in available:
                return name
        metric = _DEFAULT_METRICS[task][-1]
    if metric not in available:
        raise _bad(
            "metric",
            f"The metric {metric!r} is not available for both models of this {task}. "
            f"Available: {', '.join(sorted(available))}.",
        )
    return metric


def _direction(metric: str, higher_is_better: bool | None) -> bool:
    known = True if metric in HIGHER_IS_BETTER else False if metric in LOWER_IS_BETTER else None
    if known is None:
        return True if higher_is_better is None else higher_is_better
    if higher_is_better is not None and higher_is_better != known:
        raise _bad(
            "higher_is_better",
            f"For {metric!r} {'higher' if known else 'lower'} is better; "
            f"higher_is_better={higher_is_better} contradicts it. Leave it out.",
        )
    return known


def _verdict(a_value: float, b_value: float, higher: bool) -> Literal["a", "b", "tie"]:
    """Which value is better; a NaN never wins, two NaNs tie."""
    if math.isnan(a_value) or math.isnan(b_value):
        if math.isnan(a_value) and math.isnan(b_value):
            return "tie"
        return "b" if math.isnan(a_value) else "a"
    if a_value == b_value:  # also two equal infinities
        return "tie"
    difference = b_value - a_value
    if abs(difference) <= TIE_TOLERANCE:
        return "tie"
    return "b" if (difference > 0) == higher else "a"
