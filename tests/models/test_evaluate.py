"""loopml.models.evaluate and compare: scikit-learn's metric values, logged into runs."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopml
from loopml import models
from loopml.errors import InvalidArgumentError, MissingDependencyError, RunNotFoundError
from loopml.models import Comparison, EvaluationResult, compare, evaluate
from loopml.storage.uris import open_store


@dataclasses.dataclass(frozen=True)
class Split:
    x_train: Any
    x_test: Any
    y_train: Any
    y_test: Any


def _split(x: Any, y: Any, stratify: bool = True) -> Split:
    parts = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y if stratify else None)
    return Split(*parts)


@pytest.fixture(scope="module")
def cancer() -> Split:
    x, y = load_breast_cancer(return_X_y=True)
    return _split(x, y)


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test frames: four feature columns and 'target'."""
    frame = load_iris(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=frame["target"])
    return train, test


@pytest.fixture(scope="module")
def diabetes() -> Split:
    x, y = load_diabetes(return_X_y=True)
    return _split(x, y, stratify=False)


def _logistic(split: Split, y: Any = None) -> Any:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return model.fit(split.x_train, split.y_train if y is None else y)


@pytest.fixture(scope="module")
def logistic(cancer: Split) -> Any:
    return _logistic(cancer)


@pytest.fixture(scope="module")
def dummy(cancer: Split) -> Any:
    """A classifier that learned nothing: the class prior for every row."""
    return DummyClassifier(strategy="prior").fit(cancer.x_train, cancer.y_train)


@pytest.fixture(scope="module")
def forest(iris: tuple[pd.DataFrame, pd.DataFrame]) -> Any:
    train, _ = iris
    model = RandomForestClassifier(n_estimators=20, max_depth=2, random_state=0)
    return model.fit(train.drop(columns="target"), train["target"])


@pytest.fixture(scope="module")
def ridge(diabetes: Split) -> Any:
    return Ridge(alpha=0.1).fit(diabetes.x_train, diabetes.y_train)


@pytest.fixture(scope="module")
def weak_ridge(diabetes: Split) -> Any:
    return Ridge(alpha=1000.0).fit(diabetes.x_train, diabetes.y_train)


def log_models(*pairs: tuple[Any, Any]) -> list[str]:
    """Log each ``(model, input example)`` in one run; return their URIs."""
    with loopml.start_run(experiment="evaluate"):
        return [
            models.log_model(model, f"model-{i}", input_example=example).uri
            for i, (model, example) in enumerate(pairs)
        ]


def run_of(uri: str) -> str:
    return uri.split("/")[1]


def artifact_json(run_id: str, path: str, tmp_path: Path) -> Any:
    local = loopml.Client().download_artifacts(run_id, path, tmp_path / "download")
    return json.loads(Path(local).read_text("utf-8"))


# ------------------------------------------------------------------------------ classification


def binary_expected(model: Any, x: Any, y: Any) -> dict[str, float]:
    predicted = model.predict(x)
    proba = model.predict_proba(x)
    return {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
        "log_loss": skm.log_loss(y, proba),
    }


