"""The MLflow side of benchmarks/models.py; runs in benchmarks/.venvs/mlflow, never in loopml's.

Usage: ``python _mlflow_models_worker.py '{"op": "steps", "dir": "/tmp/x", "warm": 20}'``

It mirrors ``_loopml_models_worker.py`` function by function: the same scikit-learn model on the
same data, a fresh SQLite store (``sqlite:///<dir>/mlflow.db``) and a local artifact folder.
Imports, the store's creation and the fit happen before any clock starts. Progress goes to
stderr; the JSON result is the last line on stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

EXPERIMENT = "bench"
MODEL_NAME = "churn"
MODEL_URI = f"models:/{MODEL_NAME}/1"


def _say(message: str) -> None:
    print(f"[mlflow models worker] {message}", file=sys.stderr, flush=True)


def _import_serializer() -> None:
    """Import skops (both sides save scikit-learn models with it) before any clock starts,
    like the frameworks themselves: its import walks every scikit-learn module (and, where
    torch is installed, imports torch), a one-off cost per process that is not the tool's."""
    import skops.io  # noqa: F401


def _fit() -> tuple[Any, Any, float]:
    """The model both sides log: a random forest on the breast-cancer features (a DataFrame)."""
    _import_serializer()
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    start = time.perf_counter()
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    return model, X, time.perf_counter() - start


def _digest(predictions: Any) -> str:
    """Hash of the predictions' values, dtype and shape: equal hashes, identical arrays."""
    array = np.ascontiguousarray(np.asarray(predictions))
    head = f"{array.dtype.str}|{array.shape}|".encode()
    return hashlib.sha256(head + array.tobytes()).hexdigest()[:16]


def _store(folder: Path) -> None:
    """A fresh store; creating the experiment also creates MLflow's tables (untimed)."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    artifacts = (folder / "artifacts").as_uri()
    experiment_id = MlflowClient().create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(experiment_id=experiment_id)


# MLflow 3.17 saves scikit-learn models with skops by default and refuses a random forest
# unless its tree type is trusted: the error message tells users to pass exactly this.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


def _log(model: Any, X: Any, requirements: list[str] | None) -> Any:
    """``pip_requirements=None`` is MLflow's default: it infers the requirements."""
    return mlflow.sklearn.log_model(
        model,
        name="model",
        input_example=X.iloc[:5],
        pip_requirements=requirements,
        skops_trusted_types=TRUSTED_TYPES,
    )


def steps(folder: Path, warm: int) -> dict[str, Any]:
    """log_model, register, cold load, first predict and ``warm`` warm loads, each timed."""
    model, X, fit_s = _fit()
    reference = _digest(model.predict(X))
    _store(folder)
    with mlflow.start_run() as run:
        start = time.perf_counter()
        info = _log(model, X, None)
        log_s = time.perf_counter() - start
        closing = time.perf_counter()
    end_run_s = time.perf_counter() - closing  # untimed in the table; reported in the JSON
    _say(f"log_model {log_s:.3f}s ({info.model_uri})")

    start = time.perf_counter()
    version = mlflow.register_model(info.model_uri, MODEL_NAME)
    register_s = time.perf_counter() - start

    start = time.perf_counter()
    loaded = mlflow.pyfunc.load_model(MODEL_URI)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    predictions = loaded.predict(X)
    predict_s = time.perf_counter() - start

    warm_s = []
    again = loaded
    for _ in range(warm):
        start = time.perf_counter()
        again = mlflow.pyfunc.load_model(MODEL_URI)
        warm_s.append(time.perf_counter() - start)
    warm_predictions = again.predict(X)  # untimed: the warm load gives the same model
    return {
        "seconds": {
            "log": log_s,
            "register": register_s,
            "load": load_s,
            "predict": predict_s,
            "warm_load": statistics.median(warm_s) if warm_s else None,
        },
        "warm_s": warm_s,
        "fit_s": fit_s,
        "end_run_s": end_run_s,
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "version": int(version.version),
        "reference": reference,
        "predictions": _digest(predictions),
        "warm_predictions": _digest(warm_predictions) if warm else None,
        "prediction_type": type(predictions).__name__,
    }


def block(folder: Path) -> dict[str, Any]:
    """start_run + log_model + end, register, load and predict, timed as one block."""
    model, X, fit_s = _fit()
    reference = _digest(model.predict(X))
    _store(folder)
    start = time.perf_counter()
    with mlflow.start_run():
        info = _log(model, X, None)
    version = mlflow.register_model(info.model_uri, MODEL_NAME)
    predictions = mlflow.pyfunc.load_model(MODEL_URI).predict(X)
    total_s = time.perf_counter() - start
    return {
        "seconds": {"block": total_s},
        "fit_s": fit_s,
        "version": int(version.version),
        "reference": reference,
        "predictions": _digest(predictions),
    }


def log_given(folder: Path) -> dict[str, Any]:
    """log_model with ``pip_requirements`` given, which skips MLflow's requirement inference."""
    model, X, fit_s = _fit()
    requirements = mlflow.sklearn.get_default_pip_requirements(include_skops=True)
    _store(folder)
    with mlflow.start_run():
        start = time.perf_counter()
        info = _log(model, X, requirements)
        log_s = time.perf_counter() - start
    loaded = mlflow.pyfunc.load_model(info.model_uri)  # untimed: what got logged works
    return {
        "seconds": {"log_given": log_s},
        "fit_s": fit_s,
        "requirements": requirements,
        "reference": _digest(model.predict(X)),
        "predictions": _digest(loaded.predict(X)),
    }


def info(folder: Path) -> dict[str, Any]:
    import pandas

    return {
        "python": platform.python_version(),
        "mlflow": mlflow.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "log_model_has_name": "name" in _parameters(mlflow.sklearn.log_model),
    }


def _parameters(function: Callable[..., Any]) -> list[str]:
    import inspect

    return list(inspect.signature(function).parameters)


OPS: dict[str, Callable[..., dict[str, Any]]] = {
    "steps": steps,
    "block": block,
    "log_given": log_given,
    "info": info,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    params = {k: v for k, v in spec.items() if k not in ("op", "dir")}
    result = OPS[spec["op"]](Path(spec["dir"]), **params)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
