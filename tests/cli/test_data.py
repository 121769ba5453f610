"""``loopml data``: add, ls, show, diff, get, validate and rules."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
import yaml

import loopml
from loopml.cli import data as data_cli

HEADER = "age,plan,spend\n"
RULES = """\
rows: {min: 3}
columns:
  age: {type: integer, min: 18, max: 120, not_null: true}
  plan: {allowed: [basic, pro, enterprise]}
"""


def settle() -> None:
    """Wait past the stat cache's racy-timestamp margin, so just-written files are cached."""
    time.sleep(0.12)


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def write_csv(path: Path, rows: list[tuple[int, str, float]], *, with_plan: bool = True) -> Path:
    if with_plan:
        lines = [HEADER] + [f"{a},{p},{s}\n" for a, p, s in rows]
    else:
        lines = ["age,spend\n"] + [f"{a},{s}\n" for a, _, s in rows]
    path.write_text("".join(lines))
    return path


GOOD = [(20 + i, ["basic", "pro", "enterprise", "pro"][i % 4], 1.5 * i) for i in range(40)]


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "good.csv", GOOD)


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    rows = list(GOOD)
    rows[5] = (3, "pro", 1.0)
    rows[7] = (30, "gold", 2.0)
    return write_csv(tmp_path / "bad.csv", rows)


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output


# -- add ---------------------------------------------------------------------------------------


