"""loopml.registry end to end: register logged models, move aliases, history and lineage,
on SQLite and PostgreSQL metadata."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import loopml
from loopml import data, models, registry
from loopml.entities import ModelVersionStatus
from loopml.errors import ConflictError, InvalidArgumentError, ModelNotFoundError


@pytest.fixture
def store_uri(backend_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LOOPML_ARTIFACTS_URI", str(tmp_path / "blobs"))
    monkeypatch.setenv("LOOPML_ACTOR", "ana")
    loopml.set_tracking_uri(backend_url)
    return backend_url


@pytest.fixture
def frame() -> pd.DataFrame:
    bunch = load_breast_cancer(as_frame=True)
    return bunch.frame.iloc[:200]


def _train_and_log(frame: pd.DataFrame, c: float = 1.0) -> tuple[str, str]:
    ds = data.add("cancer", frame)
    features = frame.drop(columns=["target"])
    with loopml.start_run(experiment="churn") as run:
        loopml.log_input(ds)
        model = LogisticRegression(C=c, max_iter=5000).fit(features, frame["target"])
        info = models.log_model(model, "model", input_example=features.iloc[:3])
    return info.uri, run.run_id


def test_register_alias_load_history_and_lineage(store_uri: str, frame: pd.DataFrame) -> None:
    uri, run_id = _train_and_log(frame)
    mv = registry.register(uri, "churn", description="first")
    assert (mv.name, mv.version, mv.run_id, mv.flavor) == ("churn", 1, run_id, "sklearn")
    assert mv.source == uri
    assert registry.set_alias("churn", "champion", 1, reason="first model") is None
    loaded = models.load("models:/churn@champion")
    features = frame.drop(columns=["target"])
    np.testing.assert_array_equal(loaded.predict(features), models.load(uri).predict(features))
    uri2, _ = _train_and_log(frame, c=0.1)
    registry.register(uri2, "churn")
    assert registry.set_alias("churn", "champion", 2, reason="better recall") == 1
    assert registry.get_version("churn", "champion").version == 2
    assert registry.get_model("churn").aliases == {"champion": 2}
    moves = [e for e in registry.history("churn") if e.kind == "model.alias_set"]
    assert [
        (e.actor, e.payload["version"], e.payload["previous"], e.payload["reason"]) for e in moves
    ] == [
        ("ana", 1, None, "first model"),
        ("ana", 2, 1, "better recall"),
    ]
    found = registry.lineage("churn", 1)
    assert found.run_id == run_id
    assert [d.ref for d in found.datasets] == ["cancer@v1"]
    assert found.to_dict()["datasets"][0]["context"] == "training"
    # and from the dataset's side: the models trained on it
    trained = data.get("cancer@v1").models()
    assert [(m.name, m.version) for m in trained] == [("churn", 1), ("churn", 2)]


def test_register_from_another_version_keeps_the_package(
    store_uri: str, frame: pd.DataFrame
) -> None:
    uri, run_id = _train_and_log(frame)
    first = registry.register(uri, "churn")
    registry.set_alias("churn", "champion", 1)
    copied = registry.register("models:/churn@champion", "churn-prod")
    assert copied.package_digest == first.package_digest
    assert copied.run_id == run_id


def test_archive_restore_and_delete(store_uri: str, frame: pd.DataFrame) -> None:
    uri, _ = _train_and_log(frame)
    registry.register(uri, "churn")
    registry.set_alias("churn", "champion", 1)
    with pytest.raises(ConflictError, match="champion"):
        registry.archive_version("churn", 1)
    archived = registry.archive_version("churn", 1, force=True, reason="replaced")
    assert archived.status is ModelVersionStatus.ARCHIVED
    assert registry.restore_version("churn", 1).status is ModelVersionStatus.READY
    registry.delete_version("churn", 1)
    with pytest.raises(ModelNotFoundError):
        registry.get_version("churn", 1)
    registry.delete_model("churn", reason="gone")
    assert registry.list_models() == []


def test_register_bad_arguments(store_uri: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        registry.register(42, "churn")  # type: ignore[arg-type]
    assert info.value.details["field"] == "model_uri"
    with pytest.raises(InvalidArgumentError):
        registry.register("runs:/nothing/model", "churn")
    with pytest.raises(InvalidArgumentError, match="model name"):
        registry.register("runs:/" + "a" * 32 + "/model", "bad name")


_MOVER = """
import sys
import loopml.registry as registry
name, worker = sys.argv[1], int(sys.argv[2])
for i in range(15):
    registry.set_alias(name, "champion", 1 + (worker + i) % 3, reason=f"w{worker}-{i}")
"""


@pytest.mark.slow
def test_alias_moves_from_several_processes(store_uri: str, frame: pd.DataFrame) -> None:
    for c in (1.0, 0.5, 0.1):
        uri, _ = _train_and_log(frame, c=c)
        registry.register(uri, "churn")
    env = dict(os.environ, LOOPML_TRACKING_URI=store_uri)
    procs = [
        subprocess.Popen([sys.executable, "-c", _MOVER, "churn", str(w)], env=env) for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    moves = [e for e in registry.history("churn") if e.kind == "model.alias_set"]
    assert len(moves) == 60
    assert [m.payload["previous"] for m in moves[1:]] == [m.payload["version"] for m in moves[:-1]]
    assert registry.get_model("churn").aliases == {"champion": moves[-1].payload["version"]}


def test_version_references_and_unknown_history(store_uri: str, frame: pd.DataFrame) -> None:
    for c in (1.0, 0.5):
        uri, _ = _train_and_log(frame, c=c)
        registry.register(uri, "churn")
    registry.set_alias("churn", "champion", 1)
    assert registry.get_version("churn", "v2").version == 2
    assert registry.get_version("churn", "2").version == 2
    assert registry.get_version("churn", "champion").version == 1
    registry.archive_version("churn", 2)
    assert registry.get_version("churn", "latest").version == 1
    with pytest.raises(ModelNotFoundError, match="never"):
        registry.history("never")
    created = registry.history("churn")[0]
    assert (created.kind, created.actor) == ("model.created", "ana")