def test_binary_metrics_equal_sklearns_and_are_logged(
    local_store: str, cancer: Split, logistic: Any, tmp_path: Path
) -> None:
    x, y = cancer.x_test, cancer.y_test
    with loopml.start_run(experiment="evaluate") as run:
        info = models.log_model(logistic, "model", input_example=cancer.x_train[:3])
        result = evaluate(info.uri, (x, y))

    assert isinstance(result, EvaluationResult)
    assert result.metrics == pytest.approx(binary_expected(logistic, x, y), abs=1e-12)
    assert list(result.metrics) == ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    assert result.confusion_matrix == skm.confusion_matrix(y, logistic.predict(x)).tolist()
    assert result.labels == [0, 1]
    assert result.task == "classification"
    assert result.task_inferred
    assert result.notes[0].startswith("task inferred as classification: integer targets")
    assert (result.run_id, result.model_uri, result.rows) == (run.run_id, info.uri, len(y))
    assert result.package_digest == info.package_digest

    client = loopml.Client()
    logged = client.get_run(run.run_id)
    for name, value in result.metrics.items():
        assert logged.data.metrics[f"eval_{name}"] == value
    assert [p.step for p in client.get_metric_history(run.run_id, "eval_accuracy")] == [0]
    assert logged.data.tags["loopml.evaluation.model"] == info.uri
    assert logged.data.tags["loopml.evaluation.task"] == "classification"
    listed = [a.path for a in client.list_artifacts(run.run_id, "evaluation")]
    assert (
        listed
        == result.artifacts
        == [
            "evaluation/calibration.png",
            "evaluation/confusion_matrix.json",
            "evaluation/confusion_matrix.png",
            "evaluation/metrics.json",
        ]
    )
    matrix = artifact_json(run.run_id, "evaluation/confusion_matrix.json", tmp_path)
    assert matrix["matrix"] == result.confusion_matrix
    assert matrix["labels"] == [0, 1]
    summary = artifact_json(run.run_id, "evaluation/metrics.json", tmp_path)
    assert summary["metrics"] == result.metrics
    assert (summary["model_uri"], summary["task"], summary["rows"]) == (info.uri, result.task, 171)
    image = client.download_artifacts(run.run_id, "evaluation/calibration.png", tmp_path / "png")
    assert Path(image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_multiclass_from_a_dataframe_with_a_target_column(
    local_store: str, iris: tuple[pd.DataFrame, pd.DataFrame], forest: Any
) -> None:
    train, test = iris
    (uri,) = log_models((forest, train.drop(columns="target")[:3]))
    with loopml.start_run(experiment="evaluate") as run:
        result = evaluate(uri, test, targets="target")

    x, y = test.drop(columns="target"), test["target"].to_numpy()
    predicted, proba = forest.predict(x), forest.predict_proba(x)
    expected = {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision_macro": skm.precision_score(y, predicted, average="macro"),
        "recall_macro": skm.recall_score(y, predicted, average="macro"),
        "f1_macro": skm.f1_score(y, predicted, average="macro"),
        "roc_auc_ovr": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y, proba),
    }
    assert result.metrics == pytest.approx(expected, abs=1e-12)
    assert set(result.metrics) == set(expected)
    assert result.confusion_matrix == skm.confusion_matrix(y, predicted).tolist()
    assert result.labels == [0, 1, 2]
    assert result.rows == len(test)
    assert result.artifacts == [
        "evaluation/confusion_matrix.json",
        "evaluation/confusion_matrix.png",
        "evaluation/metrics.json",
    ]
    assert loopml.Client().get_run(run.run_id).data.metrics["eval_f1_macro"] == pytest.approx(
        expected["f1_macro"]
    )


def test_string_labels_take_the_larger_one_as_positive(local_store: str, cancer: Split) -> None:
    names = np.array(["malignant", "benign"])  # 0 and 1 in load_breast_cancer
    model = _logistic(cancer, names[cancer.y_train])
    (uri,) = log_models((model, cancer.x_train[:3]))
    y = names[cancer.y_test]
    result = evaluate(uri, (cancer.x_test, y))

    predicted = model.predict(cancer.x_test)
    proba = model.predict_proba(cancer.x_test)
    assert list(model.classes_) == ["benign", "malignant"]
    assert result.labels == ["benign", "malignant"]
    assert result.metrics["precision"] == pytest.approx(
        skm.precision_score(y, predicted, pos_label="malignant")
    )
    assert result.metrics["recall"] == pytest.approx(
        skm.recall_score(y, predicted, pos_label="malignant")
    )
    assert result.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y == "malignant", proba[:, 1])
    )
    assert result.task == "classification"
    assert "string targets with 2 distinct values" in result.notes[0]


def test_a_threshold_other_than_one_half_decides_binary_predictions(
    local_store: str, cancer: Split, logistic: Any
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    result = evaluate(uri, (cancer.x_test, cancer.y_test), threshold=0.9)

    predicted = (logistic.predict_proba(cancer.x_test)[:, 1] >= 0.9).astype(int)
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(cancer.y_test, predicted))
    assert result.confusion_matrix == skm.confusion_matrix(cancer.y_test, predicted).tolist()
    assert any("probability >= 0.9" in note for note in result.notes)


# ------------------------------------------------------------------------------ regression


def regression_expected(y: Any, predicted: Any) -> dict[str, float]:
    return {
        "mae": skm.mean_absolute_error(y, predicted),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
        "r2": skm.r2_score(y, predicted),
        "mape": skm.mean_absolute_percentage_error(y, predicted),
    }


def test_regression_metrics_equal_sklearns_and_are_logged(
    local_store: str, diabetes: Split, ridge: Any
) -> None:
    with loopml.start_run(experiment="evaluate") as run:
        info = models.log_model(ridge, "model", input_example=diabetes.x_train[:3])
        result = evaluate(info.uri, (diabetes.x_test, diabetes.y_test))

    expected = regression_expected(diabetes.y_test, ridge.predict(diabetes.x_test))
    assert result.metrics == pytest.approx(expected, abs=1e-9)
    assert list(result.metrics) == ["mae", "rmse", "r2", "mape"]
    assert (result.task, result.confusion_matrix, result.labels) == ("regression", None, None)
    assert result.notes == ("task inferred as regression: float64 targets",)
    assert result.artifacts == [
        "evaluation/metrics.json",
        "evaluation/predicted_vs_actual.png",
        "evaluation/residuals.png",
    ]
    logged = loopml.Client().get_run(run.run_id)
    assert logged.data.metrics["eval_rmse"] == result.metrics["rmse"]
    assert logged.data.tags["loopml.evaluation.task"] == "regression"


