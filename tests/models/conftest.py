"""Fixtures for model packages: a store per test, breast-cancer data, fitted models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import loopml
from loopml import models


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> Iterator[None]:
    """Every test starts and ends with an empty in-process model cache."""
    models.clear_cache()
    yield
    models.clear_cache()


@pytest.fixture
def local_store(tmp_path: Path) -> str:
    """An embedded store (SQLite and a blob folder) in the test's folder."""
    uri = str(tmp_path / "store")
    loopml.set_tracking_uri(uri)
    return uri


@pytest.fixture
def any_store(backend_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty store on each metadata backend (SQLite, PostgreSQL), blobs in a folder."""
    monkeypatch.setenv("LOOPML_ARTIFACTS_URI", str(tmp_path / "blobs"))
    loopml.set_tracking_uri(backend_url)
    return backend_url


@pytest.fixture(scope="session")
def cancer_frame() -> tuple[pd.DataFrame, np.ndarray]:
    bunch = load_breast_cancer(as_frame=True)
    return bunch.data, bunch.target.to_numpy()


@pytest.fixture(scope="session")
def cancer_array(cancer_frame: tuple[pd.DataFrame, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = cancer_frame
    return x.to_numpy(), y


def make_forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0)


def make_pipeline() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("logreg", LogisticRegression(max_iter=5000))])


@pytest.fixture(scope="session")
def frame_pipeline(cancer_frame: tuple[pd.DataFrame, np.ndarray]) -> Any:
    x, y = cancer_frame
    return make_pipeline().fit(x, y)


@pytest.fixture(scope="session")
def frame_forest(cancer_frame: tuple[pd.DataFrame, np.ndarray]) -> Any:
    x, y = cancer_frame
    return make_forest().fit(x, y)


def start_run() -> Any:
    """A run in the current store (tests may import the tracking layer; src may not)."""
    return loopml.start_run(experiment="models")


class Scorer:
    """A user model with predict and predict_proba (the python flavor), importable by
    reference so that its pickle needs this module, as a user's would."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, data: Any) -> np.ndarray:
        values = np.asarray(data, dtype=float)
        return (values.sum(axis=1) > self.threshold).astype(np.int64)

    def predict_proba(self, data: Any) -> np.ndarray:
        values = np.asarray(data, dtype=float)
        p = 1 / (1 + np.exp(-(values.sum(axis=1) - self.threshold)))
        return np.column_stack([1 - p, p])