def test_add_folder_then_readd_is_unchanged(cli, cli_json, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": "alpha", "b.txt": "beta", "sub/c.txt": "gamma"})
    settle()
    first = cli("data", "add", "files", str(src), "-d", "first cut")
    assert first.exit_code == 0, first.output
    out = first.stdout
    for text in ("Added files@v1", "blake3:", "files", "3", "hashed", "stored"):
        assert text in out, text
    assert "\x1b[" not in out  # not a terminal: no colour codes

    again = cli("data", "add", "files", str(src))
    assert again.exit_code == 0, again.output
    assert "Unchanged: still files@v1" in again.stdout

    doc = cli_json("data", "add", "files", str(src), "--json")
    assert doc["version"] == 1
    assert doc["ref"] == "files@v1"
    assert doc["created"] is False
    assert doc["hash"].startswith("blake3:")
    assert (doc["kind"], doc["num_files"], doc["size"], doc["num_rows"]) == ("files", 3, 14, None)
    stats = doc["stats"]
    for key in ("files", "files_hashed", "bytes_hashed", "bytes_stored", "seconds"):
        assert key in stats, key
    assert (stats["files"], stats["files_hashed"], stats["bytes_hashed"]) == (3, 0, 0)
    assert stats["bytes_stored"] == 0
    assert doc["schema_changes"] == []


def test_add_json_of_a_new_version(cli_json, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": "alpha"})
    first = cli_json("data", "add", "d", str(src), "--json")
    assert (first["version"], first["created"]) == (1, True)
    assert first["stats"]["files_hashed"] == 1
    assert first["stats"]["bytes_hashed"] == 5
    (src / "a.txt").write_text("changed")
    second = cli_json("data", "add", "d", str(src), "--json")
    assert (second["version"], second["ref"], second["created"]) == (2, "d@v2", True)
    assert second["hash"] != first["hash"]


def test_add_csv_refused_by_rules_stores_nothing(cli, cli_json, bad_csv, rules_file) -> None:
    result = cli("data", "add", "customers", str(bad_csv), "--rules", str(rules_file))
    assert result.exit_code == 1  # the data broke the rules
    assert result.stdout == ""
    assert result.stderr.startswith("Error: The new version of 'customers' was refused")
    assert "column 'age'" in result.stderr
    assert "column 'plan'" in result.stderr
    _no_traceback(result)
    assert cli_json("data", "ls", "--json") == []
    assert cli("data", "show", "customers").exit_code == 3


def test_add_with_passing_rules_attaches_them(cli, cli_json, good_csv, bad_csv, rules_file) -> None:
    doc = cli_json("data", "add", "customers", str(good_csv), "--rules", str(rules_file), "--json")
    assert (doc["kind"], doc["num_rows"], doc["num_files"]) == ("table", 40, 1)
    [listed] = cli_json("data", "ls", "--json")
    assert listed["name"] == "customers"
    assert listed["latest_version"] == 1
    assert listed["rules"]["columns"]["age"]["min"] == 18
    refused = cli("data", "add", "customers", str(bad_csv))  # the attached rules apply
    assert refused.exit_code == 1
    assert "age" in refused.stderr
    assert cli_json("data", "ls", "--json")[0]["latest_version"] == 1


def test_rules_apply_to_tables_only(cli, tmp_path: Path, rules_file) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": "x"})
    result = cli("data", "add", "f", str(src), "--rules", str(rules_file))
    assert result.exit_code == 2
    assert "apply to tables" in result.stderr


def test_add_schema_change_is_a_visible_warning(cli, cli_json, tmp_path: Path) -> None:
    cli_json("data", "add", "c", str(write_csv(tmp_path / "v1.csv", GOOD)), "--json")
    v2 = write_csv(tmp_path / "v2.csv", GOOD, with_plan=False)
    result = cli("data", "add", "c", str(v2))
    assert result.exit_code == 0, result.output
    assert "Added c@v2" in result.stdout
    assert "Warning: the schema changed since c@v1" in result.stderr
    assert "column 'plan' removed" in result.stderr
    write_csv(v2, GOOD)
    doc = cli_json("data", "add", "c", str(v2), "--json")
    assert doc["schema_changes"] == ["column 'plan' added"]
    assert doc["schema_diff"]["added"] == ["plan"]


def test_add_format_and_unpack(cli_json, good_csv, tmp_path: Path) -> None:
    as_files = cli_json("data", "add", "raw", str(good_csv), "--format", "files", "--json")
    assert (as_files["kind"], as_files["num_rows"]) == ("files", None)
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("one.txt", "1")
        zf.writestr("dir/two.txt", "22")
    unpacked = cli_json("data", "add", "bundle", str(archive), "--unpack", "--json")
    assert (unpacked["kind"], unpacked["num_files"], unpacked["size"]) == ("files", 2, 3)


def test_add_missing_rules_file_is_a_usage_error(cli, good_csv) -> None:
    result = cli("data", "add", "c", str(good_csv), "--rules", "nowhere.yaml")
    assert result.exit_code == 2
    assert "does not exist" in result.output


# -- ls ----------------------------------------------------------------------------------------


def test_ls(cli, good_csv, rules_file, tmp_path: Path) -> None:
    empty = cli("data", "ls")
    assert empty.exit_code == 0
    assert empty.stdout == ""
    assert "No datasets yet" in empty.stderr
    cli("data", "add", "customers", str(good_csv), "--rules", str(rules_file))
    cli("data", "add", "raw", str(make_tree(tmp_path / "src", {"a": "b"})))
    result = cli("data", "ls")
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if "│" in line}
    assert "v1" in lines["customers"]
    assert "yes" in lines["customers"]
    assert "no" in lines["raw"]
    assert "just now" in lines["raw"] or "s ago" in lines["raw"]


# -- show --------------------------------------------------------------------------------------


def test_show_table_schema_profile_and_lineage(cli, cli_json, store_uri, good_csv) -> None:
    cli("data", "add", "customers", str(good_csv), "-d", "[bold]not markup[/bold]")
    result = cli("data", "show", "customers@v1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        "Dataset customers@v1",
        "[bold]not markup[/bold]",
        str(good_csv),
        "Schema",
        "Profile",
        "age",
        "plan",
        "spend",
        "int64",
        "categorical",
        "pro 50.0%",
    ):
        assert text in out, text
    assert "No run has used customers@v1 yet" in result.stderr

    loopml.set_tracking_uri(store_uri)
    with loopml.start_run(experiment="churn") as run:
        loopml.log_input("customers@v1")
        loopml.log_input("customers", context="evaluation")
    run_id = run.info.run_id

    shown = cli("data", "show", "customers")
    assert shown.exit_code == 0, shown.output
    assert "Used by runs" in shown.stdout
    assert run_id in shown.stdout
    assert "training" in shown.stdout
    assert "evaluation" in shown.stdout

    doc = cli_json("data", "show", "customers", "--json")
    assert set(doc) == {"info", "schema", "profile", "usages", "models", "files"}
    assert doc["info"]["ref"] == "customers@v1"
    assert doc["info"]["num_rows"] == 40
    assert doc["info"]["description"] == "[bold]not markup[/bold]"
    assert [c["name"] for c in doc["schema"]["columns"]] == ["age", "plan", "spend"]
    assert doc["profile"]["columns"]["age"]["kind"] == "numeric"
    assert {(u["run_id"], u["context"]) for u in doc["usages"]} == {
        (run_id, "training"),
        (run_id, "evaluation"),
    }
    assert [f["path"] for f in doc["files"]] == ["data.parquet"]

    # the run shows its inputs too
    run_shown = cli("runs", "show", run_id)
    assert run_shown.exit_code == 0, run_shown.output
    assert "Dataset inputs" in run_shown.stdout
    assert "customers@v1" in run_shown.stdout
    inputs = cli_json("runs", "show", run_id, "--json")["inputs"]
    assert [(i["name"], i["version"], i["context"]) for i in inputs] == [
        ("customers", 1, "evaluation"),
        ("customers", 1, "training"),
    ]


def test_show_files_dataset(cli, cli_json, tmp_path: Path) -> None:
    files = {f"f{i:02d}.txt": "x" * i for i in range(25)}
    cli("data", "add", "many", str(make_tree(tmp_path / "src", files)))
    result = cli("data", "show", "many")
    assert result.exit_code == 0, result.output
    assert "Files (first 20 of 25)" in result.stdout
    assert "f19.txt" in result.stdout
    assert "f20.txt" not in result.stdout
    assert "5 more files: add --files" in result.stderr
    assert "Schema" not in result.stdout
    every = cli("data", "show", "many", "--files")
    assert "f24.txt" in every.stdout
    assert "Files (25)" in every.stdout
    doc = cli_json("data", "show", "many@v1", "--json")
    assert len(doc["files"]) == 25
    assert doc["schema"] is None
    assert doc["profile"] is None
    assert doc["info"]["kind"] == "files"


# -- diff --------------------------------------------------------------------------------------


def test_diff_files(cli, cli_json, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"keep.txt": "same", "change.txt": "old", "gone.txt": "x"})
    cli("data", "add", "d", str(src))
    (src / "change.txt").write_text("newer")
    (src / "gone.txt").unlink()
    (src / "new.txt").write_text("hello")
    cli("data", "add", "d", str(src))
    result = cli("data", "diff", "d@v1", "d@v2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "d@v1 → d@v2: 1 added, 1 removed, 1 changed, 1 unchanged" in out
    for text in ("Added files (1)", "new.txt", "Removed files (1)", "gone.txt", "change.txt"):
        assert text in out, text
    assert "keep.txt" not in out
    doc = cli_json("data", "diff", "d@v1", "d", "--json")
    assert [e["path"] for e in doc["added"]] == ["new.txt"]
    assert [e["path"] for e in doc["removed"]] == ["gone.txt"]
    assert [(e["path"], e["old_size"], e["new_size"]) for e in doc["changed"]] == [
        ("change.txt", 3, 5)
    ]
    assert doc["unchanged"] == 1
    assert doc["identical"] is False


def test_diff_tables_rows_schema_and_profiles(cli, cli_json, tmp_path: Path) -> None:
    cli("data", "add", "c", str(write_csv(tmp_path / "v1.csv", GOOD)))
    shifted = [(a, p, s + 1000.0) for a, p, s in GOOD[:30]]
    cli("data", "add", "c", str(write_csv(tmp_path / "v2.csv", shifted, with_plan=False)))
    result = cli("data", "diff", "c@v1", "c@v2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "rows: 40 → 30 (-10)" in out
    assert "Schema changes:" in out
    assert "column 'plan' removed" in out
    assert "Column profiles" in out
    for text in ("spend", "mean", "missing_rate", "psi"):
        assert text in out, text
    doc = cli_json("data", "diff", "c@v1", "c@v2", "--json")
    assert doc["rows"] == {"old": 40, "new": 30}
    assert doc["schema"]["removed"] == ["plan"]
    spend = next(c for c in doc["columns"] if c["column"] == "spend")
    old_mean, new_mean = spend["changes"]["mean"]
    assert new_mean > old_mean + 900
    assert spend["psi"] is not None


# -- get ---------------------------------------------------------------------------------------


def test_get_writes_the_files(cli, cli_json, tmp_path: Path) -> None:
    files = {"a.txt": "alpha", "deep/er/b.txt": "beta"}
    cli("data", "add", "d", str(make_tree(tmp_path / "src", files)))
    out_dir = tmp_path / "out"
    result = cli("data", "get", "d@v1", "-o", str(out_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out_dir)
    assert "2 files, 9 B" in result.stderr
    for name, content in files.items():
        assert (out_dir / name).read_text() == content
    doc = cli_json("data", "get", "d", "--output", str(tmp_path / "again"), "--json")
    assert doc == {
        "ref": "d@v1",
        "hash": doc["hash"],
        "path": str(tmp_path / "again"),
        "num_files": 2,
        "size": 9,
    }
    assert (tmp_path / "again" / "deep" / "er" / "b.txt").read_text() == "beta"


def test_get_needs_an_output_folder(cli, tmp_path: Path) -> None:
    cli("data", "add", "d", str(make_tree(tmp_path / "src", {"a": "b"})))
    result = cli("data", "get", "d")
    assert result.exit_code == 2
    assert "--output" in result.output


# -- validate ----------------------------------------------------------------------------------


def test_validate_pass_and_fail(cli, cli_json, good_csv, bad_csv, rules_file) -> None:
    cli("data", "add", "customers", str(good_csv), "--rules", str(rules_file))
    passed = cli("data", "validate", "customers", str(good_csv))
    assert passed.exit_code == 0, passed.output
    assert "Passed: all 8 rules passed on 40 rows." in passed.stdout

    failed = cli("data", "validate", "customers", str(bad_csv))
    assert failed.exit_code == 1
    out = failed.stdout
    assert "Failed: 2 of 8 rules failed on 40 rows." in out
    for text in ("columns.age.min", "columns.plan.allowed", "row 5: age=3", "row 7: plan='gold'"):
        assert text in out, text
    _no_traceback(failed)

    doc = json.loads(cli("data", "validate", "customers", str(bad_csv), "--json").stdout)
    assert doc["passed"] is False
    assert {f["rule"] for f in doc["failures"]} == {"columns.age.min", "columns.plan.allowed"}
    assert cli("data", "validate", "customers", str(bad_csv), "--json").exit_code == 1

    warned = cli("data", "validate", "customers", str(bad_csv), "--warn-only")
    assert warned.exit_code == 0
    assert "columns.age.min" in warned.stdout


def test_validate_with_a_rules_file(cli, tmp_path: Path, good_csv) -> None:
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"columns": {"age": {"max": 30}}}))
    result = cli("data", "validate", "anything", str(good_csv), "--rules", str(strict))
    assert result.exit_code == 1
    assert "columns.age.max" in result.stdout
    loose = tmp_path / "loose.yaml"
    loose.write_text("columns:\n  age: {max: 100}\n")
    assert cli("data", "validate", "x", str(good_csv), "-r", str(loose)).exit_code == 0