def test_mape_is_skipped_when_a_target_is_zero(
    local_store: str, diabetes: Split, ridge: Any
) -> None:
    (uri,) = log_models((ridge, diabetes.x_train[:3]))
    y = diabetes.y_test.copy()
    y[:2] = 0
    result = evaluate(uri, (diabetes.x_test, y))

    expected = regression_expected(y, ridge.predict(diabetes.x_test))
    del expected["mape"]
    assert result.metrics == pytest.approx(expected, abs=1e-9)
    assert f"mape skipped: 2 of {len(y)} targets are 0" in result.notes


# ------------------------------------------------------------------------------ task inference


def test_task_inference_both_ways(local_store: str, cancer: Split, diabetes: Split) -> None:
    labels_without_proba = Ridge().fit(cancer.x_train, cancer.y_train)
    regressor = Ridge().fit(diabetes.x_train, diabetes.y_train)
    uri_labels, uri_regressor = log_models(
        (labels_without_proba, cancer.x_train[:3]), (regressor, diabetes.x_train[:3])
    )

    # integer targets with <= 20 values, but no predict_proba -> regression
    result = evaluate(uri_labels, (cancer.x_test, cancer.y_test))
    assert result.task == "regression"
    assert result.notes[0] == (
        "task inferred as regression: integer targets with 2 distinct values, "
        "but no model has predict_proba"
    )
    # integer targets with more than 20 distinct values -> regression
    many = diabetes.y_test.astype(np.int64)
    result = evaluate(uri_regressor, (diabetes.x_test, many))
    assert result.task == "regression"
    assert "integer targets with" in result.notes[0]
    assert len(set(many.tolist())) > 20


