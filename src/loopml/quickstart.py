"""A small, real experiment that fills a store with runs worth looking at.

:func:`run_quickstart` first versions the breast-cancer table that ships with scikit-learn
(nothing is downloaded) as the dataset ``breast-cancer``, checked against validation rules
that are attached to it, so a later version that breaks them is refused. It then trains four
scikit-learn classifiers on that exact version and tracks them with the fluent API: one parent
run, and one nested child run per model with its params, its input dataset version (lineage),
metrics (a per-step curve for the forests, which grow ten trees at a time), a confusion
matrix, feature importances and, when matplotlib is installed, a ROC-curve image.

:func:`serve_champion` is the serving stage: it serves the registered champion on a free
local port in a background thread (``loopml serve`` in this process), sends it a few hundred
single-record requests from the test split, 16 at a time, plus one request that does not fit
the model (to show the refusal), stops the server gracefully (so its prediction log is
written) and reads the metrics and the log back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml import models, registry
from loopml.entities import ModelVersion, Run
from loopml.errors import MissingDependencyError
from loopml.tracking import fluent

__all__ = [
    "ALIAS",
    "CANDIDATES",
    "DATASET",
    "MODEL",
    "STEPS",
    "Candidate",
    "ServingDemo",
    "quickstart_rules",
    "run_quickstart",
    "serve_champion",
]

SEED = 42
TEST_SIZE = 0.25
TREES_PER_STEP = 10
SOURCE = "sklearn.datasets.load_breast_cancer"
DATASET = "breast-cancer"
TARGET = "target"
MODEL = "breast-cancer-classifier"
ALIAS = "champion"


@dataclass(frozen=True)
class Candidate:
    """One model the quickstart trains: a run name, a model family and its settings."""

    name: str
    family: str  # "logistic_regression" or "random_forest"
    params: Mapping[str, Any] = field(default_factory=dict)


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("logreg-C0.01", "logistic_regression", {"C": 0.01}),
    Candidate("logreg-C1", "logistic_regression", {"C": 1.0}),
    Candidate("forest-shallow", "random_forest", {"n_estimators": 50, "max_depth": 2}),
    Candidate("forest-deep", "random_forest", {"n_estimators": 100, "max_depth": None}),
)

#: how many times :func:`run_quickstart` calls ``progress``: once to version the data, once per
#: model, once to register the best one
STEPS = 2 + len(CANDIDATES)


@dataclass(frozen=True)
class _Data:
    version: Any  # the loopml.data.DatasetVersion the models were trained on
    x_train: Any  # DataFrames: the models learn the column names (their signatures show them)
    x_test: Any
    y_train: Any
    y_test: Any
    feature_names: list[str]
    labels: list[str]


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingDependencyError.for_extra(
            "scikit-learn", "sklearn", "The quickstart"
        ) from None


def quickstart_rules(feature_names: list[str]) -> Any:
    """The rules the quickstart table must pass: every measurement present and not negative,
    the target 0 or 1, enough rows, and one cross-column check."""
    from loopml.data import Rules

    rules = Rules().rows(min=500)
    for name in feature_names:
        rules = rules.column(name, type="number", not_null=True, min=0)
    rules = rules.column(TARGET, type="integer", not_null=True, allowed=[0, 1])
    return rules.check("area_grows_with_radius", 'col("mean area") >= col("mean radius")')


def _load_data(tracking_uri: str | None) -> _Data:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    from loopml import data

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame
    features = list(bunch.feature_names)
    rules = quickstart_rules(features)
    version = data.add(
        DATASET, frame, rules=rules, description=f"from {SOURCE}", tracking_uri=tracking_uri
    )
    table = version.to_pandas()  # train on exactly what was versioned
    x_train, x_test, y_train, y_test = train_test_split(
        table[features],
        table[TARGET].to_numpy(),
        test_size=TEST_SIZE,
        random_state=SEED,
        stratify=table[TARGET].to_numpy(),
    )
    return _Data(version, x_train, x_test, y_train, y_test, features, list(bunch.target_names))


def _scores(data: _Data, probabilities: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    predicted = (probabilities >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(data.y_test, predicted)),
        "f1": float(f1_score(data.y_test, predicted)),
        "roc_auc": float(roc_auc_score(data.y_test, probabilities)),
    }


def _fit_logistic(candidate: Candidate, data: _Data) -> tuple[Any, list[float]]:
    """A scaled logistic regression, logged in one step; returns it and its coefficients."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=candidate.params["C"], max_iter=1000)
    )
    model.fit(data.x_train, data.y_train)
    fluent.log_metrics(_scores(data, model.predict_proba(data.x_test)[:, 1]), step=0)
    return model, [float(v) for v in model[-1].coef_[0]]


