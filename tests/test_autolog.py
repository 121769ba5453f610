"""loopml.autolog(): scikit-learn fits logged as runs (params, metrics, tags, the model)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.cluster import KMeans
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import loopml
from loopml import models
from loopml.autolog import AutologgingWarning, autolog
from loopml.entities import Run, RunStatus
from loopml.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[str]:
    """An embedded store per test; autologging is switched off after every test."""
    uri = str(tmp_path / "store")
    loopml.set_tracking_uri(uri)
    models.clear_cache()
    yield uri
    autolog(disable=True)
    models.clear_cache()


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    return X, y


@pytest.fixture
def three_classes() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=120, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    return X, y


def all_runs(experiment: str = "Default") -> list[Run]:
    if loopml.Client().get_experiment_by_name(experiment) is None:
        return []
    return list(loopml.search_runs(experiment))


def only_run(experiment: str = "Default") -> Run:
    runs = all_runs(experiment)
    assert len(runs) == 1, [r.data.tags.get("estimator_name") for r in runs]
    return runs[0]


def artifact_paths(run_id: str) -> set[str]:
    return {a.path for a in loopml.Client().list_artifacts(run_id, recursive=True)}


def test_fit_in_an_active_run_logs_params_metrics_tags_and_model_into_it(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = binary
    autolog()
    with loopml.start_run() as run:
        model = LogisticRegression(C=0.5)
        assert model.fit(X, y) is model
        assert loopml.active_run() is run  # the user's run stays active
    logged = only_run()
    assert logged.run_id == run.run_id
    assert logged.info.status == RunStatus.FINISHED
    assert logged.data.params["C"] == "0.5"
    assert logged.data.params["max_iter"] == "100"
    assert logged.data.tags["estimator_name"] == "LogisticRegression"
    assert logged.data.tags["estimator_class"] == (
        "sklearn.linear_model._logistic.LogisticRegression"
    )
    assert "loopml.autolog" not in logged.data.tags  # the run is the user's
    metrics = logged.data.metrics
    assert set(metrics) == {
        "training_accuracy",
        "training_f1",
        "training_roc_auc",
        "training_log_loss",
        "training_score",
    }
    assert metrics["training_accuracy"] == pytest.approx(model.score(X, y))
    assert metrics["training_score"] == pytest.approx(model.score(X, y))
    assert 0.5 < metrics["training_roc_auc"] <= 1.0
    assert "model/loopml-model.json" in artifact_paths(run.run_id)
    assert "model/input_example.json" not in artifact_paths(run.run_id)


def test_fit_without_a_run_starts_and_ends_one_run_per_fit(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = binary
    autolog()
    LogisticRegression().fit(X, y)
    assert loopml.active_run() is None
    DecisionTreeClassifier(max_depth=2).fit(X, y)
    assert loopml.active_run() is None
    runs = all_runs()
    assert len(runs) == 2
    assert {r.info.status for r in runs} == {RunStatus.FINISHED}
    assert {r.data.tags["estimator_name"] for r in runs} == {
        "LogisticRegression",
        "DecisionTreeClassifier",
    }
    assert {r.data.tags["loopml.autolog"] for r in runs} == {"sklearn"}


def test_new_runs_go_to_the_experiment_named_by_the_environment(
    binary: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_EXPERIMENT", "churn")
    autolog(log_models=False)
    LogisticRegression().fit(*binary)
    assert only_run("churn").data.tags["estimator_name"] == "LogisticRegression"
    assert all_runs("Default") == []


def test_multiclass_classifier_metrics(three_classes: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = three_classes
    autolog(log_models=False)
    model = LogisticRegression(max_iter=500).fit(X, y)
    metrics = only_run().data.metrics
    assert "training_roc_auc" not in metrics  # binary only
    assert metrics["training_f1"] == pytest.approx(f1_score(y, model.predict(X), average="macro"))
    assert {"training_accuracy", "training_log_loss", "training_score"} <= set(metrics)


def test_binary_metrics_with_string_labels(binary: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = binary
    labels = np.where(y == 1, "yes", "no")
    autolog(log_models=False)
    LogisticRegression().fit(X, labels)
    metrics = only_run().data.metrics
    assert {"training_f1", "training_roc_auc", "training_log_loss"} <= set(metrics)


def test_regressor_metrics() -> None:
    X, y = make_regression(n_samples=60, n_features=3, noise=5.0, random_state=0)
    autolog(log_models=False)
    model = LinearRegression().fit(X, y)
    run = only_run()
    metrics = run.data.metrics
    assert set(metrics) == {"training_mae", "training_rmse", "training_r2", "training_score"}
    residual = y - model.predict(X)
    assert metrics["training_mae"] == pytest.approx(np.abs(residual).mean())
    assert metrics["training_rmse"] == pytest.approx(np.sqrt((residual**2).mean()))
    assert metrics["training_r2"] == pytest.approx(model.score(X, y))
    assert metrics["training_score"] == pytest.approx(metrics["training_r2"])
    assert run.data.params["fit_intercept"] == "True"


def test_unsupervised_estimator_logs_its_score() -> None:
    X, _ = make_classification(n_samples=60, n_features=3, n_informative=2, n_redundant=0)
    autolog(log_models=False)
    model = KMeans(n_clusters=2, n_init=2, random_state=0)
    labels = model.fit_predict(X)  # KMeans defines fit_predict; it calls fit: logged once
    assert len(labels) == 60
    run = only_run()
    assert run.data.metrics == {"training_score": pytest.approx(model.score(X))}
    assert run.data.params["n_clusters"] == "2"


def test_pipeline_logs_once_with_the_params_of_its_steps(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = binary
    autolog(log_models=False)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=2.0))])
    assert pipe.fit(X, y) is pipe
    run = only_run()
    assert run.data.tags["estimator_name"] == "Pipeline"
    params = run.data.params
    assert params["clf__C"] == "2.0"
    assert params["scale__with_mean"] == "True"
    assert params["clf"] == "LogisticRegression(C=2.0)"
    assert "training_roc_auc" in run.data.metrics


def test_pipeline_fit_transform_logs_once() -> None:
    X, _ = make_regression(n_samples=30, n_features=3, random_state=0)
    autolog(log_models=False)
    pipe = Pipeline([("a", StandardScaler()), ("b", StandardScaler())])
    out = pipe.fit_transform(X)
    assert out.shape == X.shape
    assert only_run().data.tags["estimator_name"] == "Pipeline"


def test_grid_search_logs_once_with_the_best_params_score_and_estimator(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = binary
    autolog()
    search = GridSearchCV(
        Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]),
        {"clf__C": [0.01, 1.0, 10.0]},
        cv=3,
    )
    assert search.fit(X, y) is search
    run = only_run()  # none for the 9 candidate fits nor the refit
    assert run.data.tags["estimator_name"] == "GridSearchCV"
    params = run.data.params
    assert params["best_clf__C"] == str(search.best_params_["clf__C"])
    assert params["cv"] == "3"
    assert params["estimator__clf__C"] == "1.0"
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "training_accuracy" in run.data.metrics
    loaded = models.load(f"runs:/{run.run_id}/model")
    assert type(loaded.raw) is Pipeline  # the best estimator, not the search
    np.testing.assert_array_equal(loaded.predict(X), search.best_estimator_.predict(X))


def test_randomized_search_without_refit_logs_no_model(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = binary
    autolog()
    search = RandomizedSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 2, 3]},
        n_iter=2,
        cv=2,
        refit=False,
        random_state=0,
    )
    search.fit(X, y)
    run = only_run()
    assert run.data.params["best_max_depth"] == str(search.best_params_["max_depth"])
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert artifact_paths(run.run_id) == set()


def test_log_models_false_logs_no_artifact(binary: tuple[np.ndarray, np.ndarray]) -> None:
    autolog(log_models=False)
    LogisticRegression().fit(*binary)
    run = only_run()
    assert artifact_paths(run.run_id) == set()
    assert "training_accuracy" in run.data.metrics


def test_logged_model_loads_and_predicts_the_same(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = binary
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    autolog(log_input_examples=True)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame, y)
    run = only_run()
    assert "model/input_example.json" in artifact_paths(run.run_id)
    loaded = models.load(f"runs:/{run.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    pd.testing.assert_frame_equal(loaded.input_example, frame.iloc[:5])


def test_max_params_truncates_and_says_so(binary: tuple[np.ndarray, np.ndarray]) -> None:
    autolog(log_models=False, max_params=3)
    model = LogisticRegression().fit(*binary)
    run = only_run()
    total = len(model.get_params(deep=True))
    assert len(run.data.params) == 3
    assert run.data.tags["loopml.autolog.params_truncated"] == f"3 of {total}"


def test_max_params_must_be_a_non_negative_integer() -> None:
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(InvalidArgumentError, match="max_params"):
            autolog(max_params=bad)  # type: ignore[arg-type]
    assert not hasattr(LogisticRegression.fit, "__loopml_autolog__")


def test_disable_restores_the_original_methods(binary: tuple[np.ndarray, np.ndarray]) -> None:
    before = {
        (cls, name): vars(cls)[name]
        for cls, name in [
            (LogisticRegression, "fit"),
            (Pipeline, "fit"),
            (Pipeline, "fit_transform"),
            (GridSearchCV.__mro__[1], "fit"),  # BaseSearchCV defines the searches' fit
            (KMeans.__mro__[1], "fit_predict"),
        ]
    }
    grid_fit, random_fit = GridSearchCV.fit, RandomizedSearchCV.fit
    autolog()
    for (cls, name), original in before.items():
        assert vars(cls)[name] is not original, (cls, name)
    assert GridSearchCV.fit is not grid_fit
    assert LogisticRegression.fit.__wrapped__ is before[(LogisticRegression, "fit")]
    autolog(disable=True)
    for (cls, name), original in before.items():
        assert vars(cls)[name] is original, (cls, name)
    assert GridSearchCV.fit is grid_fit
    assert RandomizedSearchCV.fit is random_fit
    assert "__init_subclass__" not in vars(BaseEstimator)
    LogisticRegression().fit(*binary)
    assert all_runs() == []


def test_calling_autolog_twice_does_not_wrap_twice(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    original = LogisticRegression.fit
    autolog()
    autolog(log_models=False)  # the second call changes the options only
    assert LogisticRegression.fit.__wrapped__ is original
    LogisticRegression().fit(*binary)
    run = only_run()
    assert artifact_paths(run.run_id) == set()
    autolog(disable=True)
    assert LogisticRegression.fit is original
    autolog()  # on again after off
    assert LogisticRegression.fit.__wrapped__ is original


@pytest.mark.parametrize("silent", [False, True])
def test_a_logging_failure_warns_and_the_fit_still_returns_the_estimator(
    binary: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch, silent: bool
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(models, "log_model", broken)
    autolog(silent=silent)
    model = LogisticRegression()
    if silent:
        result = model.fit(*binary)  # warnings are errors in this suite: none is raised
    else:
        with pytest.warns(AutologgingWarning, match="logging the model failed.*disk full") as rec:
            result = model.fit(*binary)
        assert len(rec) == 1
        assert rec[0].filename == __file__  # points at the user's fit call
    assert result is model
    assert hasattr(model, "coef_")
    run = only_run()
    assert run.info.status == RunStatus.FINISHED
    assert "training_accuracy" in run.data.metrics
    assert run.data.params["C"] == "1.0"


def test_a_failing_start_run_warns_and_fits_unlogged(
    binary: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.tracking import fluent

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("store down")

    monkeypatch.setattr(fluent, "start_run", broken)
    autolog()
    model = LogisticRegression()
    with pytest.warns(AutologgingWarning, match="starting a run failed.*store down"):
        assert model.fit(*binary) is model
    assert hasattr(model, "coef_")


class Boom(Exception):
    pass


def _fake_sklearn_estimator(fit: Any) -> type:
    """A classifier class "defined in scikit-learn" after autolog() was called."""
    return type(
        "FakeClassifier",
        (ClassifierMixin, BaseEstimator),
        {
            "fit": fit,
            "predict": lambda self, X: np.zeros(len(X), dtype=int),
            "__module__": "sklearn.fake",
        },
    )


def test_classes_defined_after_autolog_are_patched_and_errors_pass_through_unchanged() -> None:
    error = Boom("bad data")

    def fit(self: Any, X: Any, y: Any = None) -> Any:
        raise error

    autolog(log_models=False)
    cls = _fake_sklearn_estimator(fit)
    assert vars(cls)["fit"].__wrapped__ is fit
    with pytest.raises(Boom) as caught:
        cls().fit([[1.0]], [0])
    assert caught.value is error
    run = only_run()
    assert run.info.status == RunStatus.FAILED
    assert run.data.tags["estimator_name"] == "FakeClassifier"
    assert loopml.active_run() is None
    autolog(disable=True)
    assert vars(cls)["fit"] is fit


def test_a_failing_fit_in_the_users_run_leaves_that_run_alone() -> None:
    def fit(self: Any, X: Any, y: Any = None) -> Any:
        raise Boom("no")

    autolog(log_models=False)
    cls = _fake_sklearn_estimator(fit)
    with loopml.start_run() as run:
        with pytest.raises(Boom):
            cls().fit([[1.0]], [0])
        assert loopml.active_run() is run
    assert only_run().info.status == RunStatus.FINISHED


def test_fits_in_two_threads_at_once_each_log_their_own_run() -> None:
    both_inside = threading.Barrier(2, timeout=30)

    def fit(self: Any, X: Any, y: Any = None) -> Any:
        both_inside.wait()  # the other thread's fit is in progress: it must not hide this one
        self.fitted_ = True
        return self

    autolog(log_models=False)
    cls = _fake_sklearn_estimator(fit)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            cls().fit([[1.0], [2.0]], [0, 1])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = all_runs()
    assert len(runs) == 2
    assert {r.info.status for r in runs} == {RunStatus.FINISHED}
    assert {r.data.metrics.get("training_accuracy") for r in runs} == {0.5}


def test_import_is_light_and_modules_imported_later_are_patched() -> None:
    code = (
        "import sys, time\n"
        "from loopml.autolog import autolog\n"
        "print(sorted({'sklearn', 'numpy', 'sqlalchemy'} & set(sys.modules)))\n"
        "import sklearn.base\n"
        "assert 'sklearn.semi_supervised' not in sys.modules\n"
        "start = time.perf_counter()\n"
        "autolog()\n"
        "print(time.perf_counter() - start < 0.5)\n"
        "from sklearn.semi_supervised import LabelPropagation\n"
        "print(LabelPropagation.fit.__loopml_autolog__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:3] == ["[]", "True", "True"]
