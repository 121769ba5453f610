"""The scikit-learn flavor end to end: log, save, load through every URI form, predict."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LinearRegression
from tests.models.conftest import make_forest, make_pipeline, start_run

from loopml import models
from loopml.errors import InvalidArgumentError, SignatureError
from loopml.models.flavors import detect_flavor, get_flavor
from loopml.storage.uris import open_store

# skops does not trust sklearn.tree._tree.Tree (crafted node indices could crash the process
# at predict time); loopml accepts it and checks every tree's nodes after loading instead, so
# neither forests nor pipelines need trusted=True.
MODELS = [("forest", make_forest, False), ("pipeline", make_pipeline, False)]


@pytest.fixture(params=["frame", "array"])
def training_data(
    request: pytest.FixtureRequest,
    cancer_frame: tuple[pd.DataFrame, np.ndarray],
    cancer_array: tuple[np.ndarray, np.ndarray],
) -> tuple[Any, np.ndarray]:
    return cancer_frame if request.param == "frame" else cancer_array


def _same_outputs(loaded: models.LoadedModel, model: Any, x: Any) -> None:
    assert_array_equal(loaded.predict(x), model.predict(x))
    # signature enforcement rebuilds a DataFrame column by column: the same values in
    # another memory layout, which BLAS may sum in another order (last-bit differences)
    assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=0, atol=1e-12)
    assert_array_equal(loaded.predict_proba(x, enforce_signature=False), model.predict_proba(x))


@pytest.mark.parametrize(("kind", "make", "trusted"), MODELS)
def test_log_model_and_load_from_the_run(
    local_store: str, training_data: tuple[Any, np.ndarray], kind: str, make: Any, trusted: bool
) -> None:
    x, y = training_data
    model = make().fit(x, y)
    with start_run() as run:
        info = models.log_model(model, "model", input_example=x[:5])
    assert info.uri == f"runs:/{run.run_id}/model"
    assert (info.run_id, info.artifact_path, info.flavor) == (run.run_id, "model", "sklearn")
    assert info.signature is not None
    assert info.signature.kind == ("columns" if isinstance(x, pd.DataFrame) else "tensor")
    loaded = models.load(info.uri, trusted=trusted)
    assert isinstance(loaded, models.LoadedModel)
    assert type(loaded.raw) is type(model)
    assert loaded.package_digest == info.package_digest
    assert loaded.flavor == "sklearn"
    assert loaded.signature == info.signature
    _same_outputs(loaded, model, x)
    example = loaded.input_example
    if isinstance(x, pd.DataFrame):
        pd.testing.assert_frame_equal(example, x[:5].reset_index(drop=True))
    else:
        assert_array_equal(example, x[:5])


@pytest.mark.parametrize(("kind", "make", "trusted"), MODELS)
def test_save_and_load_a_folder(
    tmp_path: Path, training_data: tuple[Any, np.ndarray], kind: str, make: Any, trusted: bool
) -> None:
    x, y = training_data
    model = make().fit(x, y)
    package = models.save(model, tmp_path / "pkg", input_example=x[:3])
    assert package.path == tmp_path / "pkg"
    assert sorted(p.name for p in package.path.iterdir()) == [
        "input_example.json",
        "loopml-model.json",
        "model.skops",
    ]
    loaded = models.load(tmp_path / "pkg", trusted=trusted)
    assert loaded.package_digest == package.package_digest
    _same_outputs(loaded, model, x)
    assert models.load(str(tmp_path / "pkg"), trusted=trusted) is loaded


def test_tree_models_load_without_trust_and_are_checked(
    tmp_path: Path, cancer_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

    from loopml.models.flavors.sklearn import check_trees

    x, y = cancer_frame
    for index, cls in enumerate((GradientBoostingClassifier, HistGradientBoostingClassifier)):
        model = cls(random_state=0).fit(x, y)
        models.save(model, tmp_path / f"pkg{index}")
        loaded = models.load(tmp_path / f"pkg{index}")
        assert_array_equal(loaded.predict(x), model.predict(x))
        assert check_trees(loaded.raw) > 0


class _FakeTree:
    """Looks like sklearn's Tree to the checker (same module and name), with bad nodes."""

    def __init__(self, left: list[int], right: list[int], feature: list[int]) -> None:
        self.node_count = len(left)
        self.children_left = np.array(left)
        self.children_right = np.array(right)
        self.feature = np.array(feature)
        self.value = np.zeros((len(left), 1, 2))
        self.n_features = 3


_FakeTree.__module__ = "sklearn.tree._tree"
_FakeTree.__qualname__ = "Tree"


@pytest.mark.parametrize(
    ("left", "right", "feature", "why"),
    [
        ([1, -1, -1], [2, -1, -1], [0, -2, -2], None),
        ([7, -1, -1], [2, -1, -1], [0, -2, -2], "outside the tree"),
        ([0, -1, -1], [2, -1, -1], [0, -2, -2], "outside the tree"),
        ([2, -1, 1], [2, -1, -1], [0, -2, 0], "after its parent"),
        ([1, -1, -1], [2, -1, -1], [5, -2, -2], "feature"),
        ([1, -1, -1], [2, 0, -1], [0, -2, -2], "one child"),
    ],
)
def test_inconsistent_trees_are_refused(
    left: list[int], right: list[int], feature: list[int], why: str | None
) -> None:
    from loopml.errors import IntegrityError
    from loopml.models.flavors.sklearn import check_trees

    holder = types.SimpleNamespace(
        estimators_=[types.SimpleNamespace(tree_=_FakeTree(left, right, feature))]
    )
    if why is None:
        assert check_trees(holder) == 1
        return
    with pytest.raises(IntegrityError, match=why):
        check_trees(holder)


