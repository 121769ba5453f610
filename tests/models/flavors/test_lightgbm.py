"""The LightGBM flavor: text-format boosters that predict labels and probabilities."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_breast_cancer, load_iris

from loopml.errors import InvalidArgumentError, MissingDependencyError, UnsafePathError
from loopml.models.flavors import lightgbm as flavor_module
from loopml.models.flavors._base import SavedFlavor
from loopml.models.flavors.lightgbm import FLAVOR, LightGBMModel

PARAMS: dict[str, Any] = {"n_estimators": 5, "min_child_samples": 3, "verbose": -1}


def _round_trip(model: Any, tmp_path: Path, name: str = "m") -> tuple[SavedFlavor, Any]:
    """Save, pass the options through JSON as a manifest would, and load."""
    saved = FLAVOR.save(model, tmp_path / name)
    saved = dataclasses.replace(saved, options=json.loads(json.dumps(saved.options)))
    return saved, FLAVOR.load(tmp_path / name, saved, trusted=False)


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    frame = load_iris(as_frame=True)
    return frame.data.iloc[::3], frame.target.to_numpy()[::3]  # 50 rows, named columns


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x[::10, :6], y[::10]  # 57 rows


def test_the_module_imports_the_real_framework_not_itself() -> None:
    module = flavor_module._framework("test")
    assert module is lightgbm
    assert module is not flavor_module
    assert FLAVOR.name == "lightgbm"
    assert FLAVOR.extra == "lightgbm"


def test_multiclass_classifier_with_string_labels_and_a_dataframe(
    iris: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = lightgbm.LGBMClassifier(**PARAMS).fit(x, labels)
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.framework == "lightgbm"
    assert saved.framework_version == lightgbm.__version__
    assert saved.needs_pickle is False
    assert saved.requirements == ("lightgbm",)
    assert saved.options == {
        "file": "model.txt",
        "task": "classifier",
        "classes": ["setosa", "versicolor", "virginica"],
        "classes_dtype": model.classes_.dtype.str,
        "objective": "multiclass",
    }
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.txt"]
    assert isinstance(loaded, LightGBMModel)
    assert FLAVOR.wants_dataframe(model) is True
    assert FLAVOR.wants_dataframe(loaded) is True
    predicted = FLAVOR.predict(loaded, x)
    assert_array_equal(predicted, model.predict(x))
    assert predicted.dtype == model.predict(x).dtype
    proba = FLAVOR.predict_proba(loaded, x)
    assert proba.shape == (len(x), 3)
    assert_allclose(proba, model.predict_proba(x), rtol=1e-6)
    # the flavor gives the same answers for the original wrapper
    assert_array_equal(FLAVOR.predict(model, x), model.predict(x))
    assert_allclose(FLAVOR.predict_proba(model, x), model.predict_proba(x), rtol=1e-6)


def test_binary_classifier_with_numpy_and_bool_labels(
    cancer: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = cancer
    model = lightgbm.LGBMClassifier(**PARAMS).fit(x, y == 1)
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.options["classes"] == [False, True]
    assert saved.options["objective"] == "binary"
    assert FLAVOR.wants_dataframe(loaded) is False
    predicted = FLAVOR.predict(loaded, x)
    assert predicted.dtype == np.bool_
    assert_array_equal(predicted, model.predict(x))
    proba = FLAVOR.predict_proba(loaded, x)
    assert proba.shape == (len(x), 2)
    assert_allclose(proba, model.predict_proba(x), rtol=1e-6)


def test_regressor_round_trip(cancer: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, _ = cancer
    target = x[:, 0] * 2 + x[:, 1]
    model = lightgbm.LGBMRegressor(**PARAMS).fit(x[:, 1:], target)
    saved, loaded = _round_trip(model, tmp_path)

    assert saved.options == {"file": "model.txt", "task": "regressor", "objective": "regression"}
    assert_allclose(FLAVOR.predict(loaded, x[:, 1:]), model.predict(x[:, 1:]), rtol=1e-6)
    assert FLAVOR.predict_proba(loaded, x[:, 1:]) is None


def test_raw_booster_and_a_loaded_model_save_again(
    iris: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "min_data_in_leaf": 3, "verbose": -1},
        lightgbm.Dataset(x, label=y),
        num_boost_round=4,
    )
    saved, loaded = _round_trip(booster, tmp_path)

    assert saved.options == {"file": "model.txt", "task": "booster", "objective": None}
    assert loaded.task == "booster"
    assert_allclose(FLAVOR.predict(loaded, x), booster.predict(x), rtol=1e-6)
    assert FLAVOR.predict_proba(loaded, x) is None
    assert FLAVOR.matches(loaded)

    classifier = lightgbm.LGBMClassifier(**PARAMS).fit(x, y)
    _, first = _round_trip(classifier, tmp_path, "first")
    _, second = _round_trip(first, tmp_path, "second")
    assert_array_equal(FLAVOR.predict(second, x), classifier.predict(x))
    assert second.classes.dtype == classifier.classes_.dtype


def test_matches() -> None:
    assert FLAVOR.matches(lightgbm.LGBMClassifier())
    assert FLAVOR.matches(lightgbm.LGBMRegressor())
    assert FLAVOR.matches(lightgbm.LGBMRanker())
    assert not FLAVOR.matches(object())
    assert not FLAVOR.matches("model.txt")

    class LGBMModel:  # same name, different package
        pass

    assert not FLAVOR.matches(LGBMModel())


def test_matches_does_not_import_lightgbm() -> None:
    code = (
        "import sys\n"
        "from loopml.models.flavors.lightgbm import FLAVOR\n"
        "assert not FLAVOR.matches(object())\n"
        "assert 'lightgbm' not in sys.modules, 'lightgbm was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_missing_lightgbm_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, cancer: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = cancer
    model = lightgbm.LGBMClassifier(**PARAMS).fit(x, y)
    saved = FLAVOR.save(model, tmp_path / "m")
    monkeypatch.setitem(sys.modules, "lightgbm", None)

    with pytest.raises(MissingDependencyError, match=r"loopml\[lightgbm\]") as info:
        FLAVOR.save(model, tmp_path / "again")
    assert info.value.details == {"package": "lightgbm", "extra": "lightgbm"}
    with pytest.raises(MissingDependencyError, match=r"loopml\[lightgbm\]"):
        FLAVOR.load(tmp_path / "m", saved, trusted=False)


def test_a_manifest_cannot_point_outside_or_smuggle_values(
    cancer: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = cancer
    saved = FLAVOR.save(lightgbm.LGBMClassifier(**PARAMS).fit(x, y), tmp_path / "m")
    (tmp_path / "outside.txt").write_text("tree\n")

    def load(**options: Any) -> Any:
        changed = dataclasses.replace(saved, options={**saved.options, **options})
        return FLAVOR.load(tmp_path / "m", changed, trusted=True)

    with pytest.raises(UnsafePathError):
        load(file="../outside.txt")
    with pytest.raises(UnsafePathError):
        load(file="/etc/passwd")
    with pytest.raises(InvalidArgumentError, match="task"):
        load(task="pickle")
    with pytest.raises(InvalidArgumentError, match="dtype"):
        load(classes_dtype="datetime64[ns]")
    with pytest.raises(InvalidArgumentError, match="dtype"):
        load(classes_dtype="not a dtype")
    with pytest.raises(InvalidArgumentError, match="classes"):
        load(classes=None)


def test_saving_something_else_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="Not a LightGBM model"):
        FLAVOR.save(object(), tmp_path / "m")
