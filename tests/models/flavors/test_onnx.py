"""The ONNX flavor: embedded-data round trips and the refusal of external data."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from loopml.errors import InvalidArgumentError, MissingDependencyError, UnsafePathError
from loopml.models.flavors import onnx as flavor_module
from loopml.models.flavors._base import SavedFlavor
from loopml.models.flavors.onnx import FLAVOR, OnnxModel


def _round_trip(model: Any, tmp_path: Path) -> tuple[SavedFlavor, Any]:
    """Save, pass the options through JSON as a manifest would, and load."""
    saved = FLAVOR.save(model, tmp_path / "m")
    saved = dataclasses.replace(saved, options=json.loads(json.dumps(saved.options)))
    return saved, FLAVOR.load(tmp_path / "m", saved, trusted=False)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x[::3], y[::3]  # 50 rows


@pytest.fixture
def no_onnxruntime_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if ONNX Runtime is asked to open a model."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        pytest.fail("onnxruntime.InferenceSession was called on an unsafe model")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)


def _add_model(weight: TensorProto) -> onnx.ModelProto:
    """Y = X + W, with W the given initializer."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"])],
        "add",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])],
        initializer=[weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _external_tensor(name: str, location: str) -> TensorProto:
    """A float tensor whose data is said to live in the file ``location``."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[2])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _write_model(folder: Path, model: onnx.ModelProto) -> SavedFlavor:
    """Write ``model`` into ``folder`` byte for byte, as a tampered package would hold it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    return SavedFlavor("onnx", onnx.__version__, {"file": "model.onnx"})


def test_the_module_imports_the_real_framework_not_itself() -> None:
    assert flavor_module._framework("onnx", "onnx", "test") is onnx
    assert flavor_module._framework("onnxruntime", "onnxruntime", "test") is onnxruntime
    assert onnx is not flavor_module
    assert hasattr(onnx, "ModelProto")


@pytest.mark.parametrize("zipmap", [True, False])
def test_classifier_round_trip(
    zipmap: bool, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    sk_model = LogisticRegression(max_iter=500).fit(x, y)
    options = None if zipmap else {id(sk_model): {"zipmap": False}}
    proto = to_onnx(sk_model, x[:1].astype(np.float32), options=options)
    saved, loaded = _round_trip(proto, tmp_path)

    assert saved.framework == "onnx"
    assert saved.framework_version == onnx.__version__
    assert saved.needs_pickle is False
    assert saved.options == {"file": "model.onnx"}
    assert saved.requirements == ("onnx", "onnxruntime")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.onnx"]
    assert isinstance(loaded, OnnxModel)
    assert FLAVOR.wants_dataframe(loaded) is False

    labels = FLAVOR.predict(loaded, x)  # float64 in, cast to the model's float32
    assert_array_equal(labels, FLAVOR.predict(proto, x))
    assert_array_equal(labels, sk_model.predict(x))
    proba = FLAVOR.predict_proba(loaded, x)
    assert proba.shape == (len(x), 3)
    assert_allclose(proba, FLAVOR.predict_proba(proto, x), rtol=1e-6)
    assert_allclose(proba, sk_model.predict_proba(x), rtol=1e-4, atol=1e-6)
    assert_array_equal(loaded.predict(x), labels)


def test_regressor_round_trip_with_int_and_dataframe_input(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, _ = iris
    sk_model = LinearRegression().fit(x[:, 1:], x[:, 0])
    proto = to_onnx(sk_model, x[:1, 1:].astype(np.float32))
    _, loaded = _round_trip(proto, tmp_path)

    predicted = FLAVOR.predict(loaded, x[:, 1:])
    assert_allclose(predicted, FLAVOR.predict(proto, x[:, 1:]), rtol=1e-6)
    assert_allclose(predicted.ravel(), sk_model.predict(x[:, 1:]), rtol=1e-5)
    assert FLAVOR.predict_proba(loaded, x[:, 1:]) is None

    ints = (x[:, 1:] * 10).astype(np.int64)
    assert_allclose(
        FLAVOR.predict(loaded, ints), FLAVOR.predict(loaded, ints.astype(np.float32)), rtol=1e-6
    )
    frame = pd.DataFrame(x[:, 1:], columns=["a", "b", "c"])
    assert_allclose(FLAVOR.predict(loaded, frame), predicted, rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="cannot be made from"):
        FLAVOR.predict(loaded, np.array([["a", "b", "c"]]))


def test_a_model_with_several_inputs_takes_a_dataframe(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 1]),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    _, loaded = _round_trip(proto, tmp_path)

    assert FLAVOR.wants_dataframe(loaded) is True
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 20.0]})
    assert_array_equal(FLAVOR.predict(loaded, frame), [[11.0], [22.0]])
    with pytest.raises(InvalidArgumentError, match="several inputs"):
        FLAVOR.predict(loaded, np.ones((2, 2)))


