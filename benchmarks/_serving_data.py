"""The models and rows that benchmarks/serving.py serves, shared by the driver and every worker.

It needs scikit-learn and numpy only (no loopml, no peer), so every virtualenv can import it:
each tool's worker loads the fitted models the driver dumped with joblib, saves them in the
tool's own format and checks that they still predict :func:`reference` on every row.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MODEL_KINDS = ("lr", "rf")
MODEL_TITLES = {
    "lr": "LogisticRegression(max_iter=10000)",
    "rf": "RandomForestClassifier(n_estimators=100)",
}
N_FEATURES = 30  # scikit-learn's breast-cancer data: 569 rows x 30 float features
SEED = 0


def features() -> Any:
    """The 569 x 30 float64 feature matrix (a numpy array: every server gets a plain tensor)."""
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True)
    return X


def fit(kind: str) -> Any:
    """The fitted model ``kind`` ("lr" or "rf"), always the same for the same scikit-learn."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    if kind == "lr":
        return LogisticRegression(max_iter=10_000, random_state=SEED).fit(X, y)
    if kind == "rf":
        return RandomForestClassifier(n_estimators=100, random_state=SEED).fit(X, y)
    raise ValueError(f"unknown model kind {kind!r}")


def labels(predictions: Any) -> list[int]:
    """Predictions as a flat list of ints, whatever container or dtype a tool returned."""
    import numpy as np

    return [round(float(v)) for v in np.asarray(predictions).reshape(-1)]


def digest(predictions: Any) -> str:
    """A short hash of the predicted labels: equal hashes, equal predictions."""
    return hashlib.sha256(json.dumps(labels(predictions)).encode()).hexdigest()[:16]


def load_fitted(folder: Path, kind: str) -> Any:
    """The model the driver fitted and dumped as ``<folder>/<kind>.joblib``."""
    import joblib

    return joblib.load(folder / f"{kind}.joblib")


def versions() -> dict[str, str]:
    """The versions of what every side shares: Python, numpy and scikit-learn."""
    import platform

    import numpy
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
    }
