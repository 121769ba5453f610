"""Model URIs: parsing, resolution to a package digest, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.models.conftest import Scorer, start_run

from loopml import models
from loopml.entities import ModelVersionStatus
from loopml.errors import (
    ArtifactNotFoundError,
    InvalidArgumentError,
    ModelNotFoundError,
    RunNotFoundError,
)
from loopml.models.uris import parse_model_uri
from loopml.storage.uris import open_store

RUN_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("uri", "fields"),
    [
        (f"runs:/{RUN_ID}/model", {"kind": "run", "run_id": RUN_ID, "artifact_path": "model"}),
        (f"runs:/{RUN_ID}/a/b", {"kind": "run", "artifact_path": "a/b"}),
        ("models:/churn/3", {"kind": "version", "name": "churn", "version": 3}),
        ("models:/churn@champion", {"kind": "alias", "name": "churn", "alias": "champion"}),
        ("models:/churn/latest", {"kind": "latest", "name": "churn"}),
        ("some/folder", {"kind": "folder", "folder": Path("some/folder")}),
        ("file:///tmp/pkg", {"kind": "folder", "folder": Path("/tmp/pkg")}),
        (Path("pkg"), {"kind": "folder", "folder": Path("pkg")}),
    ],
)
def test_parse_accepted_forms(uri: Any, fields: dict[str, Any]) -> None:
    parsed = parse_model_uri(uri)
    for key, value in fields.items():
        assert getattr(parsed, key) == value


@pytest.mark.parametrize(
    "uri",
    [
        "models:/",
        "models:/x",
        "models:/x/",
        "models:/x/0",
        "models:/x/-1",
        "models:/x/v3",
        "models:/x@",
        "models:/x@3",
        "models:/bad name/1",
        "runs:/notanid/m",
        "runs:/",
        f"runs:/{RUN_ID}",
        f"runs:/{RUN_ID}/",
        f"runs:/{RUN_ID}/../x",
        "s3://bucket/model",
        "http://example.com/model",
        "file://otherhost/x",
        "",
        None,
        42,
    ],
)
def test_bad_uris_name_the_field_and_the_forms(uri: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        models.load(uri)
    assert caught.value.details["field"] == "uri"
    assert "models:/<name>@<alias>" in caught.value.message
    assert "runs:/<run id>/<artifact path>" in caught.value.message


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist") as caught:
        models.load(tmp_path / "nothing")
    assert caught.value.details["field"] == "uri"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"has no loopml-model\.json"):
        models.load(tmp_path / "empty")


def test_resolve_every_store_form(any_store: str) -> None:
    with start_run() as run:
        first = models.log_model(Scorer(1.0), "model")
        second = models.log_model(Scorer(2.0), "nested/model")
    assert first.package_digest != second.package_digest
    assert models.resolve_package(first.uri) == first.package_digest
    assert models.resolve_package(f"runs:/{run.run_id}/nested/model") == second.package_digest
    store = open_store(any_store)
    store.create_model_version("m", package_digest=first.package_digest, run_id=run.run_id)
    store.create_model_version("m", package_digest=second.package_digest, run_id=run.run_id)
    store.set_alias("m", "champion", 1)
    assert models.resolve_package("models:/m/1") == first.package_digest
    assert models.resolve_package("models:/m/2") == second.package_digest
    assert models.resolve_package("models:/m@champion") == first.package_digest
    assert models.resolve_package("models:/m/latest") == second.package_digest
    store.set_model_version_status("m", 2, ModelVersionStatus.ARCHIVED)
    assert models.resolve_package("models:/m/latest") == first.package_digest
    loaded = models.load("models:/m/latest", trusted=True)
    assert loaded.raw.threshold == 1.0
    # the same package through another URI is the same cached object
    assert models.load(first.uri, trusted=True) is loaded
    store.set_model_version_status("m", 1, ModelVersionStatus.ARCHIVED, force=True)
    with pytest.raises(ModelNotFoundError, match="no version that is not archived"):
        models.resolve_package("models:/m/latest")


def test_resolve_nothing_there(local_store: str) -> None:
    with start_run() as run:
        models.log_model(Scorer(1.0), "model")
    with pytest.raises(ArtifactNotFoundError, match="no model at 'other'"):
        models.resolve_package(f"runs:/{run.run_id}/other")
    with pytest.raises(RunNotFoundError):
        models.resolve_package(f"runs:/{RUN_ID}/model")
    with pytest.raises(ModelNotFoundError):
        models.resolve_package("models:/absent/1")
    with pytest.raises(ModelNotFoundError):
        models.load("models:/absent@champion")


def test_resolve_package_refuses_a_folder(tmp_path: Path) -> None:
    models.save(Scorer(1.0), tmp_path / "pkg")
    with pytest.raises(InvalidArgumentError, match="not in any store") as caught:
        models.resolve_package(str(tmp_path / "pkg"))
    assert caught.value.details["field"] == "uri"
    assert not (tmp_path / ".loopml").exists()  # no store was opened for it