def test_validate_bad_inputs(cli, tmp_path: Path, good_csv) -> None:
    cli("data", "add", "plain", str(good_csv))
    no_rules = cli("data", "validate", "plain", str(good_csv))
    assert no_rules.exit_code == 2
    assert "no validation rules attached" in no_rules.stderr
    assert cli("data", "validate", "missing", str(good_csv)).exit_code == 3
    unreadable = cli("data", "validate", "plain", str(tmp_path / "nothere.csv"))
    assert unreadable.exit_code == 2
    assert unreadable.stderr.startswith("Error: Could not read 'nothere.csv'")
    _no_traceback(unreadable)


# -- rules -------------------------------------------------------------------------------------


def test_rules_set_show_and_remove(cli, cli_json, rules_file) -> None:
    attached = cli("data", "rules", "customers", str(rules_file))
    assert attached.exit_code == 0, attached.output
    assert "Attached the rules in rules.yaml to 'customers'" in attached.stderr
    assert yaml.safe_load(attached.stdout) == yaml.safe_load(RULES)

    shown = cli("data", "rules", "customers")
    assert shown.exit_code == 0
    assert yaml.safe_load(shown.stdout) == yaml.safe_load(RULES)  # can be redirected to a file
    doc = cli_json("data", "rules", "customers", "--json")
    assert doc["name"] == "customers"
    assert doc["rules"]["rows"] == {"min": 3}

    removed = cli("data", "rules", "customers", "--remove")
    assert removed.exit_code == 0
    assert "Removed the rules of 'customers'" in removed.stderr
    none = cli("data", "rules", "customers")
    assert none.exit_code == 0
    assert none.stdout == ""
    assert "has no rules attached" in none.stderr
    assert cli_json("data", "rules", "customers", "--json") == {"name": "customers", "rules": None}

    both = cli("data", "rules", "customers", str(rules_file), "--remove")
    assert both.exit_code == 2
    assert "not both" in both.output


