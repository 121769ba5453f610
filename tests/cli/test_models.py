"""``loopml models``: ls, show, register, alias, archive, restore, delete, history, compare."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import loopml
from loopml import data, models, registry
from loopml.cli import models as models_cli
from loopml.entities import RegistryEvent

COMMANDS = ["ls", "show", "register", "alias", "archive", "restore", "delete", "history", "compare"]
HAS_EVALUATE = importlib.util.find_spec("loopml.models.evaluation") is not None


@dataclass(frozen=True)
class Logged:
    """Two logged models (C=1 and C=0.01) trained on dataset train@v1, not registered yet."""

    run_1: str
    run_2: str
    uri_1: str
    uri_2: str
    frame: pd.DataFrame


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(80, 2))
    y = (x[:, 0] + 0.7 * rng.normal(size=80) > 0).astype(int)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y})


@pytest.fixture
def logged(store_uri: str) -> Logged:
    frame = _frame()
    version = data.add("train", frame, tracking_uri=store_uri)
    runs, uris = [], []
    for c in (1.0, 0.01):
        with loopml.start_run(experiment="churn", tracking_uri=store_uri) as run:
            loopml.log_input(version)
            model = LogisticRegression(C=c).fit(frame[["a", "b"]], frame["y"])
            info = models.log_model(model, "model", input_example=frame[["a", "b"]].iloc[:3])
        runs.append(run.run_id)
        uris.append(info.uri)
    return Logged(runs[0], runs[1], uris[0], uris[1], frame)


@pytest.fixture
def churn(logged: Logged, store_uri: str) -> Logged:
    """Model "churn": version 1 (run 1), version 2 (run 2); champion -> 2."""
    registry.register(logged.uri_1, "churn", description="first cut", tracking_uri=store_uri)
    registry.register(logged.uri_2, "churn", tracking_uri=store_uri)
    registry.set_alias("churn", "champion", 2, reason="setup", tracking_uri=store_uri)
    return logged


def _clean(result, code: int) -> None:
    """The command exited with ``code``, with an error line and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code:
        assert result.stdout == ""
        assert result.stderr.startswith("Error:"), result.stderr


