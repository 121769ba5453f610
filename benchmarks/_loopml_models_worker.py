"""The loopml side of benchmarks/models.py: one measurement per process, JSON on stdout.

Usage: ``python _loopml_models_worker.py '{"op": "steps", "dir": "/tmp/x", "warm": 20}'``

It mirrors ``_mlflow_models_worker.py`` function by function: the same scikit-learn model on the
same data, a fresh store (SQLite + blobs in ``<dir>/store``; the driver points
``LOOPML_CACHE_DIR`` at a fresh folder too). Imports, the store's creation and the fit happen
before any clock starts. Progress goes to stderr; the JSON result is the last line on stdout.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

import loopml

EXPERIMENT = "bench"
MODEL_NAME = "churn"
MODEL_URI = f"models:/{MODEL_NAME}/1"


def _say(message: str) -> None:
    print(f"[loopml models worker] {message}", file=sys.stderr, flush=True)


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
    """A fresh store with the experiment in it (untimed), like MLflow's side."""
    loopml.set_tracking_uri(folder / "store")
    loopml.Client().get_or_create_experiment(EXPERIMENT)


def _api() -> tuple[Any, Any]:
    import loopml.models
    import loopml.registry

    return loopml.models, loopml.registry


def steps(folder: Path, warm: int) -> dict[str, Any]:
    """log_model, register, cold load, first predict and ``warm`` warm loads, each timed."""
    models, registry = _api()
    model, X, fit_s = _fit()
    reference = _digest(model.predict(X))
    _store(folder)
    with loopml.start_run(experiment=EXPERIMENT) as run:
        start = time.perf_counter()
        info = models.log_model(model, "model", input_example=X.iloc[:5])
        log_s = time.perf_counter() - start
        closing = time.perf_counter()
    end_run_s = time.perf_counter() - closing  # untimed in the table; reported in the JSON
    _say(f"log_model {log_s:.3f}s ({info.uri})")

    start = time.perf_counter()
    version = registry.register(info.uri, MODEL_NAME)
    register_s = time.perf_counter() - start

    start = time.perf_counter()
    loaded = models.load(MODEL_URI)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    predictions = loaded.predict(X)
    predict_s = time.perf_counter() - start

    warm_s = []
    again = loaded
    for _ in range(warm):
        start = time.perf_counter()
        again = models.load(MODEL_URI)
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
        "run_id": run.run_id,
        "model_uri": info.uri,
        "version": int(version.version),
        "reference": reference,
        "predictions": _digest(predictions),
        "warm_predictions": _digest(warm_predictions) if warm else None,
        "prediction_type": type(predictions).__name__,
    }


def block(folder: Path) -> dict[str, Any]:
    """start_run + log_model + end, register, load and predict, timed as one block."""
    models, registry = _api()
    model, X, fit_s = _fit()
    reference = _digest(model.predict(X))
    _store(folder)
    start = time.perf_counter()
    with loopml.start_run(experiment=EXPERIMENT):
        info = models.log_model(model, "model", input_example=X.iloc[:5])
    version = registry.register(info.uri, MODEL_NAME)
    predictions = models.load(MODEL_URI).predict(X)
    total_s = time.perf_counter() - start
    return {
        "seconds": {"block": total_s},
        "fit_s": fit_s,
        "version": int(version.version),
        "reference": reference,
        "predictions": _digest(predictions),
    }


def info(folder: Path) -> dict[str, Any]:
    import pandas

    found: dict[str, Any] = {
        "python": platform.python_version(),
        "loopml": loopml.__version__,
        "loopml_file": loopml.__file__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
    }
    missing = []
    try:
        models, registry = _api()
        for module, name in ((models, "log_model"), (models, "load"), (registry, "register")):
            if not callable(getattr(module, name, None)):
                missing.append(f"{module.__name__}.{name}")
    except Exception as exc:  # report, do not fail: the driver decides what it needs
        missing.append(f"{type(exc).__name__}: {exc}")
    found["api_error"] = f"missing {', '.join(missing)}" if missing else None
    return found


OPS: dict[str, Callable[..., dict[str, Any]]] = {
    "steps": steps,
    "block": block,
    "info": info,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    params = {k: v for k, v in spec.items() if k not in ("op", "dir")}
    result = OPS[spec["op"]](Path(spec["dir"]), **params)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
