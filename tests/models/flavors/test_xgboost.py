"""The XGBoost flavor: native JSON round trips, no pickle, lazy import."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_iris

from loopml.errors import InvalidArgumentError, MissingDependencyError, UnsafePathError
from loopml.models.flavors import xgboost as flavor_module
from loopml.models.flavors._base import SavedFlavor
from loopml.models.flavors.xgboost import FLAVOR


def _round_trip(model: Any, tmp_path: Path) -> tuple[SavedFlavor, Any]:
    """Save, pass the options through JSON as a manifest would, and load."""
    saved = FLAVOR.save(model, tmp_path / "m")
    saved = dataclasses.replace(saved, options=json.loads(json.dumps(saved.options)))
    return saved, FLAVOR.load(tmp_path / "m", saved, trusted=False)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x[::3], y[::3]  # 50 rows


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    frame = load_breast_cancer(as_frame=True)
    return frame.data.iloc[::10, :6], frame.target.to_numpy()[::10]  # 57 rows, 6 named columns


def test_the_module_imports_the_real_framework_not_itself() -> None:
    module = flavor_module._framework("test")
    assert module is xgboost
    assert module is not flavor_module
    assert hasattr(module, "XGBClassifier")
    assert FLAVOR.name == "xgboost"
    assert FLAVOR.extra == "xgboost"


@pytest.mark.parametrize("wrapper", [xgboost.XGBClassifier, xgboost.XGBRFClassifier])
def test_classifier_round_trip_with_numpy(
    wrapper: type, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    model = wrapper(n_estimators=4, max_depth=2).fit(x, y)
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.framework == "xgboost"
    assert saved.framework_version == xgboost.__version__
    assert saved.needs_pickle is False
    assert saved.options == {
        "file": "model.json",
        "kind": "sklearn",
        "wrapper": wrapper.__name__,
        "n_classes": 3,
        "classes": [0, 1, 2],
    }
    assert saved.requirements in (("xgboost",), ("xgboost-cpu",))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json"]
    assert type(loaded) is wrapper
    assert_array_equal(FLAVOR.predict(loaded, x), FLAVOR.predict(model, x))
    assert_array_equal(FLAVOR.predict(loaded, x), model.predict(x))
    assert_allclose(FLAVOR.predict_proba(loaded, x), model.predict_proba(x), rtol=1e-6)
    assert FLAVOR.wants_dataframe(loaded) is False


def test_binary_classifier_round_trip_with_a_dataframe(
    cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    x, y = cancer
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.options["classes"] == [0, 1]
    assert FLAVOR.wants_dataframe(model) is True
    assert FLAVOR.wants_dataframe(loaded) is True
    assert loaded.get_booster().feature_names == list(x.columns)
    labels = FLAVOR.predict(loaded, x)
    assert_array_equal(labels, model.predict(x))
    assert set(np.unique(labels)) <= {0, 1}
    proba = FLAVOR.predict_proba(loaded, x)
    assert proba.shape == (len(x), 2)
    assert_allclose(proba, model.predict_proba(x), rtol=1e-6)


def test_regressor_round_trip(cancer: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> None:
    x, _ = cancer
    target = x["mean radius"].to_numpy() * 2 + x["mean texture"].to_numpy()
    features = x.drop(columns=["mean radius"])
    model = xgboost.XGBRegressor(n_estimators=6, max_depth=3).fit(features, target)
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.options == {"file": "model.json", "kind": "sklearn", "wrapper": "XGBRegressor"}
    assert type(loaded) is xgboost.XGBRegressor
    assert_allclose(FLAVOR.predict(loaded, features), model.predict(features), rtol=1e-6)
    assert FLAVOR.predict_proba(loaded, features) is None


def test_ranker_round_trip(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = iris
    qid = np.repeat(np.arange(5), 10)
    model = xgboost.XGBRanker(n_estimators=3, max_depth=2).fit(x, y, qid=qid)
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.options["wrapper"] == "XGBRanker"
    assert_allclose(FLAVOR.predict(loaded, x), model.predict(x), rtol=1e-6)


def test_raw_booster_round_trip(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = iris
    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
        xgboost.DMatrix(x, label=y),
        num_boost_round=4,
    )
    saved, loaded = _round_trip(booster, tmp_path)

    assert saved.options == {"file": "model.json", "kind": "booster"}
    assert isinstance(loaded, xgboost.Booster)
    expected = booster.predict(xgboost.DMatrix(x))
    assert_allclose(FLAVOR.predict(loaded, x), expected, rtol=1e-6)
    assert FLAVOR.predict_proba(loaded, x) is None
    assert FLAVOR.wants_dataframe(loaded) is False


def test_matches(iris: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = iris
    assert FLAVOR.matches(xgboost.XGBClassifier())
    assert FLAVOR.matches(xgboost.XGBRegressor())
    assert FLAVOR.matches(xgboost.XGBRanker())
    assert FLAVOR.matches(xgboost.train({}, xgboost.DMatrix(x, label=y), num_boost_round=1))
    assert not FLAVOR.matches(object())
    assert not FLAVOR.matches(np.zeros(3))
    assert not FLAVOR.matches({"kind": "booster"})

    class Booster:  # same name, different package
        pass

    assert not FLAVOR.matches(Booster())


def test_matches_does_not_import_xgboost() -> None:
    code = (
        "import sys\n"
        "from loopml.models.flavors.xgboost import FLAVOR\n"
        "class Booster: pass\n"
        "assert not FLAVOR.matches(object())\n"
        "assert not FLAVOR.matches(Booster())\n"
        "assert 'xgboost' not in sys.modules, 'xgboost was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_missing_xgboost_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    model = xgboost.XGBClassifier(n_estimators=2).fit(x, y)
    saved = FLAVOR.save(model, tmp_path / "m")
    monkeypatch.setitem(sys.modules, "xgboost", None)

    with pytest.raises(MissingDependencyError, match=r"loopml\[xgboost\]") as info:
        FLAVOR.save(model, tmp_path / "again")
    assert info.value.details == {"package": "xgboost", "extra": "xgboost"}
    with pytest.raises(MissingDependencyError, match=r"loopml\[xgboost\]"):
        FLAVOR.load(tmp_path / "m", saved, trusted=False)


def test_a_manifest_cannot_name_another_class_or_file(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    saved = FLAVOR.save(xgboost.XGBClassifier(n_estimators=2).fit(x, y), tmp_path / "m")
    (tmp_path / "outside.json").write_text("{}")

    bad_wrapper = dataclasses.replace(saved, options={**saved.options, "wrapper": "DMatrix"})
    with pytest.raises(InvalidArgumentError, match="wrapper class"):
        FLAVOR.load(tmp_path / "m", bad_wrapper, trusted=True)
    for name in ("../outside.json", "/etc/passwd"):
        bad_file = dataclasses.replace(saved, options={**saved.options, "file": name})
        with pytest.raises(UnsafePathError):
            FLAVOR.load(tmp_path / "m", bad_file, trusted=True)
    bad_kind = dataclasses.replace(saved, options={**saved.options, "kind": "pickle"})
    with pytest.raises(InvalidArgumentError, match="kind"):
        FLAVOR.load(tmp_path / "m", bad_kind, trusted=True)


def test_saving_something_else_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="Not an XGBoost model"):
        FLAVOR.save(object(), tmp_path / "m")