def _fit_forest(candidate: Candidate, data: _Data) -> tuple[Any, list[float]]:
    """A random forest grown ten trees at a time; every step logs the test scores so far."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=TREES_PER_STEP,
        max_depth=candidate.params["max_depth"],
        warm_start=True,
        random_state=SEED,
        n_jobs=1,
    )
    for trees in range(TREES_PER_STEP, candidate.params["n_estimators"] + 1, TREES_PER_STEP):
        model.set_params(n_estimators=trees)
        model.fit(data.x_train, data.y_train)
        fluent.log_metrics(_scores(data, model.predict_proba(data.x_test)[:, 1]), step=trees)
    return model, [float(v) for v in model.feature_importances_]


def _log_roc_curve(data: _Data, probabilities: Any, title: str) -> None:
    """The ROC curve as an image; skipped without matplotlib. Uses no pyplot, no backend."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(data.y_test, probabilities)
    figure = Figure(figsize=(4, 4), dpi=100)
    axes = figure.add_subplot()
    axes.plot(fpr, tpr, label=title)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    figure.tight_layout()
    fluent.log_figure(figure, "plots/roc_curve.png")


def _train(candidate: Candidate, data: _Data) -> dict[str, float]:
    """Fit one candidate inside the active run and log everything about it."""
    from sklearn.metrics import confusion_matrix

    fluent.log_params({"model": candidate.family, **_param_values(candidate.params)})
    fit = _fit_logistic if candidate.family == "logistic_regression" else _fit_forest
    model, weights = fit(candidate, data)

    probabilities = model.predict_proba(data.x_test)[:, 1]
    predicted = (probabilities >= 0.5).astype(int)
    matrix = confusion_matrix(data.y_test, predicted).tolist()
    fluent.log_dict(
        {
            "labels": data.labels,
            "rows": "true label",
            "columns": "predicted label",
            "matrix": matrix,
        },
        "confusion_matrix.json",
    )
    kind = (
        "standardized coefficient"
        if candidate.family == "logistic_regression"
        else "impurity importance"
    )
    ranked = sorted(zip(data.feature_names, weights, strict=True), key=lambda p: -abs(p[1]))
    fluent.log_dict(
        {"kind": kind, "features": [{"feature": name, "weight": w} for name, w in ranked]},
        "feature_importance.json",
    )
    _log_roc_curve(data, probabilities, candidate.name)
    models.log_model(model, "model", input_example=data.x_test.iloc[:5])
    return _scores(data, probabilities)


def _param_values(params: Mapping[str, Any]) -> dict[str, str | float | int]:
    return {key: "None" if value is None else value for key, value in params.items()}


def _register_best(
    run_id: str, name: str, scores: dict[str, float], candidates: int, tracking_uri: str | None
) -> ModelVersion:
    """Register the best child's model and point the champion alias at it."""
    version = registry.register(
        f"runs:/{run_id}/model",
        MODEL,
        description=f"{name}, the best of the quickstart's {candidates} candidates",
        tracking_uri=tracking_uri,
    )
    registry.set_alias(
        MODEL,
        ALIAS,
        version.version,
        reason=f"best test ROC AUC ({scores['roc_auc']:.4f}) of {candidates} candidates",
        tracking_uri=tracking_uri,
    )
    return version