def test_an_explicit_task_is_used_as_given(
    local_store: str, cancer: Split, logistic: Any, tmp_path: Path
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    result = evaluate(uri, (cancer.x_test, cancer.y_test), task="regression")

    assert result.task == "regression"
    assert not result.task_inferred
    assert not any(note.startswith("task inferred") for note in result.notes)
    predicted = logistic.predict(cancer.x_test)
    assert result.metrics["mae"] == pytest.approx(skm.mean_absolute_error(cancer.y_test, predicted))


# ------------------------------------------------------------------------------ logging


def test_without_a_run_nothing_is_logged(local_store: str, cancer: Split, logistic: Any) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    result = evaluate(uri, (cancer.x_test, cancer.y_test))

    assert result.run_id is None
    assert result.artifacts == []
    assert "not logged: no run_id was given and no run is active" in result.notes
    assert "accuracy" in result.metrics
    client = loopml.Client()
    assert not any(k.startswith("eval_") for k in client.get_run(run_of(uri)).data.metrics)
    assert [a.path for a in client.list_artifacts(run_of(uri))] == ["model-0"]


def test_log_false_logs_nothing_inside_a_run(
    local_store: str, cancer: Split, logistic: Any
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    with loopml.start_run(experiment="evaluate") as run:
        result = evaluate(uri, (cancer.x_test, cancer.y_test), log=False)
    assert (result.run_id, result.artifacts) == (None, [])
    assert not any("not logged" in note for note in result.notes)
    assert loopml.Client().get_run(run.run_id).data.metrics == {}
    assert loopml.Client().list_artifacts(run.run_id) == []


def test_an_explicit_run_id_is_logged_into(local_store: str, cancer: Split, logistic: Any) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    with loopml.start_run(experiment="evaluate") as target:
        pass
    result = evaluate(uri, (cancer.x_test, cancer.y_test), run_id=target.run_id, plots=False)

    assert result.run_id == target.run_id
    assert result.artifacts == ["evaluation/confusion_matrix.json", "evaluation/metrics.json"]
    logged = loopml.Client().get_run(target.run_id)
    assert logged.data.metrics["eval_roc_auc"] == result.metrics["roc_auc"]
    with pytest.raises(RunNotFoundError):
        evaluate(uri, (cancer.x_test, cancer.y_test), run_id="0" * 32)


def test_a_prefix_names_the_metrics_and_the_artifact_folder(
    local_store: str, cancer: Split, logistic: Any
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    with loopml.start_run(experiment="evaluate") as run:
        result = evaluate(uri, (cancer.x_test, cancer.y_test), prefix="val_", plots=False)
    metrics = loopml.Client().get_run(run.run_id).data.metrics
    assert sorted(metrics) == sorted(f"val_{name}" for name in result.metrics)
    assert result.artifacts == [
        "evaluation/val/confusion_matrix.json",
        "evaluation/val/metrics.json",
    ]


def test_the_active_runs_buffer_is_flushed_first(
    local_store: str, cancer: Split, logistic: Any
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    with loopml.start_run(experiment="evaluate") as run:
        loopml.log_metric("loss", 0.25, step=3)
        evaluate(uri, (cancer.x_test, cancer.y_test), plots=False)
        history = open_store(local_store).get_metric_history(run.run_id, "loss")
        assert [(p.value, p.step) for p in history] == [(0.25, 3)]


def test_a_loaded_model_is_accepted(local_store: str, cancer: Split, logistic: Any) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    result = evaluate(models.load(uri), (cancer.x_test, cancer.y_test), log=False)
    assert result.model_uri == uri
    assert result.metrics == pytest.approx(
        binary_expected(logistic, cancer.x_test, cancer.y_test), abs=1e-12
    )


def test_without_matplotlib_plots_are_skipped(
    local_store: str, cancer: Split, logistic: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with loopml.start_run(experiment="evaluate"):
        result = evaluate(uri, (cancer.x_test, cancer.y_test))
    assert result.artifacts == ["evaluation/confusion_matrix.json", "evaluation/metrics.json"]
    assert "plots skipped: matplotlib is not installed (loopml[plots])" in result.notes


def test_without_sklearn_the_extra_is_named(
    local_store: str, cancer: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    data = (cancer.x_test, cancer.y_test)
    for call in (lambda: evaluate("unused", data), lambda: compare("a", "b", data)):
        with pytest.raises(MissingDependencyError, match=r"loopml\[sklearn\]") as caught:
            call()
        assert caught.value.details == {"package": "scikit-learn", "extra": "sklearn"}


def test_results_are_frozen_and_serialisable(
    local_store: str, cancer: Split, logistic: Any
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    result = evaluate(uri, (cancer.x_test, cancer.y_test), log=False)
    body = json.loads(json.dumps(result.to_dict()))
    assert body["metrics"] == result.metrics
    assert body["confusion_matrix"] == result.confusion_matrix
    assert body["notes"] == list(result.notes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.task = "regression"  # type: ignore[misc]


# ------------------------------------------------------------------------------ compare


def test_compare_defaults_to_roc_auc_and_picks_the_better_model(
    local_store: str, cancer: Split, logistic: Any, dummy: Any
) -> None:
    weak, strong = log_models((dummy, cancer.x_train[:3]), (logistic, cancer.x_train[:3]))
    data = (cancer.x_test, cancer.y_test)
    verdict = compare(weak, strong, data)

    assert isinstance(verdict, Comparison)
    assert verdict.metric == "roc_auc"
    assert verdict.higher_is_better
    assert verdict.a_value == pytest.approx(0.5)
    assert verdict.b_value == pytest.approx(
        skm.roc_auc_score(cancer.y_test, logistic.predict_proba(cancer.x_test)[:, 1])
    )
    assert verdict.difference == verdict.b_value - verdict.a_value
    assert verdict.better == "b"
    assert verdict.a.model_uri == weak
    assert verdict.b.model_uri == strong
    assert verdict.a.run_id is None
    assert json.loads(json.dumps(verdict.to_dict()))["better"] == "b"
    assert compare(strong, weak, data).better == "a"  # the same verdict, either order


def test_compare_on_a_chosen_metric_knows_its_direction(
    local_store: str, cancer: Split, logistic: Any, dummy: Any
) -> None:
    weak, strong = log_models((dummy, cancer.x_train[:3]), (logistic, cancer.x_train[:3]))
    data = (cancer.x_test, cancer.y_test)

    by_accuracy = compare(weak, strong, data, metric="accuracy")
    assert (by_accuracy.better, by_accuracy.higher_is_better) == ("b", True)
    by_loss = compare(strong, weak, data, metric="log_loss")
    assert (by_loss.better, by_loss.higher_is_better) == ("a", False)
    assert by_loss.a_value < by_loss.b_value


def test_compare_without_probabilities_falls_back_to_f1(
    local_store: str, cancer: Split, dummy: Any
) -> None:
    no_proba = RidgeClassifier().fit(cancer.x_train, cancer.y_train)
    a, b = log_models((no_proba, cancer.x_train[:3]), (dummy, cancer.x_train[:3]))
    verdict = compare(a, b, (cancer.x_test, cancer.y_test), task="classification")
    assert verdict.metric == "f1"
    assert verdict.a_value == pytest.approx(
        skm.f1_score(cancer.y_test, no_proba.predict(cancer.x_test))
    )


def test_compare_regressions_on_rmse_lower_is_better(
    local_store: str, diabetes: Split, ridge: Any, weak_ridge: Any
) -> None:
    good, bad = log_models((ridge, diabetes.x_train[:3]), (weak_ridge, diabetes.x_train[:3]))
    data = (diabetes.x_test, diabetes.y_test)

    verdict = compare(good, bad, data)
    assert (verdict.metric, verdict.higher_is_better, verdict.better) == ("rmse", False, "a")
    assert verdict.difference > 0
    assert compare(bad, good, data).better == "b"
    by_r2 = compare(bad, good, data, metric="r2")
    assert (by_r2.higher_is_better, by_r2.better) == (True, "b")


def test_compare_a_model_with_itself_is_a_tie(
    local_store: str, cancer: Split, logistic: Any
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    verdict = compare(uri, uri, (cancer.x_test, cancer.y_test))
    assert (verdict.better, verdict.difference) == ("tie", 0.0)


def test_compare_refuses_an_unknown_metric_or_a_wrong_direction(
    local_store: str, diabetes: Split, ridge: Any
) -> None:
    (uri,) = log_models((ridge, diabetes.x_train[:3]))
    data = (diabetes.x_test, diabetes.y_test)
    with pytest.raises(InvalidArgumentError, match="Available: mae, mape, r2, rmse") as caught:
        compare(uri, uri, data, metric="accuracy")
    assert caught.value.details["field"] == "metric"
    with pytest.raises(InvalidArgumentError) as caught:
        compare(uri, uri, data, metric="rmse", higher_is_better=True)
    assert caught.value.details["field"] == "higher_is_better"


# ------------------------------------------------------------------------------ bad input


def _bad_inputs(cancer: Split) -> dict[str, tuple[dict[str, Any], str]]:
    x, y = cancer.x_test, cancer.y_test
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).assign(label=y)
    with_nan = y.astype(float)
    with_nan[0] = np.nan
    return {
        "length mismatch": ({"data": (x, y[:-1])}, "data"),
        "empty": ({"data": (x[:0], y[:0])}, "data"),
        "not a tuple": ({"data": [x, y]}, "data"),
        "missing targets": ({"data": (x, with_nan)}, "data"),
        "unknown task": ({"data": (x, y), "task": "clustering"}, "task"),
        "missing target column": ({"data": frame, "targets": "target"}, "targets"),
        "frame without targets": ({"data": frame}, "targets"),
        "tuple with targets": ({"data": (x, y), "targets": "label"}, "targets"),
        "threshold": ({"data": (x, y), "threshold": 1.5}, "threshold"),
        "prefix": ({"data": (x, y), "prefix": " eval"}, "prefix"),
        "model": ({"data": (x, y), "model": object()}, "model"),
        "run_id": ({"data": (x, y), "run_id": "run-1"}, "run_id"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "length mismatch",
        "empty",
        "not a tuple",
        "missing targets",
        "unknown task",
        "missing target column",
        "frame without targets",
        "tuple with targets",
        "threshold",
        "prefix",
        "model",
        "run_id",
    ],
)
def test_bad_input_names_the_field(
    case: str, local_store: str, cancer: Split, logistic: Any
) -> None:
    (uri,) = log_models((logistic, cancer.x_train[:3]))
    arguments, field = _bad_inputs(cancer)[case]
    arguments = {"model": uri, **arguments}
    with pytest.raises(InvalidArgumentError) as caught:
        evaluate(arguments.pop("model"), arguments.pop("data"), **arguments)
    assert caught.value.details["field"] == field


def test_classification_of_continuous_targets_is_refused(
    local_store: str, diabetes: Split, ridge: Any
) -> None:
    (uri,) = log_models((ridge, diabetes.x_train[:3]))
    continuous = diabetes.y_test + 0.5
    with pytest.raises(InvalidArgumentError, match="task='regression'") as caught:
        evaluate(uri, (diabetes.x_test, continuous), task="classification")
    assert caught.value.details["field"] == "task"
    # whole-number targets pass, but the regressor's predictions are no class labels
    with pytest.raises(InvalidArgumentError, match="task='regression'") as caught:
        evaluate(uri, (diabetes.x_test, diabetes.y_test), task="classification")
    assert caught.value.details["field"] == "model"