def test_registered_versions_and_aliases_load(
    any_store: str, cancer_frame: tuple[pd.DataFrame, np.ndarray], frame_pipeline: Any
) -> None:
    x, _ = cancer_frame
    with start_run() as run:
        info = models.log_model(frame_pipeline, "model", input_example=x[:5])
    store = open_store(any_store)
    store.create_model_version("cancer", package_digest=info.package_digest, run_id=run.run_id)
    store.set_alias("cancer", "champion", 1)
    for uri in ("models:/cancer/1", "models:/cancer@champion", "models:/cancer/latest"):
        loaded = models.load(uri)
        assert loaded.package_digest == info.package_digest
        assert_array_equal(loaded.predict(x), frame_pipeline.predict(x))


def test_signature_is_enforced(
    tmp_path: Path, cancer_frame: tuple[pd.DataFrame, np.ndarray], frame_pipeline: Any
) -> None:
    x, _ = cancer_frame
    models.save(frame_pipeline, tmp_path / "pkg", input_example=x[:5])
    loaded = models.load(tmp_path / "pkg")
    wrong = x.rename(columns={"mean radius": "mean radios"})
    with pytest.raises(SignatureError, match="mean radius"):
        loaded.predict(wrong)
    with pytest.raises(SignatureError):
        loaded.predict_proba(wrong)
    # records and dicts of columns are accepted and converted
    records = x[:4].to_dict(orient="records")
    assert_array_equal(loaded.predict(records), frame_pipeline.predict(x[:4]))
    columns = {name: x[name][:4].tolist() for name in x.columns}
    assert_array_equal(loaded.predict(columns), frame_pipeline.predict(x[:4]))
    # an array of the right width is read positionally
    assert_array_equal(loaded.predict(x.to_numpy()[:4]), frame_pipeline.predict(x[:4]))


def test_enforcement_can_be_turned_off(
    tmp_path: Path, cancer_frame: tuple[pd.DataFrame, np.ndarray], frame_pipeline: Any
) -> None:
    x, _ = cancer_frame
    models.save(frame_pipeline, tmp_path / "pkg", input_example=x[:5])
    loaded = models.load(tmp_path / "pkg", enforce_signature=False)
    assert_array_equal(loaded.predict(x), frame_pipeline.predict(x))
    strict = models.load(tmp_path / "pkg")
    assert strict is not loaded
    as_text = x.astype(str)
    with pytest.raises(SignatureError):
        strict.predict(as_text)  # strings are never parsed as numbers
    with pytest.raises(SignatureError):
        strict.predict(x.drop(columns=["mean radius"]))
    # per call: skip the check (scikit-learn then converts the strings itself)
    assert_array_equal(strict.predict(as_text, enforce_signature=False), frame_pipeline.predict(x))


def test_model_without_signature_takes_arrays_and_frames(
    tmp_path: Path, cancer_frame: tuple[pd.DataFrame, np.ndarray], frame_pipeline: Any
) -> None:
    x, _ = cancer_frame
    models.save(frame_pipeline, tmp_path / "pkg")
    loaded = models.load(tmp_path / "pkg")
    assert loaded.signature is None
    assert loaded.input_example is None
    expected = frame_pipeline.predict(x)
    assert_array_equal(loaded.predict(x), expected)
    assert_array_equal(loaded.predict(x.to_numpy()), expected)  # named from the model
    assert_array_equal(loaded.predict(x.to_dict(orient="records")), expected)


def test_regressor_has_no_predict_proba(
    tmp_path: Path, cancer_array: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = cancer_array
    model = LinearRegression().fit(x, y)
    models.save(model, tmp_path / "pkg", input_example=x[:3])
    loaded = models.load(tmp_path / "pkg")
    assert_allclose(loaded.predict(x[:10]), model.predict(x[:10]))
    with pytest.raises(InvalidArgumentError, match="no predict_proba") as caught:
        loaded.predict_proba(x[:10])
    assert caught.value.details["field"] == "predict_proba"


def test_detection_and_flavor_contract(frame_pipeline: Any, frame_forest: Any) -> None:
    flavor = get_flavor("sklearn")
    assert detect_flavor(frame_pipeline) is flavor
    assert detect_flavor(frame_forest) is flavor
    assert flavor.wants_dataframe(frame_pipeline)
    assert not flavor.matches(LinearRegression)  # a class, not a model
    assert not flavor.matches(object())


def test_transformer_saves_but_cannot_predict(
    tmp_path: Path, cancer_array: tuple[np.ndarray, np.ndarray]
) -> None:
    from sklearn.preprocessing import StandardScaler

    x, _ = cancer_array
    scaler = StandardScaler().fit(x)
    models.save(scaler, tmp_path / "pkg", input_example=x[:2])
    loaded = models.load(tmp_path / "pkg")
    assert_allclose(loaded.raw.transform(x[:3]), scaler.transform(x[:3]))
    with pytest.raises(InvalidArgumentError, match="no predict method"):
        loaded.predict(x[:3])
