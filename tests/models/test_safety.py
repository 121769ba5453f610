"""RELIABILITY S7: loading a hostile model package never runs its code unasked, never reads
outside the package, and never hands over bytes that differ from the manifest."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tests.models.conftest import start_run

from loopml import models
from loopml.errors import (
    IntegrityError,
    InvalidArgumentError,
    LoopmlError,
    UnsafePathError,
    UntrustedModelError,
)
from loopml.models._manifest import hash_file


class Doubler(TransformerMixin, BaseEstimator):
    """A custom transformer: a type skops does not know."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x) * 2.0


def _edit_manifest(folder: Path, change: Any) -> None:
    path = folder / "loopml-model.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _rehash(folder: Path, name: str) -> None:
    """Make the manifest agree with a replaced file (a consistent, hostile package)."""
    digest, size = hash_file(folder / name)

    def change(manifest: dict[str, Any]) -> None:
        manifest["files"][name] = {"digest": digest, "size": size}

    _edit_manifest(folder, change)


@pytest.fixture
def small_data(cancer_array: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = cancer_array
    return x[:, :4], y


@pytest.fixture
def linear_package(tmp_path: Path, small_data: tuple[np.ndarray, np.ndarray]) -> Path:
    x, y = small_data
    models.save(LogisticRegression(max_iter=5000).fit(x, y), tmp_path / "pkg")
    return tmp_path / "pkg"


def test_skops_with_an_untrusted_type(
    tmp_path: Path, small_data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = small_data
    model = Pipeline([("double", Doubler()), ("logreg", LogisticRegression(max_iter=5000))])
    model.fit(x, y)
    models.save(model, tmp_path / "pkg")
    with pytest.raises(UntrustedModelError) as caught:
        models.load(tmp_path / "pkg")
    name = f"{Doubler.__module__}.Doubler"
    assert name in caught.value.message
    assert "skops can run code for types it does not know" in caught.value.message
    assert caught.value.details["types"] == [name]
    loaded = models.load(tmp_path / "pkg", trusted=True)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # the trusted load is cached, but a later untrusted call is still refused
    with pytest.raises(UntrustedModelError):
        models.load(tmp_path / "pkg")


@pytest.mark.parametrize("path", ["../../outside", "/etc/passwd", "a/../../b", "..%2f..%2fx"])
def test_file_path_escaping_the_package(linear_package: Path, path: str) -> None:
    def change(manifest: dict[str, Any]) -> None:
        manifest["files"][path] = {"digest": "blake3:" + "0" * 64, "size": 1}

    _edit_manifest(linear_package, change)
    with pytest.raises(UnsafePathError, match="Unsafe"):
        models.load(linear_package)


def test_flavor_file_option_escaping_the_package(linear_package: Path) -> None:
    def change(manifest: dict[str, Any]) -> None:
        manifest["options"]["file"] = "../../outside"

    _edit_manifest(linear_package, change)
    with pytest.raises(UnsafePathError):
        models.load(linear_package)


def test_symlink_out_of_the_package(linear_package: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.skops"
    os.replace(linear_package / "model.skops", outside)
    os.symlink(outside, linear_package / "model.skops")
    with pytest.raises(UnsafePathError, match="outside"):
        models.load(linear_package)


def test_symlinked_manifest(linear_package: Path, tmp_path: Path) -> None:
    os.replace(linear_package / "loopml-model.json", tmp_path / "elsewhere.json")
    os.symlink(tmp_path / "elsewhere.json", linear_package / "loopml-model.json")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        models.load(linear_package)


def test_gzipped_pickle_as_skops_file(linear_package: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    payload = gzip.compress(pickle.dumps({"marker": str(marker)}))
    (linear_package / "model.skops").write_bytes(payload)
    _rehash(linear_package, "model.skops")
    with pytest.raises(IntegrityError, match=r"model\.skops is not a readable skops file") as info:
        models.load(linear_package, trusted=True)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert not marker.exists()


def test_unknown_flavor_in_a_manifest_imports_nothing(linear_package: Path) -> None:
    def change(manifest: dict[str, Any]) -> None:
        manifest["flavor"] = "os"

    _edit_manifest(linear_package, change)
    before = set(sys.modules)
    with pytest.raises(InvalidArgumentError, match="Unknown model flavor 'os'"):
        models.load(linear_package, trusted=True)
    assert not {m for m in set(sys.modules) - before if not m.startswith("loopml")}


@pytest.mark.parametrize(
    "mangle",
    [b"not json", b"[]", b'{"format": 2}', b'{"format": 1, "flavor": "sklearn"}'],
)
def test_broken_manifest(linear_package: Path, mangle: bytes) -> None:
    (linear_package / "loopml-model.json").write_bytes(mangle)
    with pytest.raises(IntegrityError, match="not a valid loopml model manifest"):
        models.load(linear_package)


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


@pytest.mark.parametrize("damage", [_tamper, _truncate])
def test_damaged_file_in_a_folder(linear_package: Path, damage: Any) -> None:
    damage(linear_package / "model.skops")
    with pytest.raises(IntegrityError, match=r"'model\.skops'") as caught:
        models.load(linear_package)
    assert caught.value.details["file"] == "model.skops"


def test_missing_file_in_a_folder(linear_package: Path) -> None:
    (linear_package / "model.skops").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        models.load(linear_package)


@pytest.mark.parametrize("damage", [_tamper, _truncate])
def test_damaged_file_in_the_cache_copy(
    local_store: str,
    tmp_path: Path,
    small_data: tuple[np.ndarray, np.ndarray],
    damage: Any,
) -> None:
    x, y = small_data
    with start_run():
        info = models.log_model(LogisticRegression(max_iter=5000).fit(x, y), "model")
    models.load(info.uri)
    copy = tmp_path / ".loopml-cache" / "models" / info.package_digest.removeprefix("blake3:")
    assert (copy / "model.skops").is_file()
    damage(copy / "model.skops")
    assert models.load(info.uri) is not None  # still served from the in-process cache
    models.clear_cache()
    with pytest.raises(IntegrityError, match=r"'model\.skops'") as caught:
        models.load(info.uri)
    assert str(copy) in caught.value.message
    assert "delete" in caught.value.message


def test_input_example_is_checked_when_read(
    tmp_path: Path, small_data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = small_data
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    models.save(
        LogisticRegression(max_iter=5000).fit(frame, y), tmp_path / "pkg", input_example=frame[:2]
    )
    loaded = models.load(tmp_path / "pkg")
    (tmp_path / "pkg" / "input_example.json").write_text('[{"a": 1}]')
    with pytest.raises(IntegrityError, match=r"input_example\.json"):
        _ = loaded.input_example


def test_every_refusal_is_a_loopml_error(linear_package: Path) -> None:
    (linear_package / "model.skops").write_bytes(b"PK\x03\x04 not really a zip")
    _rehash(linear_package, "model.skops")
    with pytest.raises(LoopmlError):
        models.load(linear_package)