@pytest.mark.usefixtures("no_onnxruntime_session")
@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "data/../../x.bin"])
def test_external_data_outside_the_folder_is_refused_before_onnxruntime(
    location: str, tmp_path: Path
) -> None:
    saved = _write_model(tmp_path / "m", _add_model(_external_tensor("W", location)))
    with pytest.raises(UnsafePathError, match="'W'"):
        FLAVOR.load(tmp_path / "m", saved, trusted=True)


@pytest.mark.usefixtures("no_onnxruntime_session")
def test_external_data_through_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 8)
    saved = _write_model(tmp_path / "m", _add_model(_external_tensor("W", "weights.bin")))
    (tmp_path / "m" / "weights.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(UnsafePathError, match="outside"):
        FLAVOR.load(tmp_path / "m", saved, trusted=True)


@pytest.mark.usefixtures("no_onnxruntime_session")
def test_external_data_inside_the_folder_is_refused_too(tmp_path: Path) -> None:
    saved = _write_model(tmp_path / "m", _add_model(_external_tensor("W", "weights.bin")))
    (tmp_path / "m" / "weights.bin").write_bytes(b"\0" * 8)
    with pytest.raises(InvalidArgumentError, match="external data") as info:
        FLAVOR.load(tmp_path / "m", saved, trusted=True)
    assert not isinstance(info.value, UnsafePathError)


@pytest.mark.usefixtures("no_onnxruntime_session")
def test_external_data_in_a_subgraph_or_sparse_initializer_is_refused(tmp_path: Path) -> None:
    constant = helper.make_node(
        "Constant", [], ["W"], value=_external_tensor("hidden", "../../etc/passwd")
    )
    branch = helper.make_graph(
        [constant], "branch", [], [helper.make_tensor_value_info("W", TensorProto.FLOAT, [2])]
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["W"], then_branch=branch, else_branch=branch)],
        "if",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("W", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    saved = _write_model(tmp_path / "sub", model)
    with pytest.raises(UnsafePathError, match="'hidden'"):
        FLAVOR.load(tmp_path / "sub", saved, trusted=True)

    values = _external_tensor("sparse_values", "/etc/shadow")
    indices = helper.make_tensor("sparse_indices", TensorProto.INT64, [1], [0])
    sparse = helper.make_sparse_tensor(values, indices, [4])
    model = _add_model(helper.make_tensor("W", TensorProto.FLOAT, [2], [1.0, 2.0]))
    model.graph.sparse_initializer.append(sparse)
    saved = _write_model(tmp_path / "sparse", model)
    with pytest.raises(UnsafePathError, match="'sparse_values'"):
        FLAVOR.load(tmp_path / "sparse", saved, trusted=True)


def test_saving_a_model_with_external_references_is_refused(tmp_path: Path) -> None:
    model = _add_model(_external_tensor("W", "weights.bin"))
    with pytest.raises(InvalidArgumentError, match="external data file"):
        FLAVOR.save(model, tmp_path / "m")
    with pytest.raises(InvalidArgumentError, match="Not an ONNX model"):
        FLAVOR.save(object(), tmp_path / "m")


def test_the_manifest_file_name_cannot_leave_the_folder(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    proto = to_onnx(LogisticRegression(max_iter=500).fit(x, y), x[:1].astype(np.float32))
    saved = FLAVOR.save(proto, tmp_path / "m")
    onnx.save_model(proto, tmp_path / "outside.onnx")
    for name in ("../outside.onnx", str(tmp_path / "outside.onnx")):
        bad = dataclasses.replace(saved, options={"file": name})
        with pytest.raises(UnsafePathError):
            FLAVOR.load(tmp_path / "m", bad, trusted=True)


def test_matches(iris: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = iris
    proto = to_onnx(LogisticRegression(max_iter=500).fit(x, y), x[:1].astype(np.float32))
    assert FLAVOR.matches(proto)
    assert FLAVOR.matches(onnx.ModelProto())
    assert not FLAVOR.matches(onnx.GraphProto())
    assert not FLAVOR.matches(proto.SerializeToString())
    assert not FLAVOR.matches(object())
    assert FLAVOR.name == "onnx"
    assert FLAVOR.extra == "onnx"


def test_matches_does_not_import_onnx() -> None:
    code = (
        "import sys\n"
        "from loopml.models.flavors.onnx import FLAVOR\n"
        "assert not FLAVOR.matches(object())\n"
        "loaded = [m for m in ('onnx', 'onnxruntime') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_missing_onnx_names_the_extra(
    missing: str,
    monkeypatch: pytest.MonkeyPatch,
    iris: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    x, y = iris
    proto = to_onnx(LogisticRegression(max_iter=500).fit(x, y), x[:1].astype(np.float32))
    saved = FLAVOR.save(proto, tmp_path / "m")
    monkeypatch.setitem(sys.modules, missing, None)

    with pytest.raises(MissingDependencyError, match=r"loopml\[onnx\]") as info:
        FLAVOR.load(tmp_path / "m", saved, trusted=False)
    assert info.value.details == {"package": missing, "extra": "onnx"}
    if missing == "onnx":
        with pytest.raises(MissingDependencyError, match=r"loopml\[onnx\]"):
            FLAVOR.save(proto, tmp_path / "again")