def run_quickstart(
    experiment: str = "quickstart",
    *,
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Run]:
    """Version the data, train the :data:`CANDIDATES` as nested runs of one parent run, log
    each model, register the best as :data:`MODEL` and point its :data:`ALIAS` alias at it.

    ``progress`` is called with a short message before each of the :data:`STEPS` steps.
    Returns the finished runs: the parent first, then one child per candidate (the parent's
    tag ``registered_model`` names the registered version). Needs scikit-learn
    (``pip install 'loopml[sklearn]'``); the ROC-curve images need matplotlib.
    """
    _require_sklearn()
    report = progress or (lambda _message: None)
    report("Versioning and validating the breast cancer dataset")
    data = _load_data(tracking_uri)
    children: list[tuple[str, str, dict[str, float]]] = []
    tags = {"loopml.quickstart": "true"}
    with fluent.start_run(experiment, "quickstart", tags=tags, tracking_uri=tracking_uri) as parent:
        fluent.log_input(data.version, context="training")
        fluent.log_params(
            {
                "dataset": data.version.ref,
                "test_size": TEST_SIZE,
                "seed": SEED,
                "train_rows": len(data.y_train),
                "test_rows": len(data.y_test),
            }
        )
        for number, candidate in enumerate(CANDIDATES, start=1):
            report(f"Training {candidate.name} ({number}/{len(CANDIDATES)})")
            with fluent.start_run(
                experiment, candidate.name, nested=True, tags=tags, tracking_uri=tracking_uri
            ) as child:
                fluent.log_input(data.version, context="training")
                scores = _train(candidate, data)
            children.append((child.run_id, candidate.name, scores))
        best_id, best_name, best = max(children, key=lambda item: item[2]["roc_auc"])
        fluent.log_metrics({f"best_{key}": value for key, value in best.items()})
        fluent.log_dict(
            [{"run_id": rid, "name": name, **scores} for rid, name, scores in children],
            "leaderboard.json",
        )
        report(f"Registering {best_name} as {MODEL} and making it the {ALIAS}")
        version = _register_best(best_id, best_name, best, len(children), tracking_uri)
        fluent.set_tags(
            {
                "best_run_id": best_id,
                "best_model": best_name,
                "registered_model": f"models:/{MODEL}/{version.version}",
            }
        )
    client = parent.client
    return [client.get_run(run_id) for run_id in (parent.run_id, *(c[0] for c in children))]


# ---------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class ServingDemo:
    """What the serving stage saw."""

    url: str
    version: int | None
    requests: int
    answered: int
    accuracy: float
    p50_ms: float
    p99_ms: float
    predict_calls: int
    refusal: str
    logged_rows: int
    segments: int
    metrics: dict[str, float]
    monitor: dict[str, Any] = field(default_factory=dict)
    """The monitoring stage: the monitor's verdict on the normal traffic and on the shifted
    traffic (status, drifted features, alerts)."""


def _test_records() -> tuple[list[dict[str, float]], list[int]]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns=[TARGET])
    _, x_test, _, y_test = train_test_split(
        features,
        frame[TARGET].to_numpy(),
        test_size=TEST_SIZE,
        random_state=SEED,
        stratify=frame[TARGET].to_numpy(),
    )
    return x_test.to_dict(orient="records"), [int(y) for y in y_test]


async def _traffic(
    url: str, records: list[dict[str, float]], requests: int, concurrency: int
) -> tuple[list[tuple[int, int | None, float]], str]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> tuple[int, int | None, float]:
            async with semaphore:
                started = time.perf_counter()
                answer = await client.post(
                    f"/predict/{MODEL}", json={"records": [records[i % len(records)]]}
                )
                took = time.perf_counter() - started
            prediction = answer.json()["predictions"][0] if answer.status_code == 200 else None
            return i, prediction, took

        results = await asyncio.gather(*(one(i) for i in range(requests)))
        bad: dict[str, object] = dict(records[0])
        bad["mean radius"] = "large"
        bad.pop("worst area")
        refused = await client.post(f"/predict/{MODEL}", json={"records": [bad]})
        refusal = f"{refused.status_code}: {refused.json()['error']}"
    return list(results), refusal