# -- help --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli, command: str) -> None:
    result = cli("models", command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert f"loopml models {command}" in result.stdout


def test_the_group_is_listed(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    assert "models" in result.stdout
    group = cli("models")
    assert "register" in group.output
    assert "compare" in group.output


# -- register ----------------------------------------------------------------------------------


def test_register_accepts_uris_and_shorthands(cli, cli_json, logged: Logged) -> None:
    first = cli("models", "register", logged.run_1, "--name", "churn", "-d", "first cut")
    _clean(first, 0)
    assert "Registered churn version 1" in first.stdout
    assert "models:/churn/1" in first.stdout
    assert f"runs:/{logged.run_1}/model" in first.stdout  # a bare RUN_ID means RUN_ID/model

    doc = cli_json("models", "register", f"{logged.run_2}/model", "--name", "churn", "--json")
    assert (doc["name"], doc["version"], doc["uri"]) == ("churn", 2, "models:/churn/2")
    assert doc["source"] == f"runs:/{logged.run_2}/model"
    assert (doc["run_id"], doc["flavor"], doc["status"]) == (logged.run_2, "sklearn", "READY")
    assert doc["package_digest"].startswith("blake3:")

    doc = cli_json("models", "register", logged.uri_1, "--name", "churn", "--json")
    assert (doc["version"], doc["source"]) == (3, logged.uri_1)

    copied = cli_json("models", "register", "models:/churn/2", "--name", "other", "--json")
    assert copied["uri"] == "models:/other/1"
    assert copied["package_digest"] == doc_digest(cli_json, "churn", 2)
    versions = cli_json("models", "show", "churn", "--json")["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[2]["description"] == "first cut"


def doc_digest(cli_json, name: str, version: int) -> str:
    doc = cli_json("models", "show", name, "--version", str(version), "--json")
    return str(doc["version"]["package_digest"])


def test_register_refuses_bad_sources(cli, logged: Logged) -> None:
    _clean(cli("models", "register", "not-a-run", "--name", "churn"), 2)
    bad = cli("models", "register", "abc/model", "--name", "churn")
    _clean(bad, 2)
    assert "RUN_ID/PATH" in bad.stderr
    _clean(cli("models", "register", "s3://bucket/model", "--name", "churn"), 2)
    _clean(cli("models", "register", logged.run_1, "--name", "bad name!"), 2)
    _clean(cli("models", "register", "0" * 32, "--name", "churn"), 3)  # no such run
    missing = cli("models", "register", f"{logged.run_1}/elsewhere", "--name", "churn")
    _clean(missing, 3)  # the run has no model there
    assert "elsewhere" in missing.stderr
    _clean(cli("models", "register", "models:/nope/1", "--name", "churn"), 3)
    usage = cli("models", "register", logged.run_1)  # --name is required
    assert usage.exit_code == 2
    assert "Traceback" not in usage.output


# -- ls ----------------------------------------------------------------------------------------


def test_ls_lists_models_with_their_aliases(cli, cli_json, churn: Logged) -> None:
    result = cli("models", "ls")
    _clean(result, 0)
    for text in ("Registered models", "churn", "v2", "champion → 2"):
        assert text in result.stdout, text
    [doc] = cli_json("models", "ls", "--json")
    assert doc["name"] == "churn"
    assert doc["latest_version"] == 2
    assert doc["aliases"] == {"champion": 2}
    for key in ("description", "creation_time", "last_update_time", "tags"):
        assert key in doc, key


def test_ls_without_models(cli, cli_json) -> None:
    result = cli("models", "ls")
    _clean(result, 0)
    assert result.stdout == ""
    assert "No registered models yet" in result.stderr
    assert cli_json("models", "ls", "--json") == []


# -- show --------------------------------------------------------------------------------------


def test_show_model_lists_its_versions(cli, cli_json, churn: Logged) -> None:
    result = cli("models", "show", "churn")
    _clean(result, 0)
    out = result.stdout
    for text in ("Model churn", "Versions (2)", "champion → 2", churn.run_1, churn.run_2):
        assert text in out, text
    assert "READY" in out
    assert "sklearn" in out
    doc = cli_json("models", "show", "churn", "--json")
    assert set(doc) == {"model", "versions"}
    assert doc["model"]["aliases"] == {"champion": 2}
    versions = doc["versions"]
    assert [(v["version"], v["aliases"], v["uri"]) for v in versions] == [
        (2, ["champion"], "models:/churn/2"),
        (1, [], "models:/churn/1"),
    ]
    assert versions[1]["run_id"] == churn.run_1


def test_show_version_has_lineage_and_package(cli, cli_json, churn: Logged) -> None:
    result = cli("models", "show", "churn", "--version", "champion")
    _clean(result, 0)
    out = result.stdout
    for text in (
        "Model churn version 2",
        "models:/churn/2",
        "Lineage",
        churn.run_2,
        "train@v1",
        "training",
        "Package",
        "sklearn",
        "scikit-learn",
        "a: float64",
        "b: float64",
        "output: int64",
    ):
        assert text in out, text

    doc = cli_json("models", "show", "churn", "--version", "1", "--json")
    assert set(doc) == {"version", "lineage", "package"}
    assert (doc["version"]["version"], doc["version"]["description"]) == (1, "first cut")
    lineage = doc["lineage"]
    assert lineage["run_id"] == churn.run_1
    assert lineage["experiment_id"]
    assert [(d["ref"], d["context"]) for d in lineage["datasets"]] == [("train@v1", "training")]
    for key in ("git_commit", "git_dirty", "entry_point", "package_digest", "source"):
        assert key in lineage, key
    package = doc["package"]
    assert (package["flavor"], package["framework"]) == ("sklearn", "scikit-learn")
    assert package["framework_version"]
    assert "scikit-learn" in package["requirements"]
    columns = package["signature"]["inputs"]["columns"]
    assert [c["name"] for c in columns] == ["a", "b"]
    assert package["num_files"] >= 1
    # v2 and latest name the same version as the alias does
    assert (
        cli_json("models", "show", "churn", "--version", "v2", "--json")["version"]["version"] == 2
    )
    latest = cli_json("models", "show", "churn", "--version", "latest", "--json")
    assert latest["version"]["version"] == 2


def test_show_not_found_and_bad_versions(cli, churn: Logged) -> None:
    _clean(cli("models", "show", "nope"), 3)
    _clean(cli("models", "show", "nope", "--version", "1"), 3)
    missing = cli("models", "show", "churn", "--version", "9")
    _clean(missing, 3)
    assert "no version 9" in missing.stderr
    _clean(cli("models", "show", "churn", "--version", "staging"), 3)  # no such alias
    _clean(cli("models", "show", "churn", "--version", "0"), 2)
    _clean(cli("models", "show", "churn", "--version", "bad alias!"), 2)
    _clean(cli("models", "show", "bad name!"), 2)


# -- alias and history -------------------------------------------------------------------------


def test_alias_moves_are_printed_and_recorded(
    cli, cli_json, logged: Logged, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_ACTOR", "ci-bot")
    registry.register(logged.uri_1, "churn", tracking_uri=store_uri)
    registry.register(logged.uri_2, "churn", tracking_uri=store_uri)

    new = cli("models", "alias", "churn", "champion", "1", "--reason", "first model")
    _clean(new, 0)
    assert new.stdout.strip() == "champion → 1 (new)"
    moved = cli("models", "alias", "churn", "champion", "v2", "-m", "better recall")
    _clean(moved, 0)
    assert moved.stdout.strip() == "champion: 1 → 2"
    doc = cli_json("models", "alias", "churn", "challenger", "champion", "--json")
    assert doc == {
        "name": "churn",
        "alias": "challenger",
        "version": 2,
        "previous": None,
        "deleted": False,
    }
    removed = cli("models", "alias", "churn", "challenger", "--delete", "--reason", "done")
    _clean(removed, 0)
    assert "Removed challenger (was version 2)" in removed.stdout
    assert cli_json("models", "ls", "--json")[0]["aliases"] == {"champion": 2}

    history = cli("models", "history", "churn")
    _clean(history, 0)
    lines = history.stdout.splitlines()
    expected = [
        ("version 1 registered", ""),
        ("version 2 registered", ""),
        ("alias champion → 1 (new)", "first model"),
        ("alias champion: 1 → 2", "better recall"),
        ("alias challenger → 2 (new)", ""),
        ("alias challenger removed (was 2)", "done"),
    ]
    for event, reason in expected:
        [line] = [line for line in lines if event in line]
        assert "ci-bot" in line, line
        assert reason in line, line
    events = [line for line in lines if "registered" in line or "alias" in line]
    assert [next(e for e, _ in expected if e in line) for line in events] == [
        e for e, _ in expected
    ]

    doc = cli_json("models", "history", "churn", "--json")
    moves = [e for e in doc if e["kind"] == "model.alias_set"]
    assert [(e["actor"], e["summary"], e["payload"]["reason"]) for e in moves] == [
        ("ci-bot", "alias champion → 1 (new)", "first model"),
        ("ci-bot", "alias champion: 1 → 2", "better recall"),
        ("ci-bot", "alias challenger → 2 (new)", ""),
    ]
    for key in ("time", "kind", "name", "actor", "payload", "summary"):
        assert key in doc[0], key
    assert [e["time"] for e in doc] == sorted(e["time"] for e in doc)  # oldest first


def test_alias_errors(cli, churn: Logged, store_uri: str) -> None:
    both = cli("models", "alias", "churn", "champion", "1", "--delete")
    assert both.exit_code == 2
    assert "Traceback" not in both.output
    neither = cli("models", "alias", "churn", "champion")
    assert neither.exit_code == 2
    assert "Traceback" not in neither.output
    _clean(cli("models", "alias", "churn", "staging", "--delete"), 3)  # no such alias
    _clean(cli("models", "alias", "churn", "champion", "7"), 3)  # no such version
    _clean(cli("models", "alias", "nope", "champion", "1"), 3)
    _clean(cli("models", "alias", "churn", "v3", "1"), 2)  # an alias can't look like a version
    _clean(cli("models", "alias", "churn", "latest", "1"), 2)
    registry.archive_version("churn", 1, tracking_uri=store_uri)
    archived = cli("models", "alias", "churn", "champion", "1")
    _clean(archived, 4)
    assert "archived" in archived.stderr


def test_history_of_an_unknown_model(cli) -> None:
    _clean(cli("models", "history", "nope"), 3)
    _clean(cli("models", "history", "bad name!"), 2)


def test_describe_event_words() -> None:
    def words(kind: str, **payload: object) -> str:
        return models_cli.describe_event(RegistryEvent(0, kind, "m", "ana", dict(payload)))

    assert words("model.created") == "model created"
    assert words("model.version_created", version=3) == "version 3 registered"
    assert words("model.alias_set", alias="champion", version=3, previous=2) == (
        "alias champion: 2 → 3"
    )
    assert words("model.alias_set", alias="champion", version=3, previous=None) == (
        "alias champion → 3 (new)"
    )
    assert words("model.version_archived", version=2) == "version 2 archived"
    assert words("model.version_restored", version=2) == "version 2 restored"
    assert words("model.version_deleted", version=2) == "version 2 deleted"
    assert words("model.alias_deleted", alias="c", previous=2, why="archiving") == (
        "alias c removed (was 2) while archiving version 2"
    )
    assert words("model.deleted") == "model deleted"
    assert words("model.something_new") == "something new"


# -- archive, restore, delete ------------------------------------------------------------------


def test_archive_is_refused_while_aliased_then_forced(
    cli, cli_json, churn: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_ACTOR", "ci-bot")
    refused = cli("models", "archive", "churn", "2")
    _clean(refused, 4)
    assert "champion" in refused.stderr
    assert "--force" in refused.stderr
    assert "force=True" not in refused.stderr
    assert cli_json("models", "show", "churn", "--version", "2", "--json")["version"]["status"] == (
        "READY"
    )

    forced = cli("models", "archive", "churn", "champion", "--force", "--reason", "leak")
    _clean(forced, 0)
    assert "Archived churn version 2" in forced.stdout
    assert "champion" in forced.stdout
    doc = cli_json("models", "show", "churn", "--json")
    assert doc["model"]["aliases"] == {}
    assert doc["versions"][0]["status"] == "ARCHIVED"

    plain = cli_json("models", "archive", "churn", "1", "--json")
    assert (plain["version"], plain["status"], plain["removed_aliases"]) == (1, "ARCHIVED", [])
    _clean(cli("models", "show", "churn", "--version", "latest"), 3)  # nothing left READY

    restored = cli("models", "restore", "churn", "2")
    _clean(restored, 0)
    assert "Restored churn version 2" in restored.stdout
    assert cli_json("models", "restore", "churn", "1", "--json")["status"] == "READY"

    lines = cli("models", "history", "churn").stdout.splitlines()
    [removed] = [line for line in lines if "alias champion removed" in line]
    assert "while archiving version 2" in removed
    assert "leak" in removed
    [archived] = [line for line in lines if "version 2 archived" in line]
    assert "ci-bot" in archived
    assert "leak" in archived
    assert any("version 2 restored" in line for line in lines)


def test_archive_and_restore_not_found(cli, churn: Logged) -> None:
    _clean(cli("models", "archive", "churn", "9"), 3)
    _clean(cli("models", "archive", "nope", "1"), 3)
    _clean(cli("models", "restore", "churn", "staging"), 3)
    _clean(cli("models", "archive", "churn", "-"), 2)


def test_delete_needs_yes(cli, cli_json, churn: Logged) -> None:
    refused = cli("models", "delete", "churn", "1")
    _clean(refused, 2)
    assert "--yes" in refused.stderr
    assert len(cli_json("models", "show", "churn", "--json")["versions"]) == 2

    done = cli("models", "delete", "churn", "1", "--yes", "--reason", "leaked data")
    _clean(done, 0)
    assert "Deleted churn version 1" in done.stdout
    assert [v["version"] for v in cli_json("models", "show", "churn", "--json")["versions"]] == [2]
    _clean(cli("models", "delete", "churn", "1", "--yes"), 3)  # gone

    aliased = cli("models", "delete", "churn", "2", "--yes")
    _clean(aliased, 4)
    assert "--force" in aliased.stderr
    doc = cli_json("models", "delete", "churn", "champion", "--yes", "--force", "--json")
    assert doc == {"name": "churn", "version": 2, "deleted": True, "removed_aliases": ["champion"]}
    lines = cli("models", "history", "churn").stdout.splitlines()
    [deleted] = [line for line in lines if "version 1 deleted" in line]
    assert "leaked data" in deleted


# -- compare -----------------------------------------------------------------------------------


@pytest.mark.skipif(
    not HAS_EVALUATE, reason="loopml.models.evaluate (compare) is not in this checkout yet"
)
def test_compare_two_versions_on_a_csv(cli, cli_json, churn: Logged, tmp_path: Path) -> None:
    holdout = tmp_path / "holdout.csv"
    churn.frame.to_csv(holdout, index=False)
    result = cli(
        "models", "compare", "churn", "1", "champion", "--data", str(holdout), "--target", "y"
    )
    _clean(result, 0)
    out = result.stdout
    for text in ("metric", "version 1", "champion (version 2)", "difference"):
        assert text in out, text
    assert re.search(
        r"(version 1|champion \(version 2\)) is better on \S+ by [0-9.e+-]+\.|tie on", out
    ), out

    doc = cli_json(
        "models",
        "compare",
        "churn",
        "1",
        "2",
        "--data",
        str(holdout),
        "--target",
        "y",
        "--metric",
        "accuracy",
        "--json",
    )
    assert doc["metric"] == "accuracy"
    assert doc["better"] in ("a", "b", "tie")
    assert doc["a_version"]["version"] == 1
    assert doc["b_version"]["version"] == 2
    for key in ("a_value", "b_value", "difference", "higher_is_better"):
        assert key in doc, key

    parquet = tmp_path / "holdout.parquet"
    churn.frame.to_parquet(parquet)
    again = cli("models", "compare", "churn", "v1", "v2", "--data", str(parquet), "--target", "y")
    _clean(again, 0)


def test_compare_bad_inputs(cli, churn: Logged, tmp_path: Path) -> None:
    holdout = tmp_path / "holdout.csv"
    churn.frame.to_csv(holdout, index=False)
    text = tmp_path / "notes.txt"
    text.write_text("a,b,y\n1,2,0\n")
    _clean(cli("models", "compare", "churn", "1", "9", "--data", str(holdout), "--target", "y"), 3)
    _clean(cli("models", "compare", "nope", "1", "2", "--data", str(holdout), "--target", "y"), 3)
    _clean(cli("models", "compare", "churn", "1", "2", "--data", str(text), "--target", "y"), 2)
    missing = cli(
        "models", "compare", "churn", "1", "2", "--data", str(tmp_path / "no.csv"), "--target", "y"
    )
    assert missing.exit_code == 2
    assert "Traceback" not in missing.output
    no_target = cli("models", "compare", "churn", "1", "2", "--data", str(holdout))
    assert no_target.exit_code == 2


@pytest.mark.skipif(
    not HAS_EVALUATE, reason="loopml.models.evaluate (compare) is not in this checkout yet"
)
def test_compare_refuses_an_unknown_metric_or_target(cli, churn: Logged, tmp_path: Path) -> None:
    holdout = tmp_path / "holdout.csv"
    churn.frame.to_csv(holdout, index=False)
    args = ("models", "compare", "churn", "1", "2", "--data", str(holdout))
    metric = cli(*args, "--target", "y", "--metric", "no_such_metric")
    _clean(metric, 2)
    assert "no_such_metric" in metric.stderr
    target = cli(*args, "--target", "no_such_column")
    _clean(target, 2)
    assert "no_such_column" in target.stderr