def test_bad_rules_file_is_a_bad_argument(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns:\n  age: {minimum: 3}\n")
    result = cli("data", "rules", "customers", str(bad))
    assert result.exit_code == 2
    assert "did you mean 'min'" in result.stderr
    _no_traceback(result)


# -- bad inputs and help -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["add", "bad name", "."], 2, "The dataset name must be"),
        (["show", "x@v0"], 2, "Invalid dataset reference 'x@v0'"),
        (["get", "x@v0", "-o", "out"], 2, "Invalid dataset reference 'x@v0'"),
        (["add", "d", "no/such/path"], 2, "No such file or folder"),
        (["show", "missing"], 3, "No dataset named 'missing'."),
        (["show", "d@v7"], 3, "Dataset 'd' has no version 7"),
        (["diff", "d@v1", "missing@v1"], 3, "No dataset named 'missing'."),
        (["get", "missing", "-o", "out"], 3, "No dataset named 'missing'."),
        (["rules", "missing"], 3, "No dataset named 'missing'."),
        (["rules", "missing", "--remove"], 3, "No dataset named 'missing'."),
        (["rules", "bad name"], 2, "The dataset name must be"),
        (["validate", "bad name", "t.csv"], 2, "The dataset name must be"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_bad_inputs_are_one_clear_line(
    cli, tmp_path: Path, args: list[str], code: int, text: str
) -> None:
    cli("data", "add", "d", str(make_tree(tmp_path / "src", {"a": "b"})))
    result = cli("data", *args)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert text in result.stderr
    _no_traceback(result)


@pytest.mark.parametrize(
    "command", [[], ["add"], ["ls"], ["show"], ["diff"], ["get"], ["validate"], ["rules"]]
)
def test_every_command_has_help_with_an_example(runner, command: list[str]) -> None:
    from loopml.cli import app

    result = runner.invoke(app, ["data", *command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    if command:
        assert f"loopml data {command[0]}" in result.stdout  # the example


def test_progress_bar_only_for_big_jobs_in_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    with data_cli._ProgressBar("quiet") as piped:  # not a terminal here
        piped(10, data_cli.PROGRESS_MIN_BYTES * 2)
        assert piped._progress is None

    monkeypatch.setattr(data_cli, "_stderr_is_terminal", lambda: True)
    with data_cli._ProgressBar("small") as small:
        small(10, 100)
        assert small._progress is None
    with data_cli._ProgressBar("big") as big:
        big(10, data_cli.PROGRESS_MIN_BYTES + 1)
        assert big._progress is not None
    assert big._progress is None  # stopped on exit
    with data_cli._ProgressBar("many files", big=True) as many:
        many(1, 2)
        assert many._progress is not None


def test_show_lists_the_models_trained_on_a_version(cli, cli_json, store_uri: str) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import loopml
    from loopml import data, models, registry

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 5, "y": [0, 0, 1, 1] * 5})
    version = data.add("train", frame, tracking_uri=store_uri)
    with loopml.start_run(experiment="e", tracking_uri=store_uri):
        loopml.log_input(version)
        model = LogisticRegression().fit(frame[["x"]], frame["y"])
        info = models.log_model(model, "model")
    registry.register(info.uri, "clf", tracking_uri=store_uri)
    registry.set_alias("clf", "champion", 1, tracking_uri=store_uri)
    doc = cli_json("data", "show", "train@v1", "--json")
    assert [(m["name"], m["version"], m["aliases"]) for m in doc["models"]] == [
        ("clf", 1, ["champion"])
    ]
    shown = cli("data", "show", "train@v1")
    assert "Models trained on it" in shown.stdout
    assert "champion" in shown.stdout
