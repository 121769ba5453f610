"""``loopml quickstart`` and :func:`loopml.quickstart.run_quickstart`, end to end, for real."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from loopml.entities import RunStatus
from loopml.errors import DataValidationError, MissingDependencyError
from loopml.quickstart import CANDIDATES, DATASET, STEPS, run_quickstart
from loopml.tracking.client import Client

CHILD_NAMES = [candidate.name for candidate in CANDIDATES]


def test_quickstart_cli_end_to_end(cli, cli_json, tmp_path: Path) -> None:
    result = cli("quickstart")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Quickstart runs" in out
    for name in CHILD_NAMES:
        assert name in out
    assert "loopml -t" in out
    assert "runs ls quickstart" in out
    assert "runs compare" in out
    assert "Model registry: breast-cancer-classifier" in out
    assert "champion" in out

    listing = cli_json("runs", "ls", "quickstart", "--json")
    runs = {run["info"]["run_name"]: run for run in listing["runs"]}
    assert sorted(runs) == sorted(["quickstart", *CHILD_NAMES])
    parent = runs["quickstart"]
    assert parent["info"]["parent_run_id"] is None
    assert parent["data"]["tags"]["best_model"] in CHILD_NAMES
    for name in CHILD_NAMES:
        run = runs[name]
        assert run["info"]["status"] == "FINISHED"
        assert run["info"]["parent_run_id"] == parent["info"]["run_id"]
        metrics = run["data"]["metrics"]
        assert set(metrics) == {"accuracy", "f1", "roc_auc"}
        assert all(0.85 < metrics[key] <= 1.0 for key in metrics), (name, metrics)
        assert "model" in run["data"]["params"]

    # the table names the metrics, and the commands the quickstart suggests work
    table = cli(
        "runs", "ls", "quickstart", "-f", "metrics.roc_auc > 0.9", "-o", "metrics.roc_auc DESC"
    )
    assert table.exit_code == 0, table.output
    assert "roc_auc" in table.stdout

    forest = runs["forest-deep"]["info"]["run_id"]
    curve = cli_json("runs", "history", forest, "roc_auc", "--json")
    assert [point["step"] for point in curve] == list(range(10, 101, 10))

    artifacts = cli_json("artifacts", "ls", forest, "--recursive", "--json")
    paths = {artifact["path"] for artifact in artifacts}
    assert {"confusion_matrix.json", "feature_importance.json"} <= paths
    assert "plots/roc_curve.png" in paths  # matplotlib is a dev dependency

    dest = tmp_path / "downloaded"
    got = cli("artifacts", "get", forest, "confusion_matrix.json", "-o", str(dest))
    assert got.exit_code == 0, got.output
    matrix = json.loads((dest / "confusion_matrix.json").read_text())["matrix"]
    assert sum(map(sum, matrix)) == 143  # the test split

    ids = [runs[name]["info"]["run_id"] for name in CHILD_NAMES[:2]]
    compared = cli_json("runs", "compare", *ids, "--json")
    assert next(r for r in compared["params"] if r["key"] == "C")["differs"] is True


def test_quickstart_cli_json(cli) -> None:
    result = cli("quickstart", "--experiment", "qs-json", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    runs = out["runs"]
    assert [run["info"]["run_name"] for run in runs] == ["quickstart", *CHILD_NAMES]
    serving = out["serving"]  # the champion was served and sent traffic
    assert serving["answered"] == serving["requests"] == 300
    assert serving["accuracy"] > 0.9
    assert serving["refusal"].startswith("400: ")
    assert serving["logged_rows"] == 300  # the prediction log, read back after shutdown
    assert serving["segments"] >= 1
    assert serving["metrics"]["requests"] == 301
    assert {run["info"]["experiment_id"] for run in runs} == {runs[0]["info"]["experiment_id"]}


def test_run_quickstart_library(store_uri: str) -> None:
    messages: list[str] = []
    runs = run_quickstart("lib", tracking_uri=store_uri, progress=messages.append)
    assert len(messages) == STEPS
    parent, *children = runs
    assert [child.info.run_name for child in children] == CHILD_NAMES
    assert all(child.info.parent_run_id == parent.run_id for child in children)
    assert all(run.info.status is RunStatus.FINISHED for run in runs)
    client = Client(store_uri)
    assert client.get_experiment_by_name("lib") is not None
    best = parent.data.tags["best_run_id"]
    assert parent.data.metrics["best_roc_auc"] == client.get_run(best).data.metrics["roc_auc"]
    logreg = children[0]
    assert [m.step for m in client.get_metric_history(logreg.run_id, "accuracy")] == [0]


def test_quickstart_versions_and_validates_its_data(store_uri: str) -> None:
    from loopml import data

    runs = run_quickstart("lineage", tracking_uri=store_uri)
    version = data.get(DATASET, tracking_uri=store_uri)
    assert (version.ref, version.num_rows) == (f"{DATASET}@v1", 569)
    assert version.schema is not None
    assert version.schema.column("target").categories is not None
    assert data.list_datasets(tracking_uri=store_uri)[0].rules  # the rules are attached
    assert runs[0].data.params["dataset"] == version.ref
    client = Client(store_uri)
    for run in runs:
        assert [i.ref for i in client.list_inputs(run.info.run_id)] == [version.ref]
    assert len(version.usages()) == len(runs)
    # a second quickstart trains on the same version: identical content is not re-added
    run_quickstart("lineage", tracking_uri=store_uri)
    assert data.get(DATASET, tracking_uri=store_uri).version == 1
    # and the attached rules refuse a broken table
    broken = version.to_pandas()
    broken.loc[0, "mean radius"] = -1.0
    with pytest.raises(DataValidationError, match="mean radius"):
        data.add(DATASET, broken, tracking_uri=store_uri)


def test_missing_scikit_learn(cli, store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDependencyError, match=r"loopml\[sklearn\]"):
        run_quickstart(tracking_uri=store_uri)
    result = cli("quickstart")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: The quickstart needs the 'scikit-learn' package")
    assert "Traceback" not in result.output


def test_quickstart_logs_models_and_registers_the_champion(store_uri: str) -> None:
    from loopml import data, models, registry
    from loopml.quickstart import ALIAS, MODEL

    runs = run_quickstart("registry", tracking_uri=store_uri)
    parent, children = runs[0], runs[1:]
    champion = registry.get_version(MODEL, ALIAS, tracking_uri=store_uri)
    assert champion.run_id == parent.data.tags["best_run_id"]
    assert parent.data.tags["registered_model"] == f"models:/{MODEL}/{champion.version}"
    assert champion.flavor == "sklearn"
    # every child logged its model; the champion loads and predicts on the versioned data
    for child in children:
        assert models.load(f"runs:/{child.info.run_id}/model", tracking_uri=store_uri).flavor
    table = data.get(DATASET, tracking_uri=store_uri).to_pandas()
    loaded = models.load(f"models:/{MODEL}@{ALIAS}", tracking_uri=store_uri)
    predictions = loaded.predict(table.drop(columns=["target"]))
    assert predictions.shape == (len(table),)
    assert loaded.signature is not None
    # the alias move is in the history, with its reason; lineage reaches the dataset
    moves = [
        e for e in registry.history(MODEL, tracking_uri=store_uri) if e.kind == "model.alias_set"
    ]
    assert moves[-1].payload["version"] == champion.version
    assert "ROC AUC" in moves[-1].payload["reason"]
    lineage = registry.lineage(MODEL, champion.version, tracking_uri=store_uri)
    assert [d.ref for d in lineage.datasets] == [f"{DATASET}@v1"]
