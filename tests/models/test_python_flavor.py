"""The python flavor: any object with predict, pickled, loaded only when trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from tests.models.conftest import Scorer, start_run

from loopml import models
from loopml.errors import InvalidArgumentError, UntrustedModelError
from loopml.models.flavors import detect_flavor, get_flavor


def _write_marker(marker: str) -> MarkerModel:
    """Runs while unpickling: proves that the pickle was opened."""
    Path(marker).write_text("unpickled")
    return MarkerModel(marker)


class MarkerModel:
    """A model whose unpickling writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def predict(self, data: Any) -> np.ndarray:
        return np.zeros(len(data))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_write_marker, (self.marker,))


class NoProba:
    def predict(self, data: Any) -> np.ndarray:
        return np.ones(len(data))


@pytest.fixture
def rows() -> np.ndarray:
    return np.arange(24, dtype=float).reshape(8, 3)


def test_user_class_round_trip(tmp_path: Path, rows: np.ndarray) -> None:
    model = Scorer(threshold=20.0)
    assert detect_flavor(model) is get_flavor("python")
    package = models.save(model, tmp_path / "pkg", input_example=rows[:2])
    manifest = json.loads((tmp_path / "pkg" / "loopml-model.json").read_text())
    assert manifest["flavor"] == "python"
    assert manifest["needs_pickle"] is True
    assert manifest["options"]["class"] == "tests.models.conftest.Scorer"
    assert "cloudpickle" in manifest["requirements"]
    assert package.signature is not None
    assert package.signature.kind == "tensor"
    loaded = models.load(tmp_path / "pkg", trusted=True)
    assert isinstance(loaded.raw, Scorer)
    assert_array_equal(loaded.predict(rows), model.predict(rows))
    assert_allclose(loaded.predict_proba(rows), model.predict_proba(rows))
    assert_array_equal(loaded.predict(rows.tolist()), model.predict(rows))


def test_logged_user_class_round_trip(local_store: str, rows: np.ndarray) -> None:
    with start_run():
        info = models.log_model(Scorer(threshold=20.0), "scorer")
    assert info.flavor == "python"
    loaded = models.load(info.uri, trusted=True)
    assert_array_equal(loaded.predict(rows), Scorer(20.0).predict(rows))


def test_untrusted_load_never_opens_the_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    models.save(MarkerModel(str(marker)), tmp_path / "pkg")
    assert not marker.exists()  # saving does not run __reduce__'s callable
    with pytest.raises(UntrustedModelError, match="trusted=True") as caught:
        models.load(tmp_path / "pkg")
    assert "pickle" in caught.value.message
    assert not marker.exists()
    loaded = models.load(tmp_path / "pkg", trusted=True)
    assert marker.read_text() == "unpickled"
    assert isinstance(loaded.raw, MarkerModel)


def test_logged_pickle_is_refused_before_it_is_fetched(local_store: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with start_run():
        info = models.log_model(MarkerModel(str(marker)), "model")
    with pytest.raises(UntrustedModelError):
        models.load(info.uri)
    assert not marker.exists()
    assert not (tmp_path / ".loopml-cache" / "models").exists()  # nothing fetched either


def test_cached_pickle_still_needs_trust(tmp_path: Path, rows: np.ndarray) -> None:
    models.save(Scorer(threshold=1.0), tmp_path / "pkg")
    first = models.load(tmp_path / "pkg", trusted=True)
    with pytest.raises(UntrustedModelError):
        models.load(tmp_path / "pkg")
    assert models.load(tmp_path / "pkg", trusted=True) is first


def test_flavor_refuses_without_trust_even_if_the_manifest_says_no_pickle(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    models.save(MarkerModel(str(marker)), tmp_path / "pkg")
    path = tmp_path / "pkg" / "loopml-model.json"
    manifest = json.loads(path.read_text())
    manifest["needs_pickle"] = False  # a forged manifest
    path.write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModelError):
        models.load(tmp_path / "pkg")
    assert not marker.exists()


def test_model_without_predict_proba(tmp_path: Path, rows: np.ndarray) -> None:
    models.save(NoProba(), tmp_path / "pkg")
    loaded = models.load(tmp_path / "pkg", trusted=True)
    assert_array_equal(loaded.predict(rows), np.ones(8))
    with pytest.raises(InvalidArgumentError, match="no predict_proba"):
        loaded.predict_proba(rows)


def test_objects_without_predict_are_refused(tmp_path: Path) -> None:
    class NotAModel:
        predict = "not callable"

    for thing in (object(), NotAModel(), Scorer):
        with pytest.raises(InvalidArgumentError, match="No model flavor") as caught:
            models.save(thing, tmp_path / "pkg")
        assert caught.value.details["field"] == "model"
    assert not (tmp_path / "pkg").exists()
