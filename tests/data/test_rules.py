"""Declarative validation rules: loading, checking the rules themselves, and validating data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from loopml.data.rules import ColumnRule, Rules
from loopml.data.validation import RuleFailure, ValidationReport, validate
from loopml.errors import DataValidationError, InvalidArgumentError

FULL_YAML = """
rows: {min: 3, max: 1000}
columns:
  age:    {type: integer, required: true, not_null: true, min: 0, max: 120}
  income: {type: number, min: 0, exclusive_min: false}
  plan:   {type: string, allowed: [basic, pro, enterprise]}
  id:     {unique: true}
  signup: {type: datetime, min: 2020-01-01}
unique: [[customer_id, day]]
checks:
  - name: spend_not_above_income
    expr: "spend <= income * 2"
  - name: adult_or_no_card
    expr: "age >= 18 or has_card == false"
"""


def good_table() -> pa.Table:
    return pa.table(
        {
            "age": [30, 45, 17, 60],
            "income": [100.0, 0.0, 50.0, 10.0],
            "plan": ["basic", "pro", None, "enterprise"],
            "id": [1, 2, 3, 4],
            "signup": [
                dt.datetime(2021, 1, 1),
                dt.datetime(2022, 5, 1),
                None,
                dt.datetime(2020, 1, 1),
            ],
            "customer_id": [1, 1, 2, 2],
            "day": [1, 2, 1, 2],
            "spend": [150.0, 0.0, 10.0, 20.0],
            "has_card": [True, False, False, True],
        }
    )


def failure(report: ValidationReport, rule: str) -> RuleFailure:
    found = [f for f in report.failures if f.rule == rule]
    assert found, f"no failure {rule!r} in {[f.rule for f in report.failures]}"
    return found[0]


def rules_of(report: ValidationReport) -> list[str]:
    return [f.rule for f in report.failures]


# ------------------------------------------------------------------------- the happy path


def test_good_data_passes_every_rule_kind() -> None:
    report = validate(good_table(), FULL_YAML)
    assert report.passed, report.summary()
    assert report.failures == ()
    assert report.rows == 4
    # rows 2 + age 5 (required, type, not_null, min, max) + income 3 + plan 3 + id 2 + signup 3
    # + 1 compound unique + 2 checks
    assert report.checked == 21
    assert report.summary() == "all 21 rules passed on 4 rows"


def test_every_broken_rule_is_listed_not_just_the_first() -> None:
    table = pa.table(
        {
            "age": [10, None, 200, -1],
            "income": [1.0, 2.0, -3.0, 4.0],
            "plan": ["basic", "gold", "pro", "gold"],
            "id": [1, 2, 2, 3],
            "signup": [dt.datetime(2019, 1, 1), None, None, dt.datetime(2021, 1, 1)],
            "customer_id": [1, 1, 2, 2],
            "day": [1, 1, 1, 2],
            "spend": [5.0, 1.0, 0.0, 1.0],
            "has_card": [True, False, False, True],
        }
    )
    report = validate(table, FULL_YAML)
    assert not report.passed
    assert rules_of(report) == [
        "columns.age.not_null",
        "columns.age.min",
        "columns.age.max",
        "columns.income.min",
        "columns.plan.allowed",
        "columns.id.unique",
        "columns.signup.min",
        "unique.customer_id+day",
        "checks.spend_not_above_income",
        "checks.adult_or_no_card",
    ]
    lines = report.summary().splitlines()
    assert lines[0] == "10 of 21 rules failed on 4 rows:"
    assert len(lines) == 11
    assert "  column 'age': 1 row above max 120, largest 200 (row 2)" in lines


def test_report_is_json_serialisable() -> None:
    table = pa.table({"when": [dt.datetime(2019, 1, 1)], "x": [float("nan")], "b": [b"\x01"]})
    rules = Rules().column("when", type="datetime", min="2020-01-01").column("x", not_null=True)
    report = validate(table, rules.check("b_present", "isnull(b)"))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["passed"] is False
    assert data["failures"][0]["examples"] == [
        {"row": 0, "values": {"when": "2019-01-01T00:00:00"}}
    ]
    assert data["failures"][1]["examples"] == [{"row": 0, "values": {"x": "NaN"}}]
    assert data["failures"][2]["examples"] == [{"row": 0, "values": {"b": "01"}}]


# ------------------------------------------------------------------------------ row counts


def test_row_bounds() -> None:
    table = pa.table({"a": list(range(12))})
    low = validate(table, {"rows": {"min": 100}})
    assert failure(low, "rows.min").message == "expected at least 100 rows, got 12"
    assert failure(low, "rows.min").kind == "rows"
    assert failure(low, "rows.min").count == 1
    high = validate(table, {"rows": {"max": 10}})
    assert failure(high, "rows.max").message == "expected at most 10 rows, got 12"
    assert validate(table, {"rows": {"min": 12, "max": 12}}).passed


# ----------------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("integer", pa.array([1, 2], pa.int32()), pa.array([1.5, 2.0])),
        ("integer", pa.array([1, 2], pa.uint8()), pa.array(["1"])),
        ("number", pa.array([1.5, 2.0]), pa.array(["1.5"])),
        ("number", pa.array([1, 2]), pa.array([True])),
        ("string", pa.array(["a"]), pa.array([1])),
        ("string", pa.array(["a"], pa.large_string()), pa.array([b"a"])),
        ("string", pa.array(["a", "b"]).dictionary_encode(), pa.array([1]).dictionary_encode()),
        ("boolean", pa.array([True, None]), pa.array([1, 0])),
        ("datetime", pa.array([dt.datetime(2020, 1, 1)]), pa.array(["2020-01-01"])),
        ("datetime", pa.array([dt.date(2020, 1, 1)]), pa.array([1.0])),
        ("categorical", pa.array(["a"]).dictionary_encode(), pa.array([1])),
        ("categorical", pa.array(["a"]), pa.array([1.0])),
    ],
)
def test_types(type_: str, good: pa.Array, bad: pa.Array) -> None:
    rules = {"columns": {"c": {"type": type_}}}
    assert validate(pa.table({"c": good}), rules).passed
    report = validate(pa.table({"c": bad}), rules)
    found = failure(report, "columns.c.type")
    assert (found.kind, found.column, found.count) == ("type", "c", 1)
    assert f"expected type {type_}, got {bad.type}" in found.message


def test_all_null_column_matches_every_type() -> None:
    assert validate(pa.table({"c": pa.nulls(3)}), {"columns": {"c": {"type": "integer"}}}).passed


def test_type_mismatch_skips_the_value_rules_and_checks_of_that_column() -> None:
    table = pa.table({"age": ["ten", "-5", None], "other": [1, 2, 3]})
    rules = Rules().column("age", type="integer", not_null=True, min=0, allowed=[1], unique=True)
    report = validate(table, rules.check("adult", "age >= 18"))
    assert rules_of(report) == ["columns.age.type"]
    assert "rules skipped" in report.failures[0].message
    assert report.checked == 2  # required and type; the skipped rules are not counted


def test_value_rules_on_an_untyped_column_of_the_wrong_kind_fail_without_crashing() -> None:
    table = pa.table({"plan": ["a", "b"]})
    report = validate(table, Rules().column("plan", min=0).column("n", required=False))
    found = failure(report, "columns.plan.min")
    assert found.kind == "type"
    assert "needs a numeric column, got string" in found.message
    report = validate(pa.table({"n": [1, 2]}), Rules().column("n", allowed=["a", "b"]))
    assert failure(report, "columns.n.allowed").kind == "type"


# ---------------------------------------------------------------------- nulls and not_null


def test_not_null_counts_nulls_and_nan() -> None:
    table = pa.table({"x": [1.0, None, float("nan"), 4.0], "y": [1, None, None, 4]})
    report = validate(table, Rules().column("x", not_null=True).column("y", not_null=True))
    x = failure(report, "columns.x.not_null")
    assert (x.kind, x.column, x.count) == ("not_null", "x", 2)
    assert x.message == "column 'x': 2 rows null, expected none (not_null)"
    assert x.examples == ({"row": 1, "values": {"x": None}}, {"row": 2, "values": {"x": "NaN"}})
    assert failure(report, "columns.y.not_null").count == 2


def test_nulls_and_nan_are_not_range_allowed_or_unique_failures() -> None:
    table = pa.table(
        {"x": [1.0, None, float("nan"), None, float("nan")], "p": ["a", None] * 2 + [None]}
    )
    rules = Rules().column("x", min=0, max=2, unique=True).column("p", allowed=["a"])
    report = validate(table, rules)
    assert report.passed, report.summary()
    assert not validate(table, Rules().column("x", not_null=True)).passed


# ------------------------------------------------------------------------------ min and max


def test_min_and_max_with_examples() -> None:
    table = pa.table({"age": [5, -1, 130, 40, 121, -7]})
    report = validate(table, Rules().column("age", type="integer", min=0, max=120))
    low = failure(report, "columns.age.min")
    assert (low.kind, low.count) == ("min", 2)
    assert low.message == "column 'age': 2 rows below min 0, smallest -7"
    assert low.examples == ({"row": 1, "values": {"age": -1}}, {"row": 5, "values": {"age": -7}})
    high = failure(report, "columns.age.max")
    assert high.message == "column 'age': 2 rows above max 120, largest 130"
    assert high.line() == "column 'age': 2 rows above max 120, largest 130 (rows 2, 4)"


def test_exclusive_bounds() -> None:
    table = pa.table({"p": [0.0, 0.5, 1.0]})
    assert validate(table, Rules().column("p", min=0, max=1)).passed
    rules = Rules().column("p", min=0, max=1, exclusive_min=True, exclusive_max=True)
    report = validate(table, rules)
    assert failure(report, "columns.p.min").message.startswith(
        "column 'p': 1 row at or below exclusive min 0"
    )
    assert failure(report, "columns.p.max").examples == ({"row": 2, "values": {"p": 1.0}},)


def test_datetime_bounds_on_naive_and_timezone_aware_columns() -> None:
    rules = Rules().column("t", type="datetime", min="2020-01-01", max="2020-12-31T23:59:59")
    naive = pa.table(
        {"t": [dt.datetime(2019, 12, 31), dt.datetime(2020, 6, 1), dt.datetime(2021, 1, 1)]}
    )
    assert rules_of(validate(naive, rules)) == ["columns.t.min", "columns.t.max"]
    utc = pa.array([dt.datetime(2020, 6, 1), dt.datetime(2019, 1, 1)], pa.timestamp("us", tz="UTC"))
    assert rules_of(validate(pa.table({"t": utc}), rules)) == ["columns.t.min"]
    dates = pa.table({"t": [dt.date(2020, 1, 1), dt.date(2019, 5, 1)]})
    assert failure(validate(dates, rules), "columns.t.min").count == 1


def test_yaml_dates_become_iso_text_bounds() -> None:
    rules = Rules.from_yaml("columns: {t: {type: datetime, min: 2020-01-01}}")
    assert rules.to_dict() == {"columns": {"t": {"type": "datetime", "min": "2020-01-01"}}}


# -------------------------------------------------------------------------------- allowed


def test_allowed_values() -> None:
    table = pa.table({"plan": ["basic", "gold", None, "pro", "silver"]})
    report = validate(table, Rules().column("plan", type="string", allowed=["basic", "pro"]))
    found = failure(report, "columns.plan.allowed")
    assert (found.kind, found.count) == ("allowed", 2)
    assert (
        found.message == "column 'plan': 2 rows not in allowed values ['basic', 'pro'], e.g. 'gold'"
    )
    assert [e["row"] for e in found.examples] == [1, 4]


def test_allowed_values_on_dictionary_and_numeric_columns() -> None:
    table = pa.table({"plan": pa.array(["a", "b", "c"]).dictionary_encode(), "n": [1, 2, 3]})
    report = validate(
        table,
        Rules().column("plan", type="categorical", allowed=["a", "b"]).column("n", allowed=[1, 2]),
    )
    assert rules_of(report) == ["columns.plan.allowed", "columns.n.allowed"]
    assert report.failures[0].examples == ({"row": 2, "values": {"plan": "c"}},)


# ------------------------------------------------------------------------------ uniqueness


def test_unique_column_reports_duplicated_keys_and_rows() -> None:
    table = pa.table({"id": [7, 1, 7, None, None, 2, 1, 7]})
    report = validate(table, Rules().column("id", unique=True))
    found = failure(report, "columns.id.unique")
    assert (found.kind, found.column, found.count) == ("unique", "id", 5)
    assert found.message == "column 'id': 5 rows share 2 duplicated values, expected unique"
    assert found.examples == (
        {"row": 0, "rows": [0, 2, 7], "values": {"id": 7}},
        {"row": 1, "rows": [1, 6], "values": {"id": 1}},
    )
    assert validate(pa.table({"id": [1, 2, None, None]}), Rules().column("id", unique=True)).passed


def test_compound_uniqueness() -> None:
    table = pa.table({"customer_id": [1, 1, 2, 1, 2], "day": ["mon", "tue", "mon", "mon", None]})
    report = validate(table, {"unique": [["customer_id", "day"]]})
    found = failure(report, "unique.customer_id+day")
    assert (found.kind, found.column, found.count) == ("unique", None, 2)
    assert found.examples == (
        {"row": 0, "rows": [0, 3], "values": {"customer_id": 1, "day": "mon"}},
    )
    assert "columns (customer_id, day): 2 rows share 1 duplicated keys" in found.message
    assert validate(table.slice(0, 3), {"unique": [["customer_id", "day"]]}).passed


def test_unique_on_strings_and_dictionaries() -> None:
    strings = pa.table({"k": ["a", "b", "a"], "d": pa.array(["x", "y", "x"]).dictionary_encode()})
    report = validate(strings, Rules().column("k", unique=True).column("d", unique=True))
    assert [f.count for f in report.failures] == [2, 2]


# ----------------------------------------------------------------------- missing and extra


def test_missing_column_gives_only_the_required_failure() -> None:
    rules = (
        Rules()
        .column("age", type="integer", not_null=True, min=0, unique=True)
        .unique_together("age", "x")
        .check("adult", "age >= 18")
    )
    report = validate(pa.table({"x": [1, 2]}), rules)
    assert rules_of(report) == ["columns.age.required"]
    found = report.failures[0]
    assert (found.kind, found.column, found.count) == ("required", "age", 1)
    assert found.message == "column 'age' is required but missing from the data"


def test_optional_missing_column_is_no_failure() -> None:
    rules = Rules().column("age", required=False, min=0).check("adult", "age >= 18")
    report = validate(pa.table({"x": [1]}), rules)
    assert report.passed
    assert report.checked == 0


def test_unlisted_missing_column_fails_the_rule_that_uses_it() -> None:
    rules = Rules().check("adult", "age >= 18").unique_together("x", "day")
    report = validate(pa.table({"x": [1]}), rules)
    check = failure(report, "checks.adult")
    assert (check.kind, check.column, check.count) == ("check", "age", 1)
    assert "uses column 'age', but the data does not have it" in check.message
    assert failure(report, "unique.x+day").kind == "unique"


def test_extra_columns() -> None:
    table = pa.table({"a": [1], "b": [2], "c": [3], "d": [4]})
    rules = Rules().column("a").check("b_small", "b < 10").no_extra_columns()
    report = validate(table, rules)
    found = failure(report, "allow_extra_columns")
    assert (found.kind, found.count) == ("extra_columns", 2)
    assert "'c', 'd'" in found.message
    assert validate(table.select(["a", "b"]), rules).passed
    assert validate(table, Rules().column("a")).passed


# ---------------------------------------------------------------------- expression checks


CHECK_TABLE = pa.table(
    {
        "a": [1, 2, 3, None, 10],
        "b": [2.0, 0.0, float("nan"), 1.0, 5.0],
        "odd name": ["x", "y", "z", "x", None],
        "flag": [True, False, None, True, False],
    }
)


@pytest.mark.parametrize(
    ("expr", "failing_rows"),
    [
        ("a in [1, 2, 3]", [4]),
        ("a not in [1, 2]", [0, 1]),
        ("not (a > 2)", [2, 4]),
        ("a > 1 and b > 1", [0, 1, 3]),
        ("a > 5 or b < 1", [0]),
        ("a % 3 == 1", [1, 2]),
        ("a / 4 < 0.5", [1, 2, 4]),
        ("a * 2 + 1 > 4", [0]),
        ("-a < -1", [0]),
        ("abs(a - 5) <= 3", [0, 4]),
        ("0 < a <= 3", [4]),
        ('col("odd name") in ["x", "y"]', [2]),
        ("isnull(b) or b > 1", [1, 3]),
        ("notnull(a)", [3]),
        ("notnull(b)", [2]),
        ("flag == true", [1, 4]),
        ("flag", [1, 4]),
        ("not flag", [0, 3]),
        ("a % 0 == 1", []),
        ("b % 2 == 1", [0, 1]),
        ("true", []),
        ("False", [0, 1, 2, 3, 4]),
    ],
)
def test_expression_checks(expr: str, failing_rows: list[int]) -> None:
    report = validate(CHECK_TABLE, Rules().check("c", expr), max_examples=10)
    found = [e["row"] for f in report.failures for e in f.examples]
    assert found == failing_rows, report.summary()


def test_null_inputs_pass_a_check() -> None:
    table = pa.table({"spend": [1.0, None, 5.0], "income": [1.0, 1.0, None]})
    report = validate(table, Rules().check("ok", "spend <= income * 2"))
    assert report.passed
    strict = validate(table, Rules().check("ok", "notnull(spend) and spend <= income * 2"))
    assert failure(strict, "checks.ok").count == 1


@pytest.mark.parametrize(
    "expr", ["a > b", "not a", "a and b > 0", "a or b > 1", "a in [1]", "a % 2 == 0"]
)
def test_an_all_null_column_passes_checks(expr: str) -> None:
    table = pa.table({"a": pa.nulls(3), "b": [1.0, 2.0, 3.0]})
    assert validate(table, Rules().check("c", expr)).passed


def test_check_failure_message_and_examples_show_the_columns_used() -> None:
    table = pa.table({"spend": [1.0, 9.0], "income": [1.0, 2.0], "other": [0, 0]})
    report = validate(table, Rules().check("s", "spend <= income * 2"))
    found = failure(report, "checks.s")
    assert (found.kind, found.column, found.count) == ("check", None, 1)
    assert found.message == "check 's': 1 row where 'spend <= income * 2' is false, expected true"
    assert found.examples == ({"row": 1, "values": {"spend": 9.0, "income": 2.0}},)


def test_a_check_that_does_not_fit_the_data_is_a_failure_not_a_crash() -> None:
    report = validate(pa.table({"plan": ["a"]}), Rules().check("c", "plan > 5"))
    found = failure(report, "checks.c")
    assert found.kind == "check"
    assert "could not be evaluated" in found.message


@pytest.mark.parametrize(
    ("expr", "part"),
    [
        ("__import__('os')", "__import__('os')"),
        ("a.b > 1", "a.b"),
        ("x[0] > 1", "x[0]"),
        ("(lambda: 1)()", "lambda"),
        ("open('x')", "open('x')"),
        ('f"{a}" == "x"', "f-string"),
        ("[x for x in y] == 1", "comprehension"),
        ("a if b else c", "conditional"),
        ("(y := 1) > 0", ":="),
        ("__class__ == 1", "__class__"),
        ("a.__class__ == 1", "a.__class__"),
        ("x == None", "isnull"),
        ("x == null", "isnull"),
        ("x in y", "'in' needs a non-empty list"),
        ("x in [a]", "only constants"),
        ("col(name) > 1", "col(name)"),
        ("abs(x, y) > 1", "exactly one argument"),
        ("age + 1", "expected a condition"),
        ("x ** 2 > 1", "only the operators"),
        ("x is None", "Is"),
        ("1 +", "not a valid expression"),
        ("", "non-empty"),
    ],
)
def test_unsafe_or_invalid_expressions_are_refused_at_load(expr: str, part: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Rules.from_dict({"checks": [{"name": "bad_check", "expr": expr}]})
    assert info.value.details["field"] in ("checks.bad_check.expr", "checks[0].expr")
    assert part in str(info.value)


def test_refused_expression_names_the_check_and_the_part() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Rules().check("spend_ok", "spend <= income.real")
    assert info.value.details == {"field": "checks.spend_ok.expr"}
    assert "attribute access is not allowed: 'income.real'" in str(info.value)


def test_overlong_and_deeply_nested_expressions_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="limit"):
        Rules().check("long", "a > 1 or " * 400 + "a > 1")
    with pytest.raises(InvalidArgumentError, match="nested"):
        Rules().check("deep", "a" + " + a" * 60 + " > 1")


# --------------------------------------------------------------------- Python predicates


def test_python_predicate_on_a_table_and_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    rules = Rules().column("x").custom("positive", lambda d: np.asarray(d["x"]) > 0)
    report = validate(pa.table({"x": [1, -1, 2, -3]}), rules)
    found = failure(report, "checks.positive")
    assert (found.kind, found.count) == ("check", 2)
    assert found.examples == ({"row": 1, "values": {}}, {"row": 3, "values": {}})
    frame = pd.DataFrame({"x": [1, -1]})
    seen: list[type] = []
    rules = Rules().custom("p", lambda d: seen.append(type(d)) or d["x"] > 0)
    assert failure(validate(frame, rules), "checks.p").count == 1
    assert seen == [pd.DataFrame]


def test_python_predicate_that_breaks_is_reported() -> None:
    table = pa.table({"x": [1, 2]})
    raising = validate(table, Rules().custom("boom", lambda d: 1 / 0))
    assert "ZeroDivisionError" in failure(raising, "checks.boom").message
    wrong = validate(table, Rules().custom("short", lambda d: [True]))
    assert "one true/false per row" in failure(wrong, "checks.short").message


def test_python_predicate_cannot_be_stored() -> None:
    rules = Rules().column("x").custom("positive", lambda d: d["x"] > 0)
    with pytest.raises(InvalidArgumentError, match="cannot be stored with a dataset") as info:
        rules.to_dict()
    assert info.value.details == {"field": "checks.positive"}
    assert "expr" in str(info.value)


# ------------------------------------------------------------------- loading and storing


def test_yaml_round_trip() -> None:
    rules = Rules.from_yaml(FULL_YAML)
    stored = json.loads(json.dumps(rules.to_dict()))
    assert Rules.from_dict(stored) == rules
    assert Rules.from_yaml(rules.to_yaml()) == rules
    assert stored["columns"]["age"] == {
        "type": "integer",
        "not_null": True,
        "min": 0,
        "max": 120,
    }
    assert stored["checks"][1] == {
        "name": "adult_or_no_card",
        "expr": "age >= 18 or has_card == false",
    }


def test_builder_matches_the_dict_form() -> None:
    built = (
        Rules()
        .rows(min=10)
        .column("age", type="integer", min=0, max=120)
        .column("plan", allowed=["a", "b"])
        .unique_together("customer_id", "day")
        .check("adult", "age >= 18")
        .no_extra_columns()
    )
    assert built == Rules.from_dict(
        {
            "rows": {"min": 10},
            "columns": {
                "age": {"type": "integer", "min": 0, "max": 120},
                "plan": {"allowed": ["a", "b"]},
            },
            "unique": [["customer_id", "day"]],
            "checks": [{"name": "adult", "expr": "age >= 18"}],
            "allow_extra_columns": False,
        }
    )
    assert built.columns[0] == ColumnRule("age", type="integer", min=0, max=120)


def test_from_file(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(FULL_YAML)
    (tmp_path / "rules.json").write_text(json.dumps(Rules.from_yaml(FULL_YAML).to_dict()))
    assert Rules.from_file(tmp_path / "rules.yml") == Rules.from_file(tmp_path / "rules.json")
    (tmp_path / "bad.json").write_text('{"rows": {"min": 1,}}')
    with pytest.raises(InvalidArgumentError, match="line 1, column 20"):
        Rules.from_file(tmp_path / "bad.json")
    with pytest.raises(InvalidArgumentError, match=r"\.yaml, \.yml or \.json"):
        Rules.from_file(tmp_path / "rules.txt")


def test_validate_takes_rules_a_dict_or_yaml_text() -> None:
    table = pa.table({"a": [1, -1]})
    as_dict = {"columns": {"a": {"min": 0}}}
    expected = validate(table, Rules.from_dict(as_dict))
    assert validate(table, as_dict) == expected
    assert validate(table, "columns: {a: {min: 0}}") == expected


# ------------------------------------------------------------------------------ bad rules


@pytest.mark.parametrize(
    ("rules", "field", "message"),
    [
        ({"columns": {"age": {"min": "abc"}}}, "columns.age.min", "must be a number, got 'abc'"),
        ({"columns": {"age": {"max": True}}}, "columns.age.max", "must be a number, got True"),
        ({"columns": {"age": {"not_nul": True}}}, "columns.age.not_nul", "did you mean 'not_null'"),
        ({"columns": {"age": {"min": 5, "max": 1}}}, "columns.age.min", "must not be above max"),
        (
            {"columns": {"p": {"min": 1, "max": 1, "exclusive_max": True}}},
            "columns.p.min",
            "above max",
        ),
        ({"columns": {"age": {"type": "int"}}}, "columns.age.type", "integer, number, string"),
        ({"columns": {"age": {"required": "yes"}}}, "columns.age.required", "true or false"),
        ({"columns": {"age": {"exclusive_min": True}}}, "columns.age.exclusive_min", "without min"),
        ({"columns": {"p": {"type": "string", "min": 1}}}, "columns.p.min", "not string"),
        ({"columns": {"t": {"type": "datetime", "min": "soon"}}}, "columns.t.min", "ISO date"),
        ({"columns": {"p": {"allowed": "abc"}}}, "columns.p.allowed", "non-empty list"),
        ({"columns": {"p": {"allowed": ["a", 1]}}}, "columns.p.allowed", "mixes"),
        ({"columns": {"p": {"allowed": [None]}}}, "columns.p.allowed", "got None"),
        ({"columns": {"p": {"type": "boolean", "allowed": ["a"]}}}, "columns.p.allowed", "boolean"),
        ({"columns": {"p": 5}}, "columns.p", "must be a mapping"),
        ({"columns": ["age"]}, "columns", "must be a mapping"),
        ({"columns": {1: {}}}, "columns", "non-empty strings as column names, got 1"),
        ({"columns": {"t": {"min": "2020-01-01"}}}, "columns.t.min", "need type: datetime"),
        ({"checks": [{"name": 7, "expr": "a > 1"}]}, "checks[0].name", "non-empty string"),
        ({"rows": {"min": -1}}, "rows.min", "0 or more"),
        ({"rows": {"min": 1.5}}, "rows.min", "whole number"),
        ({"rows": {"min": 10, "max": 5}}, "rows.min", "above max"),
        ({"rows": {"mni": 1}}, "rows.mni", "known keys: max, min"),
        ({"colums": {}}, "colums", "did you mean 'columns'"),
        ({"unique": [[]]}, "unique[0]", "non-empty list"),
        ({"unique": [["a", "a"]]}, "unique[0]", "more than once"),
        ({"unique": "a"}, "unique", "must be a list"),
        ({"checks": {"name": "x"}}, "checks", "must be a list"),
        ({"checks": [{"name": "x"}]}, "checks[0]", "needs both 'name' and 'expr'"),
        ({"checks": [{"name": "x", "expr": "a > 1", "sql": 1}]}, "checks[0].sql", "known keys"),
        ({"checks": [{"name": "x", "expr": "a > 1"}] * 2}, "checks", "more than once"),
        ({"allow_extra_columns": "no"}, "allow_extra_columns", "true or false"),
        (["age"], "rules", "must be a mapping"),
    ],
)
def test_bad_rules_name_the_field(rules: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Rules.from_dict(rules)
    assert info.value.details == {"field": field}
    assert message in str(info.value)
    assert str(info.value).startswith(field)


def test_unknown_key_lists_the_known_keys() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Rules.from_yaml("columns: {age: {not_nul: true}}")
    assert "known keys: type, required, not_null, min, max" in str(info.value)


def test_yaml_that_is_not_a_mapping_or_not_yaml() -> None:
    with pytest.raises(InvalidArgumentError, match="must be a mapping"):
        Rules.from_yaml("- a\n- b\n")
    with pytest.raises(InvalidArgumentError, match=r"line \d+, column \d+"):
        Rules.from_yaml("rows:\n  min: 1\n  max: [1\n")
    with pytest.raises(InvalidArgumentError, match="could not determine a constructor"):
        Rules.from_yaml("rows: !!python/object/apply:os.system ['true']")


def test_builder_checks_its_arguments_too() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Rules().column("age", min="abc")
    assert info.value.details == {"field": "columns.age.min"}
    with pytest.raises(InvalidArgumentError, match="more than once"):
        Rules().column("a").column("a")


def test_bad_arguments_to_validate() -> None:
    with pytest.raises(InvalidArgumentError, match="pyarrow Table or a pandas DataFrame, got dict"):
        validate({"a": [1]}, Rules())
    with pytest.raises(InvalidArgumentError, match="max_examples"):
        validate(pa.table({"a": [1]}), Rules(), max_examples=-1)
    with pytest.raises(InvalidArgumentError, match="must be Rules"):
        validate(pa.table({"a": [1]}), 5)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ strict, examples


def test_strict_mode_raises_with_the_report() -> None:
    table = pa.table({"age": [1, 500]})
    with pytest.raises(DataValidationError) as info:
        validate(table, Rules().column("age", max=120), strict=True)
    report = info.value.report
    assert isinstance(report, ValidationReport)
    assert str(info.value) == report.summary()
    assert "column 'age': 1 row above max 120, largest 500 (row 1)" in str(info.value)
    assert validate(table, Rules().column("age", max=1000), strict=True).passed


def test_max_examples() -> None:
    table = pa.table({"x": list(range(-20, 0))})
    report = validate(table, Rules().column("x", min=0), max_examples=3)
    found = failure(report, "columns.x.min")
    assert found.count == 20
    assert [e["row"] for e in found.examples] == [0, 1, 2]
    assert found.line().endswith("(rows 0, 1, 2, ...)")
    none = validate(
        table, Rules().column("x", min=0, unique=True).unique_together("x"), max_examples=0
    )
    assert all(f.examples == () for f in none.failures)
    assert none.failures[0].line() == none.failures[0].message


# --------------------------------------------------------------------- pandas, empty, wide


def test_pandas_dataframe_input() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "age": pd.array([30, None, 200], dtype="Int64"),
            "plan": pd.Categorical(["basic", "gold", "pro"]),
            "score": [0.5, np.nan, 0.7],
            "when": pd.to_datetime(["2021-01-01", "2019-01-01", None]).tz_localize("UTC"),
        },
        index=[10, 20, 30],
    )
    rules = (
        Rules()
        .column("age", type="integer", not_null=True, max=120)
        .column("plan", type="categorical", allowed=["basic", "pro"])
        .column("score", type="number", not_null=True)
        .column("when", type="datetime", min="2020-01-01")
    )
    report = validate(frame, rules)
    assert rules_of(report) == [
        "columns.age.not_null",
        "columns.age.max",
        "columns.plan.allowed",
        "columns.score.not_null",
        "columns.when.min",
    ]
    assert failure(report, "columns.age.max").examples == ({"row": 2, "values": {"age": 200}},)
    # pandas NaN is missing data: it arrives as null
    assert failure(report, "columns.score.not_null").examples == (
        {"row": 1, "values": {"score": None}},
    )


def test_pandas_column_of_mixed_values_is_a_type_failure() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"age": [1, "x", 3.5], "ok": [1, 2, 3]})
    report = validate(frame, Rules().column("age", min=0).column("ok", min=0).check("c", "age > 0"))
    assert rules_of(report) == ["columns.age.type"]
    assert "do not share one type" in report.failures[0].message


def test_empty_table() -> None:
    rules = Rules.from_yaml(FULL_YAML.replace("rows: {min: 3, max: 1000}", ""))
    assert validate(good_table().slice(0, 0), rules).passed
    report = validate(pa.table({}), Rules().rows(min=1).column("a", required=False))
    assert rules_of(report) == ["rows.min"]
    assert report.rows == 0


def test_empty_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=float)})
    rules = Rules().column("a", type="integer", not_null=True, unique=True).column("b", min=0)
    report = validate(frame, rules.check("c", "a > b"))
    assert report.passed
    assert report.rows == 0


def test_large_table_is_checked_column_wise() -> None:
    n = 200_000
    table = pa.table({"id": np.arange(n), "x": np.where(np.arange(n) % 1000 == 0, -1.0, 1.0)})
    rules = Rules().column("id", unique=True).column("x", min=0).check("c", "x > 0 or id % 2 == 0")
    report = validate(table, rules)
    assert rules_of(report) == ["columns.x.min"]
    assert failure(report, "columns.x.min").count == 200
