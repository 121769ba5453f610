"""loopml.data on files, folders and tables, on SQLite and PostgreSQL metadata."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.data.conftest import make_tree, settle

import loopml
from loopml import data
from loopml.errors import (
    DatasetNotFoundError,
    DataValidationError,
    IntegrityError,
    InvalidArgumentError,
    UnsafePathError,
)
from loopml.testing.store_suite import ODD_NAMES

pytestmark = pytest.mark.usefixtures("data_store")


def _blob_count(tmp_path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(tmp_path / "blobs" / "blake3"))


def _frame(n: int = 200, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [18 + i % 60 for i in range(n)],
            "plan": ["basic", "pro", "enterprise", "pro"] * (n // 4),
            "spend": [float(i) * 1.5 + shift for i in range(n)],
        }
    )


# -- folders and files -------------------------------------------------------------------------


def test_folder_round_trip_with_odd_names(tmp_path: Path) -> None:
    files = {f"odd/{name}": name for name in ODD_NAMES}
    files.update({"a.txt": "a", "deep/er/b.bin": bytes(range(256)), "empty": b""})
    src = make_tree(tmp_path / "src", files)
    ds = data.add("odd", src)
    assert (ds.version, ds.kind.value, ds.num_files) == (1, "files", len(files))
    assert {e.path for e in ds.files()} == set(files)
    out = ds.materialize(tmp_path / "out")
    for name, content in files.items():
        expected = content.encode() if isinstance(content, str) else content
        assert (out / name).read_bytes() == expected
    got = data.get("odd@v1")
    assert got.hash == ds.hash
    assert sorted(os.listdir(got.path() / "odd")) == sorted(ODD_NAMES)


def test_single_file_is_stored_under_its_name(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    ds = data.add("weights", tmp_path / "weights.bin")
    assert [e.path for e in ds.files()] == ["weights.bin"]
    assert (ds.path() / "weights.bin").read_bytes() == b"\x00\x01" * 1000


def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"f{i}.txt": f"content {i}" for i in range(20)})
    first = data.add("one", src)
    stored = _blob_count(tmp_path)
    assert stored == 21  # 20 files and the manifest
    again = data.add("one", src)
    assert (again.version, again.stats.created) == (1, False)
    other = data.add("two", src)  # another dataset, same content: same hash, no new blobs
    assert other.hash == first.hash
    assert _blob_count(tmp_path) == stored
    (src / "f0.txt").write_text("new")
    second = data.add("one", src)
    assert second.version == 2
    assert _blob_count(tmp_path) == stored + 2  # one new file and one new manifest


def test_versions_are_listed_and_resolved(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a": "1"})
    data.add("d", src)
    (src / "a").write_text("2")
    data.add("d", src, description="second")
    assert [v.version for v in data.list_versions("d")] == [2, 1]
    assert data.get("d").version == 2
    assert data.get("d@latest").version == 2
    assert data.get("d@1").version == 1
    assert data.get("d@v2").info.description == "second"
    assert data.resolve("d") == ("d", 2)
    assert [d.name for d in data.list_datasets()] == ["d"]


# -- the stat cache ----------------------------------------------------------------------------


def test_unchanged_readd_hashes_nothing(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"f{i}": os.urandom(100) for i in range(50)})
    settle()
    first = data.add("d", src)
    assert first.stats.files_hashed == 50
    again = data.add("d", src)
    assert (again.stats.files_hashed, again.stats.bytes_hashed) == (0, 0)
    assert (again.version, again.stats.created) == (1, False)


def test_changed_file_with_same_size_is_detected(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"f{i}": "aaaa" for i in range(10)})
    settle()
    data.add("d", src)
    (src / "f3").write_text("bbbb")  # same size, new mtime
    settle()
    ds = data.add("d", src)
    assert (ds.version, ds.stats.files_hashed) == (2, 1)
    assert (ds.path() / "f3").read_text() == "bbbb"


def test_restoring_the_old_mtime_does_not_fool_the_cache(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f": "aaaa", "g": "cccc"})
    settle()
    data.add("d", src)
    before = os.stat(src / "f")
    (src / "f").write_text("bbbb")
    os.utime(src / "f", ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    settle()
    ds = data.add("d", src)
    assert (ds.version, ds.stats.files_hashed) == (2, 1)


def test_touched_identical_file_is_rehashed_and_unchanged(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f": "same", "g": "other"})
    settle()
    data.add("d", src)
    os.utime(src / "f")
    settle()
    ds = data.add("d", src)
    assert (ds.stats.files_hashed, ds.stats.created, ds.version) == (1, False, 1)
    assert ds.stats.bytes_stored == 0


def test_deleted_blob_is_stored_again_despite_the_cache(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f": "payload"})
    settle()
    first = data.add("a", src)
    digest = first.files()[0].digest
    hexd = digest.removeprefix("blake3:")
    (tmp_path / "blobs" / "blake3" / hexd[:2] / hexd).unlink()
    other = data.add("b", src)  # a new dataset does not know the digest: the blob is checked
    assert other.stats.files_hashed == 1
    assert (other.path() / "f").read_text() == "payload"


def test_added_and_removed_files(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"keep": "k", "drop": "d", "edit": "e"})
    data.add("d", src)
    (src / "drop").unlink()
    (src / "new").write_text("n")
    (src / "edit").write_text("E!")
    data.add("d", src)
    change = data.diff("d@v1", "d@v2")
    assert [e.path for e in change.added] == ["new"]
    assert [e.path for e in change.removed] == ["drop"]
    assert [(a.path, a.size, b.size) for a, b in change.changed] == [("edit", 1, 2)]
    assert change.unchanged == 1
    assert not change.identical
    assert change.to_dict()["changed"][0]["path"] == "edit"
    assert data.diff("d@v1", "d@v1").identical


# -- tables ------------------------------------------------------------------------------------


def test_dataframe_round_trip_schema_and_profile() -> None:
    df = _frame()
    ds = data.add("customers", df)
    assert (ds.kind.value, ds.num_rows, ds.num_files) == ("table", 200, 1)
    assert [e.path for e in ds.files()] == ["data.parquet"]
    pd.testing.assert_frame_equal(data.get("customers@v1").to_pandas(), df)
    assert ds.schema is not None
    assert ds.profile is not None
    age = ds.schema.column("age")
    assert (age.kind, age.min, age.max, age.nullable) == ("numeric", 18, 77, False)
    assert ds.schema.column("plan").categories == {"pro": 100, "basic": 50, "enterprise": 50}
    assert ds.profile.columns["spend"].count == 200
    assert data.add("customers", df.copy()).stats.created is False  # same table, same version


def test_arrow_csv_and_parquet_sources(tmp_path: Path) -> None:
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    from_arrow = data.add("t", table)
    pq.write_table(table, tmp_path / "t.parquet")
    from_parquet = data.add("p", tmp_path / "t.parquet")
    # a Parquet file is stored byte for byte
    assert (from_parquet.path() / "data.parquet").read_bytes() == (
        tmp_path / "t.parquet"
    ).read_bytes()
    (tmp_path / "t.csv").write_text("x,y\n1,a\n2,b\n3,c\n")
    from_csv = data.add("c", tmp_path / "t.csv")
    assert from_csv.to_arrow().equals(from_arrow.to_arrow())
    assert from_csv.info.source.endswith("t.csv")
    as_files = data.add("raw", tmp_path / "t.csv", format="files")
    assert [e.path for e in as_files.files()] == ["t.csv"]


def test_schema_change_is_flagged_and_diffed() -> None:
    data.add("c", _frame())
    changed = _frame().drop(columns=["plan"]).assign(spend=lambda f: f["spend"] + 1000.0)
    changed["age"] = changed["age"].astype("float64")
    ds = data.add("c", changed)
    assert ds.schema_diff is not None
    assert ds.schema_diff.changed
    assert ds.schema_diff.removed == ("plan",)
    assert ("age", "int64", "double") in ds.schema_diff.type_changed
    delta = data.diff("c@v1", "c@v2")
    assert delta.rows == (200, 200)
    assert delta.schema is not None
    assert delta.schema.removed == ("plan",)
    spend = next(c for c in delta.columns if c.column == "spend")
    old_mean, new_mean = spend.changes["mean"]
    assert new_mean - old_mean == pytest.approx(1000.0)


def test_to_arrow_refuses_files_that_are_not_tables(tmp_path: Path) -> None:
    ds = data.add("f", make_tree(tmp_path / "src", {"a.txt": "x"}))
    with pytest.raises(InvalidArgumentError, match="not all Parquet"):
        ds.to_arrow()


# -- rules -------------------------------------------------------------------------------------

RULES = {
    "rows": {"min": 10},
    "columns": {
        "age": {"type": "integer", "min": 18, "max": 120, "not_null": True},
        "plan": {"allowed": ["basic", "pro", "enterprise"]},
    },
}


def test_rules_refuse_a_bad_version_and_nothing_is_stored(tmp_path: Path) -> None:
    bad = _frame()
    bad.loc[5, "age"] = 3
    bad.loc[7, "plan"] = "gold"
    with pytest.raises(DataValidationError) as info:
        data.add("c", bad, rules=RULES)
    assert "refused" in str(info.value)
    assert {f.rule for f in info.value.report.failures} == {
        "columns.age.min",
        "columns.plan.allowed",
    }
    with pytest.raises(DatasetNotFoundError):
        data.get("c")
    assert not (tmp_path / "blobs" / "blake3").exists()


def test_attached_rules_guard_later_adds(tmp_path: Path) -> None:
    data.add("c", _frame(), rules=RULES)
    bad = _frame()
    bad.loc[0, "age"] = 500
    with pytest.raises(DataValidationError, match=r"age"):
        data.add("c", bad)  # no rules given: the attached ones apply
    assert data.get("c").version == 1
    data.set_rules("c", None)
    assert data.add("c", bad).version == 2


def test_rules_from_a_yaml_file_and_validate_by_dataset_name(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "columns:\n  age: {type: integer, max: 30}\nrows: {min: 1}\n"
    )
    data.set_rules("c", tmp_path / "rules.yaml")
    report = data.validate(_frame(), "c")
    assert not report.passed
    assert report.failures[0].rule == "columns.age.max"
    _frame().to_csv(tmp_path / "frame.csv", index=False)
    assert data.validate(tmp_path / "frame.csv", str(tmp_path / "rules.yaml")).failures
    with pytest.raises(DataValidationError):
        data.validate(_frame(), "c", strict=True)
    assert data.validate(_frame(), {"columns": {"age": {"max": 100}}}).passed


def test_rules_do_not_apply_to_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="apply to tables") as info:
        data.add("f", make_tree(tmp_path / "s", {"a": "b"}), rules=RULES)
    assert info.value.details["field"] == "rules"


def test_validate_needs_attached_rules() -> None:
    data.add("plain", _frame())
    with pytest.raises(InvalidArgumentError, match="no validation rules"):
        data.validate(_frame(), "plain")
    with pytest.raises(DatasetNotFoundError):
        data.validate(_frame(), "missing")


# -- lineage -----------------------------------------------------------------------------------


def test_runs_record_their_inputs() -> None:
    v1 = data.add("train", _frame())
    data.add("train", _frame(shift=1.0))
    data.add("test", _frame(n=40))
    with loopml.start_run(experiment="churn") as run:
        loopml.log_input(v1)
        loopml.log_input("test", context="evaluation")  # latest, resolved now
    with loopml.start_run(experiment="churn") as other:
        loopml.log_input("train@v2")
    client = loopml.Client()
    assert [(i.ref, i.context) for i in client.list_inputs(run.info.run_id)] == [
        ("test@v1", "evaluation"),
        ("train@v1", "training"),
    ]
    assert [u.run_id for u in v1.usages()] == [run.info.run_id]
    assert [u.run_id for u in data.get("train@v2").usages()] == [other.info.run_id]


def test_log_input_bad_arguments() -> None:
    data.add("train", _frame())
    with loopml.start_run(experiment="churn"):
        with pytest.raises(InvalidArgumentError, match="dataset") as info:
            loopml.log_input(42)
        assert info.value.details["field"] == "dataset"
        with pytest.raises(DatasetNotFoundError):
            loopml.log_input("train@v7")
        with pytest.raises(InvalidArgumentError, match="context"):
            loopml.log_input("train", context="")


# -- bad input and integrity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "a@v1"}, "name"),
        ({"source": 42}, "source"),
        ({"source": "missing-folder"}, "source"),
        ({"format": "parquet"}, "format"),
        ({"unpack": True}, "unpack"),
    ],
)
def test_add_bad_arguments(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"name": "d", "source": make_tree(tmp_path / "s", {"a": "b"})}
    args.update(kwargs)
    with pytest.raises(InvalidArgumentError) as info:
        data.add(**args)  # type: ignore[arg-type]
    assert info.value.details["field"] == field


@pytest.mark.parametrize("ref", ["", "d@", "d@v0", "d@vx", "d@-1", "a b", "d@v1@v2", None])
def test_get_bad_references(ref: object) -> None:
    with pytest.raises(InvalidArgumentError, match="dataset reference"):
        data.get(ref)  # type: ignore[arg-type]


def test_special_files_and_bad_names_are_refused(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"ok": "x"})
    os.mkfifo(src / "pipe")
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        data.add("d", src)
    (src / "pipe").unlink()
    os.close(os.open(os.fsencode(src) + b"/bad-\xff-name", os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(InvalidArgumentError, match="UTF-8"):
        data.add("d", src)


def test_materialize_never_escapes_its_folder(tmp_path: Path) -> None:
    ds = data.add("d", make_tree(tmp_path / "src", {"sub/f": "x"}))
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (dest / "sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        ds.materialize(dest)
    assert list((tmp_path / "elsewhere").iterdir()) == []
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        ds.materialize(tmp_path / "afile")


def test_corrupted_blob_is_refused_on_read(tmp_path: Path) -> None:
    ds = data.add("d", make_tree(tmp_path / "src", {"f": "genuine"}))
    hexd = ds.files()[0].digest.removeprefix("blake3:")
    obj = tmp_path / "blobs" / "blake3" / hexd[:2] / hexd
    obj.chmod(0o644)
    obj.write_text("forged!")
    with pytest.raises(IntegrityError):
        ds.materialize(tmp_path / "out")
    assert not (tmp_path / "out" / "f").exists()