def _metrics(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {
        "loopml_serving_requests_total": "requests",
        "loopml_serving_errors_total": "errors",
        "loopml_serving_batch_rows_count": "predict_calls",
        "loopml_serving_batch_rows_sum": "rows_predicted",
        "loopml_serving_prediction_log_logged_rows_total": "logged_rows",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[wanted[sample.name]] += sample.value
    return out


def serve_champion(
    *, tracking_uri: str | None = None, requests: int = 300, concurrency: int = 16
) -> ServingDemo:
    """Serve the quickstart's champion, send it ``requests`` requests and read the results
    back (see the module docstring). Needs the serve extra (``pip install
    'loopml[serve]'``)."""
    import httpx
    import numpy as np

    from loopml.serving.config import single_model_config
    from loopml.serving.factory import build_app
    from loopml.serving.local import serve_in_thread
    from loopml.serving.predlog import read_predictions
    from loopml.storage.uris import open_store

    records, labels = _test_records()
    config = single_model_config(f"models:/{MODEL}@{ALIAS}")
    app = build_app(config, tracking_uri=tracking_uri)
    started_ms = int(time.time() * 1000)
    with serve_in_thread(app) as url:
        results, refusal = asyncio.run(_traffic(url, records, requests, concurrency))
        metrics = _metrics(httpx.get(url + "/metrics").text)
        version = httpx.get(f"{url}/v2/models/{MODEL}").json()["versions"][0]
        shift_ms = int(time.time() * 1000) + 1
        time.sleep(0.002)
        asyncio.run(_traffic(url, _shifted(records), requests, concurrency))
    # the server has stopped: its prediction log is written
    store = open_store(tracking_uri)
    try:
        logged = read_predictions(store, MODEL, start=started_ms, end=shift_ms)
        segments = len(store.list_prediction_segments(MODEL, start=started_ms))  # type: ignore[attr-defined]
    finally:
        store.close()
    monitor = _monitor(tracking_uri, shift_ms)
    answered = [(i, p, t) for i, p, t in results if p is not None]
    correct = sum(1 for i, p, _ in answered if p == labels[i % len(labels)])
    latencies = np.array([t for _, _, t in answered]) * 1000
    return ServingDemo(
        url=url,
        version=int(version) if version else None,
        requests=requests,
        answered=len(answered),
        accuracy=correct / max(1, len(answered)),
        p50_ms=float(np.percentile(latencies, 50)) if len(latencies) else 0.0,
        p99_ms=float(np.percentile(latencies, 99)) if len(latencies) else 0.0,
        predict_calls=int(metrics["predict_calls"]),
        refusal=refusal,
        logged_rows=logged.num_rows,
        segments=segments,
        metrics=metrics,
        monitor=monitor,
    )


#: the features the quickstart's second batch of traffic shifts, and how
SHIFTS = {"mean radius": 1.5, "worst area": 1.8, "mean texture": 1.4}
MONITOR = "quickstart-champion"


def _shifted(records: list[dict[str, float]]) -> list[dict[str, float]]:
    """The same records with a few features scaled up: production data that drifted."""
    return [{k: v * SHIFTS.get(k, 1.0) for k, v in record.items()} for record in records]


def _monitor(tracking_uri: str | None, shift_ms: int) -> dict[str, Any]:
    """Check the served champion's prediction log against the training data: the window of
    the normal traffic, then the window that includes the shifted traffic."""
    from loopml import data, monitoring
    from loopml.errors import MonitorNotFoundError

    reference = data.get(DATASET, tracking_uri=tracking_uri).ref
    with contextlib.suppress(MonitorNotFoundError):
        monitoring.delete(MONITOR, tracking_uri=tracking_uri)  # a rerun starts afresh
    monitoring.create(
        MONITOR,
        model=MODEL,
        reference=reference,
        window="10m",
        target=TARGET,
        tracking_uri=tracking_uri,
    )
    calm = monitoring.check(MONITOR, at=shift_ms, tracking_uri=tracking_uri)
    shifted = monitoring.check(MONITOR, tracking_uri=tracking_uri)
    return {
        "name": MONITOR,
        "reference": reference,
        "shifted": sorted(SHIFTS),
        "before": {"status": calm.status, "drifted": list(calm.drifted_features)},
        "after": {
            "status": shifted.status,
            "rows": shifted.rows,
            "drifted": list(shifted.drifted_features),
            "prediction_drift": shifted.prediction_drift,
            "alerts": [a["reason"] for a in shifted.alerts],
        },
    }
