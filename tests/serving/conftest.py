"""Real models for the serving tests: scikit-learn on its bundled breast-cancer data, logged
and registered into a temporary store (the tracking URI of each test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import loopml
from loopml import models, registry


@dataclass
class Registered:
    store: str
    features: pd.DataFrame
    target: np.ndarray

    def log(self, model: object, name: str = "cancer", alias: str | None = "champion") -> int:
        with loopml.start_run(experiment="serving"):
            info = models.log_model(model, "model", input_example=self.features.iloc[:3])
        version = registry.register(info.uri, name).version
        if alias is not None:
            registry.set_alias(name, alias, version)
        return version


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    bunch = load_breast_cancer(as_frame=True)
    features = bunch.frame.drop(columns=["target"])
    features.columns = [c.replace(" ", "_") for c in features.columns]
    return features, bunch.frame["target"].to_numpy()


@pytest.fixture
def registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cancer: tuple[pd.DataFrame, np.ndarray]
) -> Registered:
    store = str(tmp_path / "store")
    monkeypatch.setenv("LOOPML_TRACKING_URI", store)
    loopml.set_tracking_uri(store)
    features, target = cancer
    return Registered(store, features, target)


@pytest.fixture
def lr(registered: Registered) -> LogisticRegression:
    model = LogisticRegression(max_iter=5000).fit(registered.features, registered.target)
    registered.log(model)
    return model


@pytest.fixture
def rf(registered: Registered) -> RandomForestClassifier:
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(
        registered.features, registered.target
    )
    registered.log(model, name="forest")
    return model
